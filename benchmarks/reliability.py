"""Reliability at volume: thousands of fuzzed lead files, and each early-exit path repeated
until a rare abort (1 run in 24 before) would show.

    python benchmarks/reliability.py [--examples 2000] [--spark-examples 200] [--repeats 200]
                                     [--seed 20261124]

1. ``tests/test_fuzz.py`` with ``--examples`` Hypothesis examples per test (CSV files, Parquet
   files, number spellings, frames through ``leadml.score_leads``) and ``--spark-examples``
   CSV files through the Spark engine (one session), with a fixed seed: zero invariant
   violations expected.
2. ``leadml score`` on a file lacking a model column, a file with the wrong delimiter and a
   missing file, ``--repeats`` times each (two at a time): the documented exit code (3) every
   time, never 1, never a signal.

Results go to ``benchmarks/results/reliability.{md,json}``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import REPO, train_sample_model, write_results


def fuzz(examples: int, spark_examples: int, seed: int) -> dict:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py"],
        cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "LEADML_FUZZ_EXAMPLES": str(examples),
             "LEADML_FUZZ_SPARK_EXAMPLES": str(spark_examples),
             "LEADML_FUZZ_SEED": str(seed)})
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    return {"examples_per_test": examples, "spark_examples": spark_examples, "tests": 5,
            "seed": seed, "exit_code": done.returncode, "pytest": last,
            "seconds": round(time.perf_counter() - start, 1)}


def early_exits(repeats: int, tmp: Path, env: dict) -> dict:
    import pandas as pd

    nightly = pd.read_csv(REPO / "data/sample/nightly.csv", dtype=str, keep_default_na=False)
    nightly.drop(columns=["estimated_budget"]).to_csv(tmp / "cols.csv", index=False)
    nightly.to_csv(tmp / "semi.csv", index=False, sep=";")
    paths = {"missing columns": tmp / "cols.csv", "wrong delimiter": tmp / "semi.csv",
             "missing file": tmp / "absent.csv"}

    def once(item):
        name, i = item
        out = tmp / f"out-{name.replace(' ', '_')}-{i}.csv"
        done = subprocess.run([sys.executable, "-m", "leadml.cli", "score", str(paths[name]),
                               "-o", str(out)], capture_output=True, env=env)
        return name, done.returncode, out.exists()

    codes: dict[str, Counter] = {name: Counter() for name in paths}
    outputs = 0
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        for name, code, wrote in pool.map(once, [(n, i) for n in paths for i in
                                                 range(repeats)]):
            codes[name][code] += 1
            outputs += wrote
    return {"repeats": repeats, "exit_codes": {n: dict(c) for n, c in codes.items()},
            "outputs_written": outputs, "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--spark-examples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "LEADML_HOME": str(tmp), "MLFLOW_TRACKING_URI":
               f"sqlite:///{tmp / 'mlflow.db'}"}
        train_sample_model(tmp, env, candidates=["logistic_regression"])
        exits = early_exits(args.repeats, tmp, env)
    fuzzed = fuzz(args.examples, args.spark_examples, args.seed)
    rows = "\n".join(f"| {name} | {args.repeats} | {codes} |"
                     for name, codes in exits["exit_codes"].items())
    summary = (
        f"## Fuzzed lead files\n\n{fuzzed['examples_per_test']} Hypothesis examples for each of "
        "four tests (CSV files, Parquet files, number spellings, frames through "
        f"`leadml.score_leads`) and {fuzzed['spark_examples']} CSV files through the Spark "
        f"engine (one session), seed {fuzzed['seed']}: `{fuzzed['pytest']}` (exit "
        f"{fuzzed['exit_code']}) in {fuzzed['seconds']} s. CI runs 60 examples per test and "
        "6 on Spark.\n\n"
        f"## Early exits repeated\n\n| path | runs | exit codes seen |\n|---|---|---|\n{rows}\n\n"
        f"Outputs written by these runs: {exits['outputs_written']}. "
        f"{exits['seconds']} s, two runs at a time.\n")
    print(write_results("reliability", {"fuzz": fuzzed, "early_exits": exits}, summary)
          .read_text())


if __name__ == "__main__":
    main()
