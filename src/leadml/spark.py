"""Score lead files on Apache Spark with the local engine's own code, partition by partition.

Nothing about a lead is decided here: each partition's rows go through
:func:`leadml.scoring.score_chunk`, the function the local engine calls on each chunk, with
the same model, contract and rules. What Spark adds is what one machine cannot do alone:

1. **record numbers**: a first pass counts the rows of each input partition, so each row
   gets the record number it has in the file (for rejects and for keeping input order);
2. **duplicate ids across partitions**: the first record of each id is found with a window
   over the id (a shuffle), and every later record of that id is rejected, as locally;
3. **the model ships once**: the driver serialises it with skops and broadcasts the bytes;
   each Python worker loads it once (with leadml's own allow-list) and keeps it;
4. **atomic output**: output and rejects are written as Parquet folders under temporary
   names beside ``OUT`` and renamed into place only when every input row is accounted for;
   the manifest comes last. After a failure nothing is at ``OUT``.

Workers must run the driver's Python: ``PYSPARK_PYTHON`` is set to the running interpreter
unless the user set it. See docs/spark.md for clusters.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from leadml import bant, io
from leadml.config import Rules
from leadml.registry import Contract
from leadml.schema import RECORD_ID, LeadDataError
from leadml.scoring import (
    OUTPUT_COLUMNS,
    ScoreSettings,
    TooManyRejects,
    build_manifest,
    check_columns,
    known_categories,
    reject_kinds,
    score_chunk,
)

logger = logging.getLogger(__name__)

CORRUPT = "_corrupt_record"
RECORD, FIRST, STATUS = "_record", "_first_record", "_status"
_WORKER_CACHE: dict[str, object] = {}  # per Python worker: model and explainer, loaded once


def session(master: str | None = None, conf: dict[str, str] | None = None):
    """A Spark session whose workers run this Python; ``local[*]`` unless told otherwise.
    ``conf``: extra Spark settings (``spark.driver.memory``, ...), applied before start."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("leadml-score")
    # Under spark-submit (or with a session already running) the master is set already.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ or SparkSession.getActiveSession()
    if master or not submitted:
        master = master or "local[*]"
        builder = builder.master(master)
        if master.startswith("local"):  # one machine: few shuffle partitions, not 200
            builder = builder.config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count()
                                                                             or 2)))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return (builder.config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())


def side_paths(output: Path, rejects: Path | None = None) -> tuple[Path, Path]:
    """Rejects (a Parquet folder) and manifest paths beside ``output``."""
    stem = Path(output).with_suffix("")
    return rejects or Path(f"{stem}.rejects.parquet"), Path(f"{stem}.manifest.json")


def _is_parquet(path: Path) -> bool:
    if path.is_dir():
        return any(p.suffix == ".parquet" for p in path.rglob("*.parquet"))
    return path.suffix.lower() in {".parquet", ".pq"}


def _read(spark, path: Path, settings: ScoreSettings):
    """Every row of a CSV or Parquet file (or folder of parts), CSV values as text."""
    from pyspark.sql.types import StringType, StructField, StructType

    if _is_parquet(path):
        return spark.read.parquet(str(path)), False
    options = {"header": "true", "sep": settings.delimiter, "encoding": settings.encoding,
               "multiLine": "true", "escape": '"', "mode": "PERMISSIVE",
               "nullValue": "\0never\0", "emptyValue": ""}
    header = spark.read.options(**options).csv(str(path)).columns
    if not header:
        raise LeadDataError(f"'{path}' has no header row")
    schema = StructType([StructField(c, StringType()) for c in header]
                        + [StructField(CORRUPT, StringType())])
    frame = spark.read.options(**options, columnNameOfCorruptRecord=CORRUPT).schema(schema) \
        .csv(str(path))
    return frame, True


class _FirstRecords:
    """Answers ``first_time(ids)`` from the first record of each id, found across the file."""

    def __init__(self, records: np.ndarray, firsts: np.ndarray):
        self.first = records == firsts

    def first_time(self, ids: pd.Series) -> np.ndarray:
        return self.first


