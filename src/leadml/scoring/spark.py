"""Score lead files on Apache Spark with the local engine's own code, partition by partition.

Nothing about a lead is decided here: each partition's rows go through
:func:`leadml.scoring.chunks.score_chunk` (the local engine runs its two halves,
``validate_chunk`` and ``score_checked``, on each chunk, with a thread between them), with
the same model, contract and rules. What Spark adds is what one machine cannot do alone:

1. **record numbers**: a first pass counts the rows of each input partition, so each row
   gets the record number it has in the file (for rejects and for keeping input order);
2. **duplicate ids across partitions**: the first record of each id is found with a window
   over the id (a shuffle), and every later record of that id is rejected, as locally;
3. **the model ships once**: the driver serialises it with skops and broadcasts the bytes;
   each Python worker loads it once (with leadml's own allow-list) and keeps it;
4. **atomic output**: output and rejects are written as Parquet folders under temporary
   names beside ``OUT`` and renamed into place only when every input row is accounted for,
   by the same run skeleton and commit protocol as the local engine (:mod:`leadml.scoring.run`):
   the manifest comes last, and after a failure nothing is at ``OUT``;
5. **cluster storage**: inputs and outputs may be URIs (``hdfs://``, ``s3a://``, ...),
   handed to Spark untouched; the run's file operations on them go through the session's
   Hadoop FileSystem (:mod:`leadml.scoring.hadoop`).

Workers must run the driver's Python: ``PYSPARK_PYTHON`` is set to the running interpreter
unless the user set it. See docs/spark.md for clusters.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config import Rules
from leadml.data.schema import OUTPUT_COLUMNS, RECORD_ID, Contract
from leadml.data.spark_files import CORRUPT, read_leads, session, spark_charset
from leadml.data.tables import (
    FOOTER_LINES,
    FOOTER_REASON,
    Chunk,
    input_files,
    is_parquet,
    physical_lines,
    scan,
    unreadable_record,
)
from leadml.errors import ConfigError, LeadDataError
from leadml.explain.effects import Explainer
from leadml.model.saved_paths import TRUSTED_TYPES
from leadml.rules import axes, capacity
from leadml.scoring.chunks import (
    ScoreSettings,
    capacity_section,
    check_columns,
    known_categories,
    output_columns,
    score_chunk,
)
from leadml.scoring.hadoop import HadoopStore, is_local, local_path
from leadml.scoring.run import (
    LocalStore,
    Run,
    build_manifest,
    check_accounted,
    grade_cutoffs,
    is_uri,
    location,
    reject_kinds,
    reject_status,
    run_paths,
    scored_at_time,
    too_many_rejects,
    with_record_ids,
)

logger = logging.getLogger(__name__)

# the record number rides in RECORD_ID (a number here, the id of a config without one)
FIRST, STATUS = "_first_record", "_status"
_WORKER_CACHE: dict[str, object] = {}  # per Python worker: model and explainer, loaded once


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

    data = blob.value
    key = hashlib.sha256(data).hexdigest() + str(explain)
    if key not in _WORKER_CACHE:
        model = skops.io.loads(data, trusted=TRUSTED_TYPES)
        explainer = Explainer(model, reference) if explain and reference else None
        _WORKER_CACHE[key] = (model, explainer)
    return _WORKER_CACHE[key]


def _out_schema(rules: Rules | None = None):
    """The scored batches' schema, with the lead columns the rules carry (text) and the fit
    and engagement columns when the rules name the axes."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    text = [c for c in OUTPUT_COLUMNS if c not in ("conversion_probability", "score")]
    text = [*text, *(rules.output.carry if rules else ())]
    on_axes = [StructField("fit_points", DoubleType()),
               StructField("engagement_points", DoubleType()),
               StructField("fit_grade", StringType()),
               StructField("engagement_level", StringType())] \
        if rules is not None and rules.axes is not None else []
    fields = [StructField(RECORD_ID, LongType()), StructField(STATUS, StringType()),
              StructField("conversion_probability", DoubleType()),
              StructField("expected_value", DoubleType()),
              StructField("score", LongType()),
              *[StructField(c, StringType()) for c in text], *on_axes,
              StructField("reason", StringType()), StructField("raw_record", StringType()),
              StructField("reason_kind", StringType()), StructField("count", LongType())]
    return StructType(fields)


