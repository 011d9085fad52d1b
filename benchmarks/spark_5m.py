"""Spark engine against the local engine on the same machine, and how Spark scales.

    pip install -e ".[spark,bench]"
    python benchmarks/spark_5m.py [--rows 5000000] [--small 1000000] [--master local[2]]
                                  [--submit-rows 3000]

Writes generated leads as Parquet (5M and 1M rows), scores the 5M file with the local engine
and with `--engine spark --spark-master local[2]`, and the 1M file with Spark, each in its
own process, with the same model (trained on data/sample) and rules; and a small nightly
CSV (3,000 leads) under `spark-submit --master local[2]`, where Spark's own settings hold
(200 shuffle partitions: leadml scores in as many partitions as there are cores). Peak memory is the
sampled sum over the process and its children (Spark's JVM and Python workers). Results go
to benchmarks/results/spark_5m.{json,md}. Spark is not expected to win on 2 cores: the
numbers show its overhead and whether its time grows linearly with the rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    BLOCK,
    REPO,
    run_measured_tree,
    train_sample_model,
    write_results,
)


def write_parquet(path: Path, rows: int) -> None:
    """``rows`` generated new leads as one Parquet file, written block by block."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leadml.setup.synthetic import OUTCOME_COLUMNS, make_leads

    writer = None
    for k, start in enumerate(range(0, rows, BLOCK)):
        block = make_leads(min(BLOCK, rows - start), seed=100 + k).drop(columns=OUTCOME_COLUMNS)
        block["lead_id"] = f"B{k}-" + block["lead_id"]
        table = pa.Table.from_pandas(block.astype(str).replace("nan", ""), preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=100_000)
    writer.close()


def submit(tmp: Path, args, env: dict, rules: str) -> dict:
    """A small nightly CSV scored under spark-submit (the session is Spark's, not leadml's:
    200 shuffle partitions unless the cluster says otherwise)."""
    import os

    import leadml.cli
    from leadml.setup.synthetic import make_sample

    _, nightly = make_sample(10, seed=11, nightly_rows=args.submit_rows)
    nightly.to_csv(tmp / "nightly.csv", index=False)
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "spark-submit"), "--master", args.master, leadml.cli.__file__,
           "score", (tmp / "nightly.csv").as_uri(), "--output",
           (tmp / "submitted.parquet").as_uri(), "--engine", "spark", "--model",
           "models:/leadml/1", "--rules", rules]
    result = run_measured_tree(cmd, {**env, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                                     "PYSPARK_PYTHON": sys.executable,
                                     "PYSPARK_DRIVER_PYTHON": sys.executable})
    result.pop("stdout")
    print("spark-submit", args.submit_rows, result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--submit-rows", type=int, default=3_000)
    args = parser.parse_args()
    rules = str(REPO / "pipelines/configs/bant.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "LEADML_HOME": str(tmp)}
        train_sample_model(tmp, env)
        files = {n: tmp / f"leads_{n}.parquet" for n in (args.rows, args.small)}
        for n, path in files.items():
            write_parquet(path, n)

        def score(n: int, engine: str) -> dict:
            cmd = [sys.executable, "-m", "leadml.cli", "score", str(files[n]), "-o",
                   str(tmp / f"{engine}_{n}.parquet"), "--model", "models:/leadml/1",
                   "--rules", rules, "--engine", engine]
            if engine == "spark":
                cmd += ["--spark-master", args.master, "--spark-conf",
                        "spark.driver.memory=6g"]
            result = run_measured_tree(cmd, env)
            result.pop("stdout")
            print(engine, n, result, flush=True)
            return result

        runs = {"local_large": score(args.rows, "local"),
                "spark_large": score(args.rows, "spark"),
                "spark_small": score(args.small, "spark"),
                "spark_submit": submit(tmp, args, env, rules)}
    r = runs
    growth = r["spark_large"]["seconds"] / r["spark_small"]["seconds"]
    numbers = {"rows": args.rows, "small_rows": args.small, "master": args.master, **runs,
               "ratio_spark_over_local": round(r["spark_large"]["seconds"]
                                               / r["local_large"]["seconds"], 2),
               "spark_time_growth_large_over_small": round(growth, 2),
               "row_growth": round(args.rows / args.small, 2)}
    summary = "\n".join([
        f"Same model (trained on data/sample), same rules, generated leads as Parquet; "
        f"Spark master `{args.master}` on this machine; every run its own process (wall time "
        "includes start-up, model loading and writing output, rejects and manifest).",
        "",
        "| run | rows | wall time | peak memory (process tree) |",
        "|---|---|---|---|",
        f"| local engine | {args.rows:,} | {r['local_large']['seconds']:.1f} s | "
        f"{r['local_large']['peak_rss_mib']:,.0f} MiB |",
        f"| Spark `{args.master}` | {args.rows:,} | {r['spark_large']['seconds']:.1f} s | "
        f"{r['spark_large']['peak_rss_mib']:,.0f} MiB |",
        f"| Spark `{args.master}` | {args.small:,} | {r['spark_small']['seconds']:.1f} s | "
        f"{r['spark_small']['peak_rss_mib']:,.0f} MiB |",
        f"| `spark-submit --master {args.master}`, a CSV (Spark's 200 shuffle partitions) | "
        f"{args.submit_rows:,} | {r['spark_submit']['seconds']:.1f} s | "
        f"{r['spark_submit']['peak_rss_mib']:,.0f} MiB |",
        "",
        f"- Spark / local on {args.rows:,} rows: **{numbers['ratio_spark_over_local']}x**",
        f"- Spark time, {args.rows:,} over {args.small:,} rows: **{growth:.2f}x** for "
        f"{numbers['row_growth']}x the rows (linear would be {numbers['row_growth']}x; less "
        "means a fixed start-up cost is being amortised)",
    ])
    print(write_results("spark_5m", numbers, summary).read_text())


if __name__ == "__main__":
    main()