def _worker_model(blob, explain: bool, reference):
    """The model (and its explainer), deserialised once per Python worker."""
    import hashlib

    import skops.io

    from leadml.explain import Explainer
    from leadml.registry import TRUSTED_TYPES

    data = blob.value
    key = hashlib.sha256(data).hexdigest() + str(explain)
    if key not in _WORKER_CACHE:
        model = skops.io.loads(data, trusted=TRUSTED_TYPES)
        explainer = Explainer(model, reference) if explain and reference else None
        _WORKER_CACHE[key] = (model, explainer)
    return _WORKER_CACHE[key]


def _out_schema():
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    text = [c for c in OUTPUT_COLUMNS if c not in ("conversion_probability", "score")]
    fields = [StructField(RECORD, LongType()), StructField(STATUS, StringType()),
              StructField("conversion_probability", DoubleType()),
              StructField("score", LongType()),
              *[StructField(c, StringType()) for c in text],
              StructField("reason", StringType()), StructField("raw_record", StringType()),
              StructField("reason_kind", StringType()), StructField("count", LongType())]
    return StructType(fields)


def score_spark(input_path: Path, output: Path, *, model, contract: Contract, rules: Rules,
                settings: ScoreSettings | None = None, master: str | None = None,
                conf: dict[str, str] | None = None, spark=None) -> dict:
    """Score ``input_path`` on Spark into the Parquet folder ``output``; returns the manifest.
    Raises :class:`~leadml.scoring.TooManyRejects` like the local engine (rejects and
    manifest written, no output)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    started = time.perf_counter()
    settings = settings or ScoreSettings()
    input_path, output = Path(input_path), Path(output)
    if output.suffix.lower() not in {".parquet", ".pq"}:
        raise LeadDataError(f"--engine spark writes Parquet: name the output '*.parquet', got "
                            f"'{output}'")
    if input_path.resolve() == output.resolve():
        raise LeadDataError("--output must differ from the input file")
    if not input_path.exists():
        raise LeadDataError(f"input '{input_path}' does not exist")
    rejects_path, manifest_path = side_paths(output, settings.rejects)
    scored_at = settings.scored_at or pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    spark = spark or session(master, conf)

    frame, from_csv = _read(spark, input_path, settings)
    header = [c for c in frame.columns if c != CORRUPT]
    run_contract = contract
    if contract.id_column is None:
        from dataclasses import replace

        run_contract = replace(contract, id_column=RECORD_ID)
    check_columns([*header, *([RECORD_ID] if contract.id_column is None else [])],
                  run_contract, rules, path=input_path, delimiter=settings.delimiter)

    # 1. Record numbers: rows per input partition, then offsets.
    counts = dict(frame.groupBy(sf.spark_partition_id().alias("p")).count().collect())
    offsets, total = {}, 0
    for pid in sorted(counts):
        offsets[pid] = total
        total += counts[pid]
    logger.info("%d rows in %d partitions", total, len(counts))
    from pyspark.sql.types import LongType, StructField, StructType

    numbered_schema = StructType([*frame.schema.fields, StructField(RECORD, LongType())])

    def number(batches):
        from pyspark import TaskContext

        start = offsets.get(TaskContext.get().partitionId(), 0) + 1
        for batch in batches:
            out = batch.assign(**{RECORD: np.arange(start, start + len(batch))})
            text = [c for c in out.columns if isinstance(out[c].dtype, pd.StringDtype)]
            yield out.astype({c: object for c in text})
            start += len(batch)

    numbered = frame.mapInPandas(number, numbered_schema)
    if contract.id_column is None:
        numbered = numbered.withColumn(RECORD_ID, sf.col(RECORD).cast("string"))
    # 2. The first record of each id, wherever it is.
    id_col = run_contract.id_column
    numbered = numbered.withColumn(FIRST, sf.min(RECORD).over(Window.partitionBy(id_col)))

    # 3. Score each partition with the local engine's code.
    blob = spark.sparkContext.broadcast(_skops_bytes(model)) if model is not None else None
    categories = known_categories(model)
    cutoffs = bant.grade_cutoffs(rules.grades, np.asarray(contract.reference_quantiles)) \
        if model is not None else (np.nan, np.nan, np.nan)
    scored_at_ts = pd.Timestamp(scored_at)
    scored_at_ts = scored_at_ts.tz_localize("UTC") if scored_at_ts.tzinfo is None else \
        scored_at_ts.tz_convert("UTC")
    explain = settings.reasons and model is not None and contract.reference_lead is not None
    columns = [*header, *([RECORD_ID] if contract.id_column is None else [])]
    delimiter = settings.delimiter

    def score(batches):
        fitted, explainer = _worker_model(blob, explain, contract.reference_lead) \
            if blob is not None else (None, None)
        for batch in batches:
            yield score_batch(batch, columns=columns, from_csv=from_csv, model=fitted,
                              explainer=explainer, contract=run_contract, rules=rules,
                              cutoffs=cutoffs, scored_at=scored_at, scored_at_ts=scored_at_ts,
                              delimiter=delimiter, categories=categories)

    results = numbered.mapInPandas(score, _out_schema()).persist()
    try:
        return _finish(results, total=total, input_path=input_path, output=output,
                       rejects_path=rejects_path, manifest_path=manifest_path,
                       settings=settings, model=model, contract=contract, rules=rules,
                       cutoffs=cutoffs, scored_at=scored_at, explain=explain,
                       started=started)
    finally:
        results.unpersist()


def score_batch(batch: pd.DataFrame, *, columns: list[str], from_csv: bool, model,
                explainer, contract: Contract, rules: Rules, cutoffs, scored_at: str,
                scored_at_ts, delimiter: str, categories: dict) -> pd.DataFrame:
    """One Arrow batch of a partition through :func:`score_chunk`: its scored rows, rejects
    and unseen-category counts, as rows of one frame told apart by ``_status``."""
    records = batch[RECORD].to_numpy()
    corrupt = batch[CORRUPT].notna().to_numpy() if CORRUPT in batch else \
        np.zeros(len(batch), bool)
    malformed = [io.Malformed(int(r), "malformed row: its fields do not match the header "
                              "(CSV reader)", str(raw))
                 for r, raw in zip(records[corrupt], batch.loc[corrupt, CORRUPT],
                                   strict=True)] if corrupt.any() else []
    rows = batch.loc[~corrupt]
    raw = rows[columns].reset_index(drop=True)
    if from_csv:
        raw = raw.fillna("")
    chunk = io.Chunk(int(records[0]) if len(records) else 1, raw, records[~corrupt], malformed)
    seen = _FirstRecords(records[~corrupt], rows[FIRST].to_numpy())
    result, rejects, unseen, _ = score_chunk(
        chunk, model=model, contract=contract, rules=rules, cutoffs=cutoffs,
        scored_at=scored_at, scored_at_ts=scored_at_ts, delimiter=delimiter, seen=seen,
        explainer=explainer, categories=categories)
    kept = np.isin(chunk.records, rejects["record"].to_numpy(), invert=True) \
        if rejects is not None else np.ones(len(chunk.records), bool)
    parts = [result.assign(**{RECORD: chunk.records[kept], STATUS: "scored"})]
    if rejects is not None:
        parts.append(pd.DataFrame({
            RECORD: rejects["record"].to_numpy(), STATUS: "rejected",
            "lead_id": rejects["lead_id"].to_numpy(), "reason": rejects["reason"].to_numpy(),
            "raw_record": rejects["raw_record"].to_numpy(),
            "reason_kind": reject_kinds(rejects["reason"])}))
    if unseen:
        parts.append(pd.DataFrame({STATUS: "unseen", "lead_id": list(unseen),
                                   "count": list(unseen.values())}))
    out = pd.concat(parts, ignore_index=True).reindex(columns=_out_schema().fieldNames())
    for col in ("score", "count", RECORD):
        out[col] = pd.array(out[col], dtype="Int64")
    out["conversion_probability"] = out["conversion_probability"].astype("float64")
    return _for_arrow(out)


def _for_arrow(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain Python strings: PySpark's Arrow bridge rejects pandas' own
    Arrow-backed strings (chunked arrays)."""
    numeric = {"conversion_probability", "score", "count", RECORD}
    for col in frame.columns:
        if col not in numeric:  # text: Python strings, None where missing
            values = frame[col].astype(object)
            frame[col] = values.where(values.notna(), None)
    return frame


