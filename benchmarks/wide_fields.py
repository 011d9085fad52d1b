"""Memory and time of encoding a chunk whose categorical block pairs a wide one-hot field
with a near-unique one, with the distinct values encoded in slices or all at once.

    python benchmarks/wide_fields.py [--categories 3000] [--chunk 50000]

A logistic regression trained on 75,000 leads where `city` has 3,000 values of 25 leads
each (3,000 one-hot columns) and `company` is near-unique; then one chunk of leads with a
new company each. The block's distinct values are encoded as padded rows (as many as the
most distinct field has: the chunk's companies) times the block's width; leadml encodes
them `encoded.SLICE_BYTES` at a time. Peak memory is traced (tracemalloc, numpy's arrays
included) around `leadml.model.linear.field_parts` on the chunk, both ways in the same run.

Writes benchmarks/results/wide_fields.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

from leadml.config import Columns, ModelConfig
from leadml.model import encoded, linear
from leadml.model.pipeline import build_pipeline


def measured(pipe, leads: pd.DataFrame, slice_bytes: int) -> dict:
    encoded.SLICE_BYTES = slice_bytes
    linear.field_parts(pipe, leads)  # warm
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        linear.field_parts(pipe, leads)
        seconds.append(time.perf_counter() - start)
    tracemalloc.start()
    linear.field_parts(pipe, leads)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": round(min(seconds), 2), "peak_mib": round(peak / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--categories", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=50_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = 25 * args.categories
    train = pd.DataFrame({"n": rng.normal(size=n).astype(str),
                          "city": [f"city{i % args.categories}" for i in range(n)],
                          "company": [f"co{i}" for i in rng.permutation(n)]})
    columns = Columns(numeric=("n",), categorical=("city", "company"), text=())
    pipe = build_pipeline("logistic_regression", columns, ModelConfig(),
                          missing_values=("",)).fit(train, rng.integers(0, 2, n))
    width = pipe.named_steps["encode"].output_indices_["categorical"]
    leads = pd.DataFrame({"n": rng.normal(size=args.chunk).astype(str),
                          "city": [f"city{i % args.categories}" for i in range(args.chunk)],
                          "company": [f"new{i}" for i in range(args.chunk)]}).astype("str")
    default = encoded.SLICE_BYTES
    sliced = measured(pipe, leads, default)
    whole = measured(pipe, leads, 1 << 62)
    numbers = {"categories": args.categories, "chunk": args.chunk,
               "block_width": width.stop - width.start, "slice_bytes": default,
               "sliced": sliced, "at_once": whole,
               "peak_ratio_at_once_over_sliced": round(whole["peak_mib"] / sliced["peak_mib"], 2)}
    summary = (
        f"One chunk of {args.chunk:,} leads, each with a company never seen, beside `city` "
        f"({args.categories:,} one-hot columns; the block is {numbers['block_width']:,} wide). "
        f"`leadml.model.linear.field_parts` on it, best of three, peak traced memory:\n\n"
        f"| distinct values encoded | seconds | peak memory |\n|---|---|---|\n"
        f"| in slices of {default >> 20} MiB (leadml) | {sliced['seconds']} s | "
        f"{sliced['peak_mib']:,} MiB |\n"
        f"| all at once (before) | {whole['seconds']} s | {whole['peak_mib']:,} MiB |\n\n"
        f"All at once takes **{numbers['peak_ratio_at_once_over_sliced']}x** the memory; the "
        f"slices cost time in this case only (each slice is one call of the encoder, whose "
        f"own cost grows with the categories it knows). Ordinary exports fit in one slice.")
    print(write_results("wide_fields", numbers, summary).read_text())


if __name__ == "__main__":
    main()
