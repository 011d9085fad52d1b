"""What per-lead reasons cost: `leadml score` with and without them, same file, same run.

    python benchmarks/reasons_1m.py [--rows 1000000]

For each model kind (the logistic regression the sample's champion is, and a gradient
boosting model trained with the same data), scores the same generated 1M-lead CSV twice,
with `--no-reasons` and with reasons, and writes the ratio of wall times (issues 14 and 41:
at most 1.5x for logistic regression, 2x for gradient boosting) to
benchmarks/results/reasons_1m.{json,md}. Uses a temporary MLflow store.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    REPO,
    run_measured,
    train_sample_model,
    write_leads,
    write_results,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rules = str(REPO / "pipelines/configs/bant.yaml")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "LEADML_HOME": str(tmp)}
        leads = tmp / "leads.csv"
        write_leads(leads, args.rows)
        for version, kind in enumerate(["logistic_regression", "gradient_boosting"], start=1):
            train_sample_model(tmp, env, [kind])
            runs = {}
            for mode, flag in (("without", "--no-reasons"), ("with", "--reasons")):
                runs[mode] = run_measured(
                    [sys.executable, "-m", "leadml.cli", "score", str(leads), "-o",
                     str(tmp / f"{kind}_{mode}.csv"), "--model", f"models:/leadml/{version}",
                     "--rules", rules, flag], env)
                runs[mode].pop("stdout")
            runs["ratio_with_over_without"] = round(runs["with"]["seconds"]
                                                    / runs["without"]["seconds"], 2)
            results[kind] = runs
            print(kind, runs, flush=True)
    rows = "\n".join(
        f"| {kind.replace('_', ' ')} | {r['without']['seconds']:.1f} s | "
        f"{r['with']['seconds']:.1f} s | **{r['ratio_with_over_without']}x** | "
        f"{r['with']['peak_rss_mib']:,.0f} MiB |" for kind, r in results.items())
    load = [round(x, 2) for x in os.getloadavg()]
    summary = (f"`leadml score` on the same {args.rows:,}-lead CSV, same run, one model of "
               "each kind trained on data/sample. Wall times include process start, model "
               "loading and writing every file. The reasons are the fields' contributions "
               "that add up from the typical lead (Shapley values against it, exact for both "
               "kinds; issue 41), with an 'Other fields' remainder. Before them, reasons were "
               "one-field swaps: 1.27x and 1.66x (Intel Xeon, 2026-12-01). Load average "
               f"(1, 5, 15 min) at the end: {load}.\n\n"
               "| model | without reasons | with reasons | ratio (target <= 1.5x LR, 2x GB) "
               "| peak memory with |\n|---|---|---|---|---|\n" + rows)
    print(write_results("reasons_1m", {"rows": args.rows, "models": results}, summary)
          .read_text())


if __name__ == "__main__":
    main()