def _skops_bytes(model) -> bytes:
    import skops.io

    return skops.io.dumps(model)


def _finish(results, *, total, input_path, output, rejects_path, manifest_path, settings,
            model, contract, rules, cutoffs, scored_at, explain, started) -> dict:
    """Count, check every row is accounted for, write under temporary names, rename."""
    from pyspark.sql import functions as sf

    by_status = dict(results.groupBy(STATUS).count().collect())
    scored, rejected = by_status.get("scored", 0), by_status.get("rejected", 0)
    if scored + rejected != total:
        raise RuntimeError(f"{total} rows read but {scored} scored and {rejected} rejected: "
                           "refusing to write output (a bug: please report it)")
    rate = rejected / total if total else 0.0
    status = "ok" if rate <= settings.max_reject_rate else "failed: too many rejects"
    ok = results.filter(sf.col(STATUS) == "scored")
    bad = results.filter(sf.col(STATUS) == "rejected")
    counts = {
        "label": Counter(dict(ok.groupBy("label").count().collect())),
        "grade": Counter({k: v for k, v in ok.groupBy("grade").count().collect() if k}),
        "reject_reason": Counter(dict(bad.groupBy("reason_kind").count().collect())),
        "unseen": Counter({k: v for k, v in results.filter(sf.col(STATUS) == "unseen")
                          .groupBy("lead_id").agg(sf.sum("count")).collect()}),
    }
    tmp_out = output.with_name(f".{output.name}.{uuid.uuid4().hex}.tmp")
    tmp_rej = rejects_path.with_name(f".{rejects_path.name}.{uuid.uuid4().hex}.tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        if status == "ok":
            ok.orderBy(RECORD).select(*OUTPUT_COLUMNS).write.parquet(str(tmp_out))
        bad.orderBy(RECORD).select(sf.col(RECORD).alias("record"), "lead_id", "reason",
                                   "raw_record").write.parquet(str(tmp_rej))
        sha256 = io.scan(input_path, settings.encoding)[0] if input_path.is_file() else None
        manifest = build_manifest(
            status=status, input_path=input_path, sha256=sha256, rows_in=total,
            output=output, rejects_path=rejects_path, scored=scored, rejected=rejected,
            settings=settings, counts=counts, has_model=model is not None, contract=contract,
            rules=rules, cutoffs=cutoffs, scored_at=scored_at, field_reasons=explain,
            timings={"total_seconds": time.perf_counter() - started}, engine="spark")
        if status == "ok":
            _replace(tmp_out, output)
        _replace(tmp_rej, rejects_path)
        io.write_json(manifest, manifest_path)  # last: its presence marks a finished run
    finally:
        for tmp in (tmp_out, tmp_rej):
            shutil.rmtree(tmp, ignore_errors=True)
    if status != "ok":
        raise TooManyRejects(
            f"{rejected} of {total} rows ({rate:.1%}) were rejected, above --max-reject-rate "
            f"{settings.max_reject_rate:.1%}; no output was written. See {rejects_path} for "
            f"each row's reason (top: {dict(counts['reject_reason'].most_common(3))}).")
    return manifest


def _replace(tmp: Path, target: Path) -> None:
    """Move a finished Parquet folder onto ``target``, replacing an older one."""
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    os.replace(tmp, target)