def score_spark(input_path, output, *, model, contract: Contract, rules: Rules,
                settings: ScoreSettings | None = None, master: str | None = None,
                conf: dict[str, str] | None = None, spark=None) -> dict:
    """Score ``input_path`` on Spark into the Parquet folder ``output``; returns the manifest.

    Either may be a local path or a URI (``hdfs://``, ``s3a://``, ``abfss://``, ``gs://``,
    ``dbfs:/``, ``file://``), passed to Spark untouched; for a URI output the run's checks,
    temporaries, commit and manifest go through the session's Hadoop FileSystem
    (:class:`leadml.scoring.hadoop.HadoopStore`). Raises :class:`~leadml.errors.TooManyRejects`
    like the local engine (rejects and manifest written, no output).
    """
    started = time.perf_counter()
    settings = settings or ScoreSettings()
    # Local paths made absolute: the JVM resolves relative ones against its own working
    # folder, which is not this process's once a notebook or job has changed folder.
    input_path = str(input_path) if is_uri(input_path) else Path(input_path).absolute()
    output = str(output).rstrip("/") if is_uri(output) else Path(output).absolute()
    rejects = settings.rejects
    if rejects is not None and not is_uri(rejects):
        rejects = Path(rejects).absolute()
    if not str(output).lower().endswith((".parquet", ".pq")):
        raise LeadDataError(f"--engine spark writes Parquet: name the output '*.parquet', got "
                            f"'{output}'")
    if isinstance(input_path, Path):
        input_files(input_path)  # it exists
    if not is_parquet(input_path):
        spark_charset(settings.encoding)  # one Spark reads, before anything is written
    paths = run_paths(input_path, output, rejects,
                            rejects_suffix=".rejects.parquet", output_is_folder=True)
    scored_at, scored_at_ts = scored_at_time(settings.scored_at)
    run_contract = with_record_ids(contract)
    cutoffs = grade_cutoffs(model, rules, contract)
    axes.check(rules.axes, contract.features, source=rules.source, reasons=settings.reasons
               and model is not None and contract.reference_lead is not None)
    spark = spark or session(master, conf, name="leadml-score")
    hadoop = HadoopStore(spark)
    if isinstance(input_path, str):
        hadoop.data_files(input_path)  # it exists, on its store
        parquet = hadoop.is_parquet(input_path)
    else:
        parquet = is_parquet(input_path)
    store = hadoop if isinstance(output, str) else LocalStore()
    if isinstance(output, str) and hadoop.is_dir(paths.manifest):
        raise ConfigError(f"the manifest '{paths.manifest}' is a folder: move it or choose "
                          "another --output")
    with Run(paths, engine="spark", store=store) as run:
        frame, from_csv = read_leads(spark, str(input_path), parquet=parquet,
                                      delimiter=settings.delimiter,
                                      encoding=settings.encoding)
        header = [c for c in frame.columns if c != CORRUPT]
        check_columns([*header, *([RECORD_ID] if contract.id_column is None else [])],
                      run_contract, rules, path=input_path, delimiter=settings.delimiter)
        run.begin(input_path=location(input_path))
        results, total, explain = _score(spark, frame, header, from_csv, model=model,
                                         contract=contract, run_contract=run_contract,
                                         rules=rules, cutoffs=cutoffs, scored_at=scored_at,
                                         scored_at_ts=scored_at_ts, settings=settings)
        try:
            manifest, counts = _finish(results, run=run, total=total, settings=settings,
                                       model=model, contract=contract, rules=rules,
                                       cutoffs=cutoffs, scored_at=scored_at, explain=explain,
                                       started=started, hadoop=hadoop)
        finally:
            results.unpersist()
    if manifest["status"] != "ok":
        raise too_many_rejects(manifest["rejected"], total, settings.max_reject_rate,
                                     paths.rejects, counts["reject_reason"],
                                     footer=len(manifest["input"]["footer"]),
                                     hint=scored_at_ts.hint(contract.time_column,
                                                            counts["reject_reason"]))
    return manifest


