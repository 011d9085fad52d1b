"""Train on 1M generated leads end to end (`leadml train`), measuring wall time and peak
memory of the training process, with the default fit budget and with others.

    python benchmarks/train_1m.py [--rows 1000000] [--budgets default 200000]

Each budget sets ``model.max_fit_leads`` (``default``: the config's default; ``all``: no
cap) and runs ``leadml train`` in its own process on the same file, in the same run.
Writes benchmarks/results/train_1m.{json,md}. Uses a temporary MLflow store per run.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_measured, write_results  # noqa: E402

from leadml.setup.synthetic import make_leads

REPO = Path(__file__).resolve().parents[1]
METRICS = ("roc_auc", "log_loss", "brier", "ece", "lift_10")
INTERVAL = re.compile(r"^\s+(\w+)\s+[-\d.]+\s+\(95% CI ([-\d.]+) to ([-\d.]+)\)")


def train_once(tmp: Path, leads: Path, budget: str) -> dict:
    """One `leadml train` process with the fit budget ``budget``; its numbers."""
    from mlflow import MlflowClient

    run = tmp / f"budget_{budget}"
    run.mkdir()
    config = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
    config["dataset"]["path"] = str(leads)
    if budget != "default":
        config["model"]["max_fit_leads"] = None if budget == "all" else int(budget)
    (run / "train.yaml").write_text(yaml.safe_dump(config))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{run / 'mlflow.db'}", "LEADML_HOME": str(run)}
    result = run_measured([sys.executable, "-m", "leadml.cli", "train", "--config",
                           str(run / "train.yaml")], env)
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    (logged,) = [r for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments()])
        if r.data.tags.get("leadml.stage") == "train"]
    stages = {k: round(v, 1) for k, v in sorted(logged.data.metrics.items())
              if k.endswith("_seconds")}
    metrics = {line.split()[0]: float(line.split()[1]) for line in result["stdout"].splitlines()
               if line.startswith("  ") and len(line.split()) > 1
               and line.split()[0] in METRICS}
    intervals = {found[1]: [float(found[2]), float(found[3])]
                 for found in map(INTERVAL.match, result["stdout"].splitlines()) if found}
    params = logged.data.params
    return {"max_fit_leads": budget, "chosen": params.get("model_kind"),
            "calibration": f"{params.get('calibration_map')}, drift "
                           f"{params.get('calibration_drift')}",
            "train_seconds": result["seconds"], "train_peak_rss_mib": result["peak_rss_mib"],
            "mlflow_run_seconds": round((logged.info.end_time - logged.info.start_time) / 1000,
                                        1),
            "test_metrics": metrics, "test_intervals_95": intervals, "stage_seconds": stages}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--budgets", nargs="+", default=["default", "200000"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        make_leads(args.rows, seed=11).to_csv(tmp / "leads.csv", index=False)
        generate = time.perf_counter() - start
        runs = [train_once(tmp, tmp / "leads.csv", b) for b in args.budgets]
    from leadml.config import ModelConfig

    default = ModelConfig().max_fit_leads
    rows = "\n".join(
        f"| {r['max_fit_leads']}{f' ({default:,})' if r['max_fit_leads'] == 'default' else ''} "
        f"| {r['chosen']} | {r['train_seconds']:.0f} s | {r['train_peak_rss_mib']:,.0f} MiB | "
        + " | ".join(f"{r['test_metrics'].get(m, float('nan')):.4f}" for m in METRICS) + " |"
        for r in runs)
    stages = "\n".join(f"- {r['max_fit_leads']}: {r['stage_seconds']}; the MLflow run lasted "
                       f"{r['mlflow_run_seconds']} s of the {r['train_seconds']:.0f} s"
                       for r in runs)
    intervals = "\n".join(
        f"- {r['max_fit_leads']} ({r['calibration']}): " + ", ".join(
            f"{m} {lo:.4f} to {hi:.4f}" for m, (lo, hi) in r["test_intervals_95"].items()
            if m in METRICS) for r in runs)
    summary = (f"`leadml train` on {args.rows:,} generated leads (CSV, {generate:.0f} s to "
               f"generate): audit, both candidates, calibration choice, refit, "
               f"200 bootstrap resamples, permutation importances, field insights, plots, "
               f"report and MLflow logging, each in its own process:\n\n"
               f"| model.max_fit_leads | chosen | wall time | peak memory | "
               + " | ".join(METRICS) + " |\n|---|---|---|---|" + "---|" * len(METRICS)
               + f"\n{rows}\n\nStage seconds (logged with each run; train_seconds holds the "
               f"fits and the calibration choice, importance_seconds the permutation "
               f"importances and field insights; the rest of the wall time is process start, "
               f"plots, report and MLflow logging):\n\n{stages}\n\n"
               f"Calibration chosen, and 95% bootstrap intervals of the test metrics:\n\n"
               f"{intervals}\n")
    numbers = {"rows": args.rows, "generate_seconds": round(generate, 1), "runs": runs}
    print(write_results("train_1m", numbers, summary).read_text())


if __name__ == "__main__":
    main()
