"""Peak memory of `leadml score` on a wide CRM export: many custom fields the model does
not read, beside the ones it does.

    python benchmarks/wide_export.py [--rows 200000] [--fields 150]

Generated leads with `--fields` extra free-text columns (a CRM's custom fields, ~40 bytes
each: ~6 KB a lead), scored with the default chunk size (as many rows as hold
`scoring.CHUNK_BYTES` of the input) and with 50,000 rows a chunk (the fixed default before),
each in its own process, same model, same run; the two outputs must be identical. The same
wide leads as one Parquet file are scored too (read a batch of pages at a time), and a narrow
file of the same leads, for the baseline. Then the wide file is read as a training history
(`io.read_table`: Arrow's reader where it reads the file as pandas would) against pandas'
reader alone, each in its own process.

Writes benchmarks/results/wide_export.{json,md}. Uses a temporary MLflow store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    REPO,
    run_measured,
    train_sample_model,
    write_leads,
    write_results,
)

from leadml.data.tables import CHUNK_BYTES  # noqa: E402
from leadml.scoring.chunks import chunk_rows  # noqa: E402
from leadml.scoring.settings import ScoreSettings  # noqa: E402


def widen(narrow: Path, wide: Path, fields: int) -> None:
    """``narrow`` with ``fields`` more free-text columns, written a block at a time."""
    rng = np.random.default_rng(0)
    words = np.array([f"custom value {i} of a longer free-text field" for i in range(500)],
                     dtype=object)
    first = True
    for block in pd.read_csv(narrow, dtype=str, keep_default_na=False, chunksize=50_000):
        extra = pd.DataFrame({f"custom_field_{j}__c": words[rng.integers(0, 500, len(block))]
                              for j in range(fields)}, index=block.index)
        pd.concat([block, extra], axis=1).to_csv(wide, mode="w" if first else "a",
                                                 header=first, index=False)
        first = False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--fields", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "LEADML_HOME": str(tmp)}
        train_sample_model(tmp, env)
        rules = str(REPO / "pipelines/configs/bant.yaml")
        narrow, wide = tmp / "narrow.csv", tmp / "wide.csv"
        write_leads(narrow, args.rows)
        widen(narrow, wide, args.fields)
        auto_rows = chunk_rows(wide, ScoreSettings())
        parquet = tmp / "wide.parquet"
        pd.read_csv(wide, dtype=str, keep_default_na=False).to_parquet(parquet, index=False)

        def score(path: Path, out: str, *extra: str) -> dict:
            return run_measured([sys.executable, "-m", "leadml.cli", "score", str(path), "-o",
                                 str(tmp / out), "--model", "models:/leadml/1", "--rules",
                                 rules, "--no-reasons", "--scored-at", "2026-11-30T00:00:00",
                                 *extra], env)

        runs = {"narrow_default": score(narrow, "narrow.out.csv"),
                "wide_default": score(wide, "auto.out.csv"),
                "wide_50000_rows": score(wide, "fixed.out.csv", "--chunk-rows", "50000"),
                "wide_parquet_default": score(parquet, "parquet.out.csv")}
        same = (tmp / "auto.out.csv").read_bytes() == (tmp / "fixed.out.csv").read_bytes() \
            == (tmp / "parquet.out.csv").read_bytes()
        reading = {name: run_measured([sys.executable, "-c", "import sys; from leadml import io; "
                                       f"io.{call}(sys.argv[1]{extra})", str(wide)], env)
                   for name, call, extra in (("read_table", "read_table", ""),
                                             ("pandas_only", "_pandas_table", ", ',', 'utf-8'"))}
        sizes = {"narrow_mib": round(narrow.stat().st_size / 2**20),
                 "wide_mib": round(wide.stat().st_size / 2**20)}
    numbers = {"rows": args.rows, "fields": args.fields, "files": sizes,
               "wide_default_chunk_rows": auto_rows, "identical_output": same,
               **{k: {"seconds": r["seconds"], "peak_rss_mib": r["peak_rss_mib"]}
                  for k, r in runs.items()},
               "history_read": {k: {"seconds": r["seconds"], "peak_rss_mib": r["peak_rss_mib"]}
                                for k, r in reading.items()}}
    lines = [f"{args.rows:,} generated leads; the wide file adds {args.fields} free-text custom "
             f"fields ({sizes['wide_mib']:,} MiB against {sizes['narrow_mib']:,} MiB). Each "
             "run is a whole `leadml score --no-reasons` process, same model, same run.", "",
             "| file, chunk size | wall time | peak memory |", "|---|---|---|"]
    for name, label in (("narrow_default", "narrow, default (50,000 rows)"),
                        ("wide_default", f"wide, default ({auto_rows:,} rows: about "
                                         f"{CHUNK_BYTES >> 20} MiB of input)"),
                        ("wide_50000_rows", "wide, `--chunk-rows 50000` (the old default)"),
                        ("wide_parquet_default", "the wide leads as one Parquet file, default")):
        r = runs[name]
        lines.append(f"| {label} | {r['seconds']:.1f} s | {r['peak_rss_mib']:,.0f} MiB |")
    lines += ["", f"- the three wide outputs are {'identical' if same else 'DIFFERENT'}", "",
              "The wide file read as a training history (whole process):", "",
              "| reader | wall time | peak memory |", "|---|---|---|"]
    for name, label in (("read_table", "`io.read_table` (Arrow's reader, pandas' as fallback)"),
                        ("pandas_only", "pandas' `read_csv` alone (before)")):
        r = reading[name]
        lines.append(f"| {label} | {r['seconds']:.1f} s | {r['peak_rss_mib']:,.0f} MiB |")
    print(write_results("wide_export", numbers, "\n".join(lines)).read_text())


if __name__ == "__main__":
    main()
