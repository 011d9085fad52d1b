"""Training on Spark against one machine: 1M and 10M generated leads, the driver's memory.

    pip install -e ".[spark,bench]"
    python benchmarks/spark_train.py [--sizes 1000000 10000000] [--master local[2]]
                                     [--driver-memory 2g] [--local-timeout 1200]

Writes generated lead histories as folders of Parquet parts (text values, as an export
gives them; 1M leads per part, each part the next stretch of time), then runs
`leadml train --engine spark --spark-master local[2] --spark-conf spark.driver.memory=2g
--input FOLDER` on each size, and the local engine (`leadml train`) on the largest for
comparison (killed after --local-timeout seconds: its time and memory, or how it failed).
Each run is its own process; peak memory is sampled over the process tree (the leadml
driver, Spark's JVM, its Python workers) and for the leadml process alone (the driver's
Python, which holds the leads it trains on). Results go to
benchmarks/results/spark_train.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, run_measured_tree, write_results  # noqa: E402

PART = 1_000_000


def write_history(folder: Path, rows: int) -> None:
    """``rows`` generated leads with outcomes, as text, one Parquet part per million: each
    part the next stretch of the 18 months (time order across the parts)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leadml.setup.synthetic import HISTORY_DAYS, HISTORY_END, make_leads

    folder.mkdir(parents=True)
    parts = max(1, -(-rows // PART))
    span = HISTORY_DAYS / parts
    first = HISTORY_END - pd.Timedelta(days=HISTORY_DAYS)
    for k in range(parts):
        n = min(PART, rows - k * PART)
        block = make_leads(n, seed=500 + k, start=first + pd.Timedelta(days=k * span),
                           days=span, drift=0.45 / parts)
        block["lead_id"] = f"P{k}-" + block["lead_id"]
        text = block.astype(str).replace({"nan": "", "NaT": ""})
        pq.write_table(pa.Table.from_pandas(text, preserve_index=False),
                       folder / f"part-{k:03d}.parquet", row_group_size=250_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--local-timeout", type=float, default=1200)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    runs, generated = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
               "LEADML_HOME": str(tmp)}
        for rows in args.sizes:
            import time

            start = time.perf_counter()
            folder = tmp / f"leads_{rows}.parquet"
            write_history(folder, rows)
            generated[rows] = round(time.perf_counter() - start, 1)
            config = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
            config["dataset"]["path"] = str(folder)
            path = tmp / f"train_{rows}.yaml"
            path.write_text(yaml.safe_dump(config))
            engines = [("spark", ["--engine", "spark", "--spark-master", args.master,
                                  "--spark-conf", f"spark.driver.memory={args.driver_memory}",
                                  "--input", str(folder)])]
            if rows == max(args.sizes):
                engines.append(("local", []))
            for engine, extra in engines:
                cmd = [sys.executable, "-m", "leadml.cli", "train", "--config", str(path),
                       *extra]
                result = run_measured_tree(cmd, env, every=0.5, check=False,
                                           timeout=args.local_timeout if engine == "local"
                                           else None)
                out = result.pop("stdout")
                shown_metrics = {k: next((line.split()[1] for line in out.splitlines()
                                          if line.strip().startswith(k + " ")), None)
                                 for k in ("roc_auc", "log_loss", "ece")}
                chosen = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                               if line.startswith("model:")), "")
                run = {"rows": rows, "engine": engine, **result,
                       "test_roc_auc": shown_metrics["roc_auc"],
                       "test_log_loss": shown_metrics["log_loss"],
                       "test_ece": shown_metrics["ece"], "chosen": chosen}
                print(run, flush=True)
                runs.append(run)
    load_after = os.getloadavg()[0]

    def shown(r: dict) -> str:
        if r["returncode"] != 0:
            why = "killed after the timeout" if r["returncode"] < 0 else \
                f"failed (exit {r['returncode']})"
            return (f"| {r['rows']:,} | {r['engine']} | {why} at {r['seconds']:.0f} s | "
                    f"{r['peak_rss_mib']:,.0f} MiB | {r['root_peak_rss_mib']:,.0f} MiB | - | - "
                    "| - | - | - |")
        return (f"| {r['rows']:,} | {r['engine']} | {r['seconds']:.0f} s | "
                f"{r['peak_rss_mib']:,.0f} MiB | {r['root_peak_rss_mib']:,.0f} MiB | "
                f"{r['seconds'] / (r['rows'] / 1e6):.0f} s | {r['test_roc_auc']} | "
                f"{r.get('test_log_loss')} | {r.get('test_ece')} | {r.get('chosen', '')} |")

    spark = {r["rows"]: r for r in runs if r["engine"] == "spark" and r["returncode"] == 0}
    ratio = ""
    if len(spark) >= 2:
        small, big = spark[min(spark)], spark[max(spark)]
        ratio = (f"\n\nDriver memory, {max(spark):,} against {min(spark):,} leads: the leadml "
                 f"process (the driver's Python) {big['root_peak_rss_mib'] / small['root_peak_rss_mib']:.2f}x, "
                 f"the whole tree (with Spark's JVM and workers) "
                 f"{big['peak_rss_mib'] / small['peak_rss_mib']:.2f}x.")
    summary = (
        f"`leadml train` on generated histories (Parquet parts, text values; generated in "
        f"{generated} s) with `--engine spark --spark-master {args.master} --spark-conf "
        f"spark.driver.memory={args.driver_memory}`, and the local engine on the largest "
        f"(killed after {args.local_timeout:.0f} s). The Spark engine reads, checks and cuts "
        "the history into its windows on the cluster (with the audit's totals, rates by "
        "tenth and field insights counted there over every lead) and hands the driver the "
        "newest model.max_fit_leads (400,000) leads of each window; the test metrics are "
        "over the whole test window on both engines, so the two rows at the largest size "
        "bound what the driver's reduced calibration windows change. Load average (1 min) "
        f"{load_before:.2f} before, {load_after:.2f} after.\n\n"
        "| leads | engine | wall time | peak memory (tree) | peak memory (leadml process) "
        "| seconds per million leads | test ROC AUC | log loss | ECE | chosen |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(shown(r) for r in runs) + ratio)
    print(write_results("spark_train", {"runs": runs, "generated_seconds": generated,
                                        "load": [load_before, load_after]}, summary)
          .read_text())


if __name__ == "__main__":
    main()