def _apply_capacity(ok, rules: Rules, scored: int):
    """The scored rows with the sales-qualified leads beyond the capacity made nurture,
    found as the local engine finds them (:mod:`leadml.rules.capacity`): key descending, lead id
    ascending. Returns (the rows, the manifest's capacity section)."""
    from pyspark.sql import functions as sf

    policy = rules.label_policy.sales_qualified
    key = "expected_value" if policy.rank_by == "expected_value" else \
        "conversion_probability"
    candidates = ok.filter(sf.col("label") == "sales_qualified")
    n, k = candidates.count(), capacity.limit(policy, scored)
    cut = capacity.unranked_cutoff(k, n)
    if cut is None:
        last = (candidates.orderBy(sf.desc(key), sf.asc("lead_id")).limit(k)
                .orderBy(sf.asc(key), sf.desc("lead_id")).limit(1).collect()[0])
        cut = capacity.Cutoff(float(last[key]), last["lead_id"], k, n)
    if cut.key is not None:
        inside = (sf.col(key) > sf.lit(cut.key)) | (
            (sf.col(key) == sf.lit(cut.key)) & (sf.col("lead_id") <= sf.lit(cut.lead_id)))
        beyond = (sf.col("label") == "sales_qualified") & ~inside
        text = capacity.note(k, policy)
        reasons = sf.when(sf.coalesce(sf.col("reasons"), sf.lit("")) == "", sf.lit(text)) \
            .otherwise(sf.concat(sf.lit(text + "; "), sf.col("reasons")))
        ok = (ok.withColumn("reasons", sf.when(beyond, reasons).otherwise(sf.col("reasons")))
              .withColumn("label", sf.when(beyond, sf.lit("nurture"))
                          .otherwise(sf.col("label"))))
    return ok, capacity_section(policy, cut, scored)


def _fingerprint(source, hadoop: HadoopStore, encoding: str) -> dict:
    """sha256 and line breaks of an input on this machine (paths, ``file:`` URIs); for
    cluster storage the store's own checksum, not a second read of the whole input."""
    if isinstance(source, str) and not is_local(source):
        return {"sha256": None, "lines": None, "checksum": hadoop.checksum(source)}
    sha256, _, lines = scan(local_path(source) if isinstance(source, str)
                               else source, encoding)
    return {"sha256": sha256, "lines": lines, "checksum": None}


ROWS_PER_PARTITION = 200_000  # a Python task costs about 0.3 s; 200,000 leads about 1 s


