"""Train on 1M generated leads end to end (`leadml train`), measuring wall time and peak
memory of the training process.

    python benchmarks/train_1m.py [--rows 1000000]

Writes benchmarks/results/train_1m.{json,md}. Uses a temporary MLflow store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_measured, write_results  # noqa: E402

from leadml.synthetic import make_leads  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        make_leads(args.rows, seed=11).to_csv(tmp / "leads.csv", index=False)
        generate = time.perf_counter() - start
        config = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
        config["dataset"]["path"] = str(tmp / "leads.csv")
        (tmp / "train.yaml").write_text(yaml.safe_dump(config))
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
               "LEADML_HOME": str(tmp)}
        result = run_measured([sys.executable, "-m", "leadml.cli", "train", "--config",
                               str(tmp / "train.yaml")], env)
        from mlflow import MlflowClient

        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        (run,) = [r for r in client.search_runs(
            [e.experiment_id for e in client.search_experiments()])
            if r.data.tags.get("leadml.stage") == "train"]
        stages = {k: round(v, 1) for k, v in sorted(run.data.metrics.items())
                  if k.endswith("_seconds")}
    metrics = {line.split()[0]: float(line.split()[1]) for line in result["stdout"].splitlines()
               if line.startswith("  ") and len(line.split()) > 1
               and line.split()[0] in {"roc_auc", "log_loss", "brier", "ece", "lift_10"}}
    numbers = {"rows": args.rows, "generate_seconds": round(generate, 1),
               "train_seconds": result["seconds"], "train_peak_rss_mib": result["peak_rss_mib"],
               "test_metrics": metrics, "stage_seconds": stages}
    summary = (f"`leadml train` on {args.rows:,} generated leads (CSV, "
               f"{generate:.0f} s to generate): audit, both candidates, calibration, refit, "
               f"200 bootstrap resamples, permutation importances, field insights, plots, "
               f"report and MLflow logging:\n\n| wall time | peak memory |\n|---|---|\n"
               f"| {result['seconds']:.0f} s | {result['peak_rss_mib']:,.0f} MiB |\n\n"
               f"Test-window metrics: {metrics}\n\nStage seconds (logged with the run; "
               f"train_seconds holds the fits and calibration choice, importance_seconds "
               f"the permutation importances; the rest of the wall time is process start, "
               f"plots, report and MLflow logging): {stages}")
    print(write_results("train_1m", numbers, summary).read_text())


if __name__ == "__main__":
    main()
