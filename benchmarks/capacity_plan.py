"""Conversions the capacity policy captures against ranking by the true probability.

    python benchmarks/capacity_plan.py [--rows 1000000]

Data: the sample of ``make run`` (``leadml sample --rows 20000 --seed 42``), trained with
``pipelines/configs/sample.yaml`` into a temporary MLflow store, then ``leadml plan`` on the
model's test window (the newest 4,000 leads) at capacities of 5%, 10% and 20% of the leads,
with the shipped BANT rules (disqualifiers, at least 2 criteria met, the 2% floor) and
without them (every lead a candidate). The oracle ranks the same candidates by the
generator's ``true_probability``. Then the cost of a capacity at scoring: ``leadml score
--no-reasons`` of ``--rows`` generated leads (CSV in and out) with the shipped rules, and with
``capacity_share: 0.1`` ranked by expected value (a ``value`` section), in the same run.
Results go to ``benchmarks/results/capacity_plan.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml
from _common import REPO, run_measured, train_sample_model, write_leads, write_results

SHARES = [0.05, 0.10, 0.20]


def scoring_cost(rows: int) -> dict:
    """Seconds and peak memory of scoring ``rows`` leads without and with a capacity."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "LEADML_HOME": str(tmp)}
        train_sample_model(tmp, env)
        leads = tmp / "leads.csv"
        write_leads(leads, rows)
        shipped = REPO / "pipelines/configs/bant.yaml"
        raw = yaml.safe_load(shipped.read_text())
        raw["label_policy"]["sales_qualified"] = {"capacity_share": 0.1, "min_criteria_met": 2,
                                                  "rank_by": "expected_value"}
        raw["value"] = {"column": "estimated_budget", "default": 5000, "cost_per_contact": 50}
        (tmp / "capped.yaml").write_text(yaml.safe_dump(raw))
        out = {}
        for name, rules in (("shipped_rules", shipped), ("capacity_and_value",
                                                         tmp / "capped.yaml")):
            result = run_measured([sys.executable, "-m", "leadml.cli", "score", str(leads),
                                   "-o", str(tmp / f"{name}.csv"), "--model",
                                   "models:/leadml/1", "--rules", str(rules), "--no-reasons"],
                                  env)
            manifest = json.loads((tmp / f"{name}.manifest.json").read_text())
            out[name] = {"seconds": result["seconds"], "peak_rss_mib": result["peak_rss_mib"],
                         "labels": manifest["labels"], "capacity": manifest["capacity"]}
        out["ratio_seconds"] = round(out["capacity_and_value"]["seconds"]
                                     / out["shipped_rules"]["seconds"], 3)
        return out


def main() -> None:
    from leadml import jobs

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from leadml.config import load_config, load_rules

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ["LEADML_HOME"] = str(tmp)
        jobs.sample(tmp / "sample", rows=20_000, seed=42, nightly_rows=2_000)
        raw = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
        raw["dataset"]["path"] = str(tmp / "sample" / "leads.csv")
        (tmp / "train.yaml").write_text(yaml.safe_dump(raw))
        cfg = load_config(tmp / "train.yaml")
        jobs.train(cfg)
        rules = load_rules(REPO / "pipelines/configs/bant.yaml")
        raw_rules = yaml.safe_load((REPO / "pipelines/configs/bant.yaml").read_text())
        for criterion in ("budget", "authority", "need", "timeline"):
            raw_rules.pop(criterion)
        raw_rules["label_policy"] = {"sales_qualified": {"min_probability": 0.0,
                                                         "min_criteria_met": 0}}
        (tmp / "none.yaml").write_text(yaml.safe_dump(raw_rules))
        results = {}
        for name, ruleset in (("bant_rules", rules), ("no_rules", load_rules(tmp / "none.yaml"))):
            made = jobs.plan(cfg, SHARES, rules=ruleset, oracle_column="true_probability")
            results[name] = made.table.round(4).to_dict("records")
    lines = ["| rules | capacity | leads worked | conversions | oracle | of oracle | "
             "SQL converts | nurture converts | cut-off |", "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for r in rows:
            lines.append(
                f"| {name.replace('_', ' ')} | {r['capacity_share']:.0%} | "
                f"{r['sales_qualified']:,} | {r['conversions_captured']:,} | "
                f"{r['oracle_conversions']:,} | {r['of_oracle']:.1%} | "
                f"{r['sql_conversion_rate']:.1%} | {r['nurture_conversion_rate']:.1%} | "
                f"{r['probability_cutoff']:.3f} |")
    cost = scoring_cost(args.rows)
    a, b = cost["shipped_rules"], cost["capacity_and_value"]
    lines += ["", "The bar (issue 13): at least 90% of the oracle at each capacity.", "",
              f"Cost at scoring, {args.rows:,} leads, CSV in and out, `--no-reasons`, same run:",
              "", "| rules | seconds | peak RSS MiB | sales-qualified |", "|---|---|---|---|",
              f"| shipped (min_probability 0.25) | {a['seconds']} | {a['peak_rss_mib']} | "
              f"{a['labels']['sales_qualified']:,} |",
              f"| capacity_share 0.1 by expected value | {b['seconds']} | {b['peak_rss_mib']} "
              f"| {b['labels']['sales_qualified']:,} of {b['capacity']['candidates']:,} "
              "candidates |", "", f"Ratio {cost['ratio_seconds']}x."]
    write_results("capacity_plan", {"shares": SHARES, "plans": results, "scoring_cost": cost},
                  "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
