"""The monitoring loop replayed as a scheduler runs it: score month by month, let outcomes
mature, `leadml monitor`, and `leadml recalibrate` when it alerts.

    python benchmarks/replay.py

Each month's leads are scored on the first of the month with the champion (``leadml score
--scored-at``); an outcome is known 30 days after scoring (``--horizon-days 30``); at the
start of every month ``leadml monitor`` reads every scoring run so far and the outcomes
exported then, and when it alerts (exit 7) ``leadml recalibrate`` refits the champion's rate
shift on the newest matured run and promotes it if it passes the gate on the held-out part;
when the gate refuses because the ranking fell ("retrain with leadml train"), the bank replay
retrains on its history through that month, as a scheduler would. The same months are also scored with the first model throughout, without the loop,
for comparison.

Data: (1) generated, an 18-month history (20,000 leads, no trend) to train on, then 8 months
of 2,000 leads each whose base log-odds jump by +1.0 from month 4 (the rate about doubles);
(2) the bank data when present (``../shared/data/bank-marketing``, ``duration`` excluded):
trained on its first 80% of rows (the bank config's train and calibration windows), then its
last 20% (where the rate jumps to about 32%) replayed as 9 "months" of about 1,000 contacts.
Results: ``benchmarks/results/replay.{md,json}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from _common import REPO, write_results

LEADML = str(Path(sys.executable).with_name("leadml"))
MONTH = pd.Timedelta(days=30)


def leadml(*args: str, ok=(0,)) -> subprocess.CompletedProcess:
    done = subprocess.run([LEADML, *args], capture_output=True, text=True)
    if done.returncode not in ok:
        raise RuntimeError(f"leadml {' '.join(args)} exited {done.returncode}:\n"
                           f"{done.stderr[-3000:]}")
    return done


def _ece(y: np.ndarray, p: np.ndarray) -> float:
    from leadml.training.metrics import expected_calibration_error

    return expected_calibration_error(y, p)


def replay(name: str, months: list[pd.DataFrame], outcomes: pd.DataFrame, config: Path,
           tmp: Path, start: pd.Timestamp, model_name: str, rules: Path | None = None,
           retrain=None) -> dict:
    """Score, monitor and recalibrate month by month; returns per-month numbers.
    ``retrain(m)``: the config of a history through month ``m`` (its outcomes matured), to
    retrain on when recalibration is refused because the ranking fell ("retrain with leadml
    train"), as a scheduler would."""
    runs, fixed, rows, events = tmp / "runs", tmp / "fixed", [], []
    runs.mkdir()
    fixed.mkdir()
    leadml("train", "--config", str(config))
    first = f"models:/{model_name}/1"
    rules_args = ["--rules", str(rules)] if rules else []
    for m, leads in enumerate(months, start=1):
        scored_at = start + (m - 1) * MONTH
        path = tmp / f"month{m:02d}.csv"
        leads.to_csv(path, index=False)
        stamp = scored_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        leadml("score", str(path), "--output", str(runs / f"month{m:02d}.csv"), "--scored-at",
               stamp, "--model-name", model_name, "--no-reasons", *rules_args)
        leadml("score", str(path), "--output", str(fixed / f"month{m:02d}.csv"), "--scored-at",
               stamp, "--model", first, "--no-reasons", *rules_args)
        # The start of next month: this month's run has matured; monitor, then recalibrate.
        as_of = (scored_at + MONTH).strftime("%Y-%m-%dT%H:%M:%SZ")
        known = outcomes[outcomes["lead_id"].isin(pd.concat(months[:m])["lead_id"])]
        known.to_csv(tmp / "outcomes.csv", index=False)
        common = ["--outcomes", str(tmp / "outcomes.csv"), "--converted-column", "converted",
                  "--horizon-days", "30", "--as-of", as_of]
        done = leadml("monitor", "--scored", str(runs), *common, "--output",
                      str(tmp / "monitoring"), ok=(0, 7))
        report = json.loads((tmp / "monitoring" / "monitor.json").read_text())
        this = [a for a in report["alerts"] if a["period"].endswith(f"month{m:02d}.csv")]
        if done.returncode == 7 and this:
            events.append(f"month {m}: monitor exit 7: {this[0]['message']}")
            recal = leadml("recalibrate", "--scored", str(runs / f"month{m:02d}.csv"), *common,
                           "--model-name", model_name, "--min-leads", "300", ok=(0,))
            said = recal.stdout.strip().splitlines()[-1]
            events.append(f"month {m}: recalibrate: {said}")
            if retrain is not None and "retrain with leadml train" in said:
                trained = leadml("train", "--config", str(retrain(m)))
                events.append(f"month {m}: retrained on the history through month {m}: "
                              + next((line for line in trained.stdout.splitlines()
                                      if line.startswith("promotion:")), "no decision"))
        truth = outcomes.set_index("lead_id").loc[leads["lead_id"], "converted"].to_numpy(int)
        live = pd.read_csv(runs / f"month{m:02d}.csv")
        base = pd.read_csv(fixed / f"month{m:02d}.csv")
        rows.append({"month": m, "leads": len(leads), "rate": float(truth.mean()),
                     "model": f"v{live['model_version'].iloc[0]}",
                     "predicted_with_loop": float(live["conversion_probability"].mean()),
                     "predicted_without": float(base["conversion_probability"].mean()),
                     "ece_with_loop": _ece(truth, live["conversion_probability"].to_numpy()),
                     "ece_without": _ece(truth, base["conversion_probability"].to_numpy())})
    return {"dataset": name, "months": rows, "events": events,
            "monitor": report["periods"], "alerts": report["alerts"]}


def generated(tmp: Path) -> dict:
    from leadml.setup.synthetic import make_leads

    history = make_leads(20_000, seed=21, drift=0.0)
    history.to_csv(tmp / "history.csv", index=False)
    start = pd.Timestamp("2026-07-01", tz="UTC")
    months, outcomes = [], []
    for m in range(1, 9):
        jump = 1.0 if m >= 4 else 0.0  # the rate about doubles from month 4
        leads = make_leads(2_000, seed=100 + m, drift=jump, drift_at=1.0,
                           start=(start + (m - 1) * MONTH - pd.Timedelta(days=1)).tz_convert(None),
                           days=0.9)
        leads["lead_id"] = f"M{m}-" + leads["lead_id"]
        outcomes.append(leads[["lead_id", "converted"]])
        months.append(leads.drop(columns=["true_probability", "converted", "converted_at"]))
    raw = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
    raw["dataset"]["path"] = str(tmp / "history.csv")
    raw["registry"] = {"model_name": "replay", "experiment": "replay"}
    (tmp / "train.yaml").write_text(yaml.safe_dump(raw))
    return replay("generated (rate jump at month 4)", months, pd.concat(outcomes),
                  tmp / "train.yaml", tmp, start, "replay")


def bank(tmp: Path) -> dict | None:
    path = REPO.parent / "shared/data/bank-marketing/bank-full.csv"
    if not path.exists():
        return None
    frame = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    frame.insert(0, "lead_id", [f"B{i:05d}" for i in range(len(frame))])
    cut = int(round(len(frame) * 0.8))
    frame.iloc[:cut].to_csv(tmp / "bank_history.csv", sep=";", index=False)
    raw = yaml.safe_load((REPO / "pipelines/configs/bank_full.yaml").read_text())
    raw["dataset"]["path"] = str(tmp / "bank_history.csv")
    raw["dataset"]["id_column"] = "lead_id"
    raw["split"] = {"train": 0.7, "calibration": 0.15, "test": 0.15}
    raw["registry"] = {"model_name": "replay-bank", "experiment": "replay-bank"}
    (tmp / "bank.yaml").write_text(yaml.safe_dump(raw))
    rest = frame.iloc[cut:]
    outcomes = pd.DataFrame({"lead_id": rest["lead_id"],
                             "converted": (rest["y"] == "yes").astype(int)})
    parts = np.array_split(np.arange(len(rest)), 9)
    months = [rest.iloc[idx].drop(columns=["y"]) for idx in parts]
    rules = tmp / "bank_rules.yaml"  # no BANT field in the bank data: the model decides
    rules.write_text("label_policy:\n  sales_qualified:\n    min_probability: 0.3\n")
    def retrain(m: int) -> Path:  # the history through month m: the rows before it, in order
        through = cut + sum(len(idx) for idx in parts[:m])
        frame.iloc[:through].to_csv(tmp / f"bank_history_{m}.csv", sep=";", index=False)
        again = {**raw, "dataset": {**raw["dataset"], "path": str(tmp / f"bank_history_{m}.csv")}}
        (tmp / f"bank_{m}.yaml").write_text(yaml.safe_dump(again))
        return tmp / f"bank_{m}.yaml"

    return replay("bank (test 20% replayed in 9 months)", months, outcomes, tmp / "bank.yaml",
                  tmp, pd.Timestamp("2026-07-01", tz="UTC"), "replay-bank", rules, retrain)


def main() -> None:
    results = []
    for make in (generated, bank):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
            os.environ["LEADML_HOME"] = str(tmp)
            found = make(tmp)
            if found is not None:
                results.append(found)
    lines = []
    for r in results:
        lines += [f"## {r['dataset']}", "", "| month | leads | realised | model | predicted "
                  "(loop) | predicted (first model) | ECE (loop) | ECE (first model) |",
                  "|---|---|---|---|---|---|---|---|"]
        for m in r["months"]:
            lines.append(f"| {m['month']} | {m['leads']:,} | {m['rate']:.1%} | {m['model']} | "
                         f"{m['predicted_with_loop']:.1%} | {m['predicted_without']:.1%} | "
                         f"{m['ece_with_loop']:.3f} | {m['ece_without']:.3f} |")
        lines += ["", "Events:", "", *[f"- {e}" for e in r["events"]], ""]
        after = [m for m in r["months"] if m["model"] != "v1"]
        if after:
            nxt = after[0]
            cut = 1 - nxt["ece_with_loop"] / nxt["ece_without"]
            lines.append(f"First month scored by a recalibrated model (month {nxt['month']}): "
                         f"ECE {nxt['ece_with_loop']:.3f} against {nxt['ece_without']:.3f} "
                         f"without the loop, {cut:.0%} lower.\n")
    write_results("replay", {"results": results}, "\n".join(lines))


if __name__ == "__main__":
    main()