def scoring_partitions(rows: int, input_partitions: int, parallelism: int,
                       shuffle_partitions: str) -> int:
    """How many partitions to score ``rows`` leads in: enough for every core of the
    cluster (``parallelism``), for the input's own partitions and for 200,000 leads each,
    but never more than ``spark.sql.shuffle.partitions`` (when it is a number: Databricks
    also takes ``auto``). Spark's 200 shuffle partitions for a few thousand leads cost 200
    Python tasks (a minute under spark-submit).

    >>> scoring_partitions(3_000, 1, 2, "200")  # a small file, two cores
    2
    >>> scoring_partitions(5_000_000, 1, 8, "200")  # one big CSV (not split: multi-line)
    25
    >>> scoring_partitions(5_000_000, 40, 64, "48")  # a cluster; the user's cap
    48
    >>> scoring_partitions(5_000_000, 40, 64, "auto")
    64
    """
    wanted = max(parallelism, input_partitions, -(-rows // ROWS_PER_PARTITION), 1)
    cap = shuffle_partitions.strip()
    return min(wanted, max(int(cap), 1)) if cap.isdigit() else wanted


def _score(spark, frame, header: list[str], from_csv: bool, *, model, contract: Contract,
           run_contract: Contract, rules: Rules, cutoffs, scored_at: str, scored_at_ts,
           settings: ScoreSettings):
    """Number the rows, find each id's first record, and score every partition with
    :func:`leadml.scoring.chunks.score_chunk`; returns the persisted results, the row count and
    whether per-lead reasons are on."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    # 1. Record numbers: records per input partition, then offsets. A record the reader
    # could not split that spans several lines (an unclosed quote swallowed the lines after
    # it) counts one record per non-empty line, as the local engine numbers them.
    if CORRUPT in frame.columns:
        lines = sf.size(sf.filter(sf.split(sf.col(CORRUPT), "\r\n|\n|\r"), lambda x: x != ""))
        span = sf.when(sf.col(CORRUPT).isNull(), sf.lit(1)).otherwise(
            sf.greatest(sf.lit(1), lines))
    else:
        span = sf.lit(1)
    # (Spark refuses a query of a CSV's corrupt-record column alone: one field is counted
    # beside it.)
    counts = {r["p"]: int(r["n"]) for r in frame.groupBy(
        sf.spark_partition_id().alias("p")).agg(sf.sum(span).alias("n"),
                                                sf.count(frame.columns[0])).collect()}
    offsets, total = {}, 0
    for pid in sorted(counts):
        offsets[pid] = total
        total += counts[pid]
    logger.info("%d rows in %d partitions", total, len(counts))
    from pyspark.sql.types import LongType, StructField, StructType

    numbered_schema = StructType([*frame.schema.fields, StructField(RECORD_ID, LongType())])

    def number(batches):
        from pyspark import TaskContext

        start = offsets.get(TaskContext.get().partitionId(), 0) + 1
        for part in batches:
            spans = np.ones(len(part), dtype=np.int64)
            if CORRUPT in part:
                bad = part[CORRUPT].notna().to_numpy()
                spans[bad] = [len(physical_lines(str(raw))) for raw in part[CORRUPT][bad]]
            firsts = start + np.concatenate([[0], np.cumsum(spans)[:-1]])
            out = part.assign(**{RECORD_ID: firsts})
            text = [c for c in out.columns if isinstance(out[c].dtype, pd.StringDtype)]
            yield out.astype({c: object for c in text})
            start += int(spans.sum())

    numbered = frame.mapInPandas(number, numbered_schema)
    if contract.id_column is None:
        numbered = numbered.withColumn(RECORD_ID, sf.col(RECORD_ID).cast("string"))
    # 2. The first record of each id, wherever it is. The shuffle by id also sets how many
    # partitions are scored (each a Python task): see scoring_partitions.
    id_col = run_contract.id_column
    parts = scoring_partitions(total, len(counts), spark.sparkContext.defaultParallelism,
                               str(spark.conf.get("spark.sql.shuffle.partitions", "200")))
    logger.info("scoring in %d partitions", parts)
    numbered = numbered.repartition(parts, id_col) \
        .withColumn(FIRST, sf.min(RECORD_ID).over(Window.partitionBy(id_col)))

    # 3. Score each partition with the local engine's code.
    blob = spark.sparkContext.broadcast(_skops_bytes(model)) if model is not None else None
    categories = known_categories(model)
    explain = settings.reasons and model is not None and contract.reference_lead is not None
    columns = [*header, *([RECORD_ID] if contract.id_column is None else [])]
    delimiter = settings.delimiter

    def score(batches):
        fitted, explainer = _worker_model(blob, explain, contract.reference_lead) \
            if blob is not None else (None, None)
        for part in batches:
            yield score_batch(part, columns=columns, from_csv=from_csv, model=fitted,
                              explainer=explainer, contract=run_contract, rules=rules,
                              cutoffs=cutoffs, scored_at=scored_at, scored_at_ts=scored_at_ts,
                              delimiter=delimiter, categories=categories)

    return numbered.mapInPandas(score, _out_schema(rules)).persist(), total, \
        explain


def score_batch(batch: pd.DataFrame, *, columns: list[str], from_csv: bool, model,
                explainer, contract: Contract, rules: Rules, cutoffs, scored_at: str,
                scored_at_ts, delimiter: str, categories: dict) -> pd.DataFrame:
    """One Arrow batch of a partition through :func:`score_chunk`: its scored rows, rejects
    and its missing and unseen values per field, as rows of one frame told apart by
    ``_status``."""
    records = batch[RECORD_ID].to_numpy()
    corrupt = batch[CORRUPT].notna().to_numpy() if CORRUPT in batch else \
        np.zeros(len(batch), bool)
    width = len(columns) - (RECORD_ID in columns)
    malformed = [m for r, raw in zip(records[corrupt], batch.loc[corrupt, CORRUPT], strict=True)
                 for m in unreadable_record(str(raw), int(r), delimiter=delimiter,
                                            width=width)] if corrupt.any() else []
    rows = batch.loc[~corrupt]
    raw = rows[columns].reset_index(drop=True)
    if from_csv:
        raw = raw.fillna("")
    chunk = Chunk(int(records[0]) if len(records) else 1, raw, records[~corrupt], malformed)
    seen = _FirstRecords(records[~corrupt], rows[FIRST].to_numpy())
    result, rejects, fields, _ = score_chunk(
        chunk, model=model, contract=contract, rules=rules, cutoffs=cutoffs,
        scored_at=scored_at, scored_at_ts=scored_at_ts, delimiter=delimiter, seen=seen,
        explainer=explainer, categories=categories)
    kept = np.isin(chunk.records, rejects["record"].to_numpy(), invert=True) \
        if rejects is not None else np.ones(len(chunk.records), bool)
    parts = [result.assign(**{RECORD_ID: chunk.records[kept], STATUS: "scored"})]
    if rejects is not None:
        parts.append(pd.DataFrame({
            RECORD_ID: rejects["record"].to_numpy(), STATUS: "rejected",
            "lead_id": rejects["lead_id"].to_numpy(), "reason": rejects["reason"].to_numpy(),
            "raw_record": rejects["raw_record"].to_numpy(),
            "reason_kind": reject_kinds(rejects["reason"])}))
    for kind, counted in fields.items():  # ("unseen", "missing": per field)
        if counted:
            parts.append(pd.DataFrame({STATUS: kind, "lead_id": list(counted),
                                       "count": list(counted.values())}))
    out = pd.concat(parts, ignore_index=True).reindex(
        columns=_out_schema(rules).fieldNames())
    for col in ("score", "count", RECORD_ID):
        out[col] = pd.array(out[col], dtype="Int64")
    for col in ("conversion_probability", "expected_value", "fit_points",
                "engagement_points"):
        if col in out:
            out[col] = out[col].astype("float64")
    return _for_arrow(out)


def _for_arrow(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain Python strings: PySpark's Arrow bridge rejects pandas' own
    Arrow-backed strings (chunked arrays)."""
    numeric = {"conversion_probability", "expected_value", "score", "count", RECORD_ID,
               "fit_points", "engagement_points"}
    for col in frame.columns:
        if col not in numeric:  # text: Python strings, None where missing
            values = frame[col].astype(object)
            frame[col] = values.where(values.notna(), None)
    return frame


def _footer(results, delimiter: str) -> list[str]:
    """The texts of a report footer ending the input (see :data:`leadml.data.tables.FOOTER_LINES`):
    its last records, rejected by the CSV reader as malformed, each one field on one line."""
    import csv

    from pyspark.sql import functions as sf

    lo, hi = FOOTER_LINES
    last = results.filter(sf.col(STATUS).isin("scored", "rejected")) \
        .orderBy(sf.col(RECORD_ID).desc()).select(STATUS, "reason", "raw_record").limit(hi + 1) \
        .collect()
    texts = []
    for row in last:
        raw = row["raw_record"] or ""
        fields = next(csv.reader([raw], delimiter=delimiter), [""]) if raw else [""]
        if row[STATUS] != "rejected" or not str(row["reason"]).startswith("malformed row") \
                or len(fields) != 1 or "\n" in raw or "\r" in raw:
            break
        texts.append(fields[0])
    return texts[::-1] if lo <= len(texts) <= hi else []


def _skops_bytes(model) -> bytes:
    import skops.io

    return skops.io.dumps(model)


TALLIES = ("unseen", "missing")  # rows that count a field's values, not leads


def _counts(ok, bad, results) -> dict[str, Counter]:
    """The manifest's counts in one Spark job (eight before: a job each costs a cluster
    seconds): ``ok`` the scored rows (labels as the capacity left them), ``bad`` the
    rejects (footer reasons applied), and the unseen and missing values' tallies."""
    from pyspark.sql import functions as sf

    tallies = results.filter(sf.col(STATUS).isin(*TALLIES))
    field = sf.when(sf.col(STATUS).isin(*TALLIES), sf.col("lead_id")).alias("field")
    cell = sf.concat("fit_grade", "engagement_level") if "fit_grade" in ok.columns \
        else sf.lit(None).cast("string")
    groups = ok.unionByName(bad).unionByName(tallies).groupBy(
        STATUS, "label", "grade", "score", "reason_kind", field, cell.alias("cell")).agg(
        sf.count(sf.lit(1)).alias("n"), sf.sum("conversion_probability").alias("p"),
        sf.sum("expected_value").alias("ev"), sf.sum("count").alias("c")).collect()
    names = ("label", "expected_conversions", "expected_value", "grade", "score", "cell",
             "reject_reason", *TALLIES)
    counts = {name: Counter() for name in names}
    for row in groups:
        if row[STATUS] == "scored":
            counts["label"][row["label"]] += row["n"]
            if row["p"] is not None:
                counts["expected_conversions"][row["label"]] += row["p"]
            if row["ev"] is not None:
                counts["expected_value"][row["label"]] += row["ev"]
            if row["grade"]:
                counts["grade"][row["grade"]] += row["n"]
            if row["score"] is not None:
                counts["score"][row["score"]] += row["n"]
            if row["cell"]:
                counts["cell"][row["cell"]] += row["n"]
        elif row[STATUS] == "rejected":
            counts["reject_reason"][row["reason_kind"]] += row["n"]
        else:
            counts[row[STATUS]][row["field"]] += row["c"] or 0
    return counts


def _finish(results, *, run: Run, total, settings, model, contract, rules, cutoffs,
            scored_at, explain, started, hadoop: HadoopStore) -> tuple[dict, dict]:
    """Count, check every row is accounted for, write under temporary names, commit."""
    from pyspark.sql import functions as sf

    by_status = dict(results.groupBy(STATUS).count().collect())
    scored, rejected = by_status.get("scored", 0), by_status.get("rejected", 0)
    check_accounted(total, scored, rejected)
    bad = results.filter(sf.col(STATUS) == "rejected")
    footer = _footer(results, settings.delimiter)
    if footer:  # not leads: rejected as a footer, as the local engine does
        last = sf.col(RECORD_ID) > total - len(footer)
        bad = bad.withColumn("reason", sf.when(last, sf.lit(FOOTER_REASON))
                             .otherwise(sf.col("reason"))) \
            .withColumn("reason_kind", sf.when(last, sf.lit(reject_kinds(
                [FOOTER_REASON])[0])).otherwise(sf.col("reason_kind")))
    status = reject_status(total, rejected, settings.max_reject_rate, len(footer))
    ok = results.filter(sf.col(STATUS) == "scored")
    cap = None
    if rules.label_policy.sales_qualified.by_capacity:
        ok, cap = _apply_capacity(ok, rules, scored)
    counts = _counts(ok, bad, results)
    paths = run.paths
    if status == "ok":
        ok.orderBy(RECORD_ID).select(*output_columns(rules)).write.parquet(
            str(run.temp(paths.output)))
    bad.orderBy(RECORD_ID).select(sf.col(RECORD_ID).alias("record"), "lead_id", "reason",
                               "raw_record").write.parquet(str(run.temp(paths.rejects)))
    found = _fingerprint(paths.input, hadoop, settings.encoding)
    manifest = build_manifest(
        status=status, paths=paths, sha256=found["sha256"], rows_in=total,
        lines=found["lines"], checksum=found["checksum"],
        scored=scored, rejected=rejected, settings=settings, counts=counts,
        has_model=model is not None, contract=contract, rules=rules, cutoffs=cutoffs,
        scored_at=scored_at, field_reasons=explain, capacity=cap, footer=footer,
        typical=Explainer(model, contract.reference_lead).typical_probability() if explain
        else None,
        timings={"total_seconds": time.perf_counter() - started}, engine="spark")
    run.commit(manifest, output=status == "ok")
    return manifest, counts
