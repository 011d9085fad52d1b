"""The audit's verdict on planted leaks and on legitimate fields, before and after the two
levels: how many leaks it catches and how many false alarms it raises.

    python benchmarks/audit_levels.py

Data: the CRM-style sample (``leadml sample --export-style crm``, 12,000 leads, seed 1)
with every column listed as a feature, and the bank data (``../shared/data``) with
``duration`` listed as a feature, when present. "Before" is the single rule that stood
until now, recomputed from the same audit numbers: a feature stops training when its
cross-fitted AUC alone, or its emptiness's AUC, is at least 0.75 (plus ids and times that
track the outcome, and dates after conversion, unchanged). Results go to
``benchmarks/results/audit_levels.{md,json}``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from _common import REPO, write_results

CRM_LEAKS = {"Deal Amount", "Contract Type", "Last Activity", "Last Notable Activity", "Lead Quality",
             "Lead Profile", "Activity Score"}
BANK_LEAKS = {"duration"}
UNCHANGED = {"tracks-outcome", "after-conversion"}


def verdicts(config: Path) -> list[dict]:
    from leadml.config import load_config
    from leadml.data.audit import audit_frame
    from leadml.jobs import read_history

    cfg = load_config(config)
    raw, outcomes = read_history(cfg)
    report, _ = audit_frame(raw, cfg, outcomes)
    features = set(cfg.dataset.columns.features)
    now = {}
    for f in report.findings:
        if f.kind == "leakage" and f.column in features:
            rank = {"blocks": 3, "review": 2, "note": 1}[f.level]
            if rank > {"blocks": 3, "review": 2, "note": 1}.get(now.get(f.column), 0):
                now[f.column] = f.level
    out = []
    for c in report.columns:
        if c["column"] not in features:
            continue
        before = c["single_auc"] >= 0.75 or (c["missing_auc"] or 0) >= 0.75 or \
            bool(UNCHANGED & set(c["flags"]))
        out.append({"column": c["column"], "single_auc": c["single_auc"],
                    "missing_auc": c["missing_auc"],
                    "before": "blocks" if before else "-", "now": now.get(c["column"], "-")})
    return out


def summary(rows: list[dict], leaks: set[str]) -> dict:
    stops = {"blocks", "review"}
    return {
        "leaks": len(leaks),
        "leaks_stopped_before": sum(r["before"] == "blocks" for r in rows
                                    if r["column"] in leaks),
        "leaks_stopped_now": sum(r["now"] in stops for r in rows if r["column"] in leaks),
        "legitimate_fields": sum(r["column"] not in leaks for r in rows),
        "false_alarms_before": sum(r["before"] == "blocks" for r in rows
                                   if r["column"] not in leaks),
        "false_alarms_now": sum(r["now"] in stops for r in rows if r["column"] not in leaks),
    }


def main() -> None:
    from leadml.setup.synthetic_crm import write_crm_export

    results, lines = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_crm_export(tmp, 12_000, seed=1, nightly_rows=10)
        crm = verdicts(tmp / "train.yaml")
        results["crm"] = {"rows": crm, **summary(crm, CRM_LEAKS)}
        bank_csv = REPO.parent / "shared/data/bank-marketing/bank-full.csv"
        if bank_csv.exists():
            raw = yaml.safe_load((REPO / "pipelines/configs/bank_full.yaml").read_text())
            raw["dataset"]["path"] = str(bank_csv)
            raw["dataset"]["columns"]["excluded"] = []
            raw["dataset"]["columns"]["numeric"].append("duration")
            (tmp / "bank.yaml").write_text(yaml.safe_dump(raw))
            bank = verdicts(tmp / "bank.yaml")
            results["bank"] = {"rows": bank, **summary(bank, BANK_LEAKS)}
    for name, data in results.items():
        lines += [f"## {name}", "",
                  f"- planted or known leaks stopped: before {data['leaks_stopped_before']} "
                  f"of {data['leaks']}, now **{data['leaks_stopped_now']} of {data['leaks']}**",
                  f"- legitimate fields stopped (false alarms): before "
                  f"{data['false_alarms_before']} of {data['legitimate_fields']}, now "
                  f"**{data['false_alarms_now']} of {data['legitimate_fields']}**", "",
                  "| column | AUC alone | AUC of emptiness | before | now |", "|---|---|---|---|---|"]
        for r in data["rows"]:
            if r["before"] != "-" or r["now"] != "-":
                miss = "" if r["missing_auc"] is None else f"{r['missing_auc']:.3f}"
                lines.append(f"| {r['column']} | {r['single_auc']:.3f} | {miss} | "
                             f"{r['before']} | {r['now']} |")
        lines.append("")
    text = ("Before = a feature stops training at AUC >= 0.75 alone or by its emptiness; now "
            "= blocks (near-certain) and review (plausible) both stop training until the "
            "column is excluded or kept with a reason; a note never stops it.\n\n"
            + "\n".join(lines))
    print(write_results("audit_levels", results, text).read_text())


if __name__ == "__main__":
    main()
