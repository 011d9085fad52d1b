"""A lead history read on Spark and reduced, on the cluster, to the leads one machine trains
on: what ``leadml train --engine spark`` and ``leadml audit --engine spark`` hand to the
local engine's own code (validation, audit, fits, evaluation, MLflow).

Training fits each model on at most the newest ``model.max_fit_leads`` leads of its window
(:func:`leadml.training.fit.newest`); so the driver needs the newest leads of each window,
not the history:

1. Spark reads the file or folder (CSV as text, or Parquet) from any URI it reads, drops the
   config's personal columns at the door, and checks the header, the rows it could not split
   and the empty file, with the local engine's messages;
2. a history whose three windows each fit the budget is handed over whole: the training is
   then the local engine's, lead for lead (``tests/test_spark_training.py`` holds it to
   that);
3. a larger one is labelled on the cluster as the local validation labels it (open leads
   and leads too young for the horizon left out and counted: :class:`Counted`), cut into
   the config's windows over every labelled lead, in time order (each lead's time parsed by
   the local engine's own parser, on the workers; ties in file order), and the driver gets
   the newest ``max_fit_leads`` of each window, the counts and the export time. Rows the
   local engine would stop on (a time, number or outcome it cannot read, no id, a repeated
   header line, every copy of a repeated id) travel with them whatever their time (the
   first 50,000 in file order: any one stops the training), so the driver's validation and
   audit stop as the local engine's do.

With an outcomes table (``dataset.outcomes``), its rows for the leads kept are handed over.
The test window's older leads are spilled to the driver's disk in time order, for the test
metrics over the whole window (:mod:`leadml.training.whole_test`). What the reduction
changes for a history over the budget (the calibration choice's backtest windows and the
audit's statistics are those of the leads kept) is stated in docs/spark.md and recorded
with the run (:attr:`Reduced.facts`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config import TrainConfig
from leadml.data.audit import DECILES
from leadml.data.schema import (
    Counted,
    all_open,
    all_young,
    outcome_keys,
    outcome_text,
    repeated_header,
    required_columns,
)
from leadml.data.spark_files import CORRUPT, read_leads, session
from leadml.data.tables import csv_header
from leadml.data.values import is_missing, parse_numbers, parse_times
from leadml.errors import ConfigError, LeadDataError

logger = logging.getLogger(__name__)

POS, TIME, SUSPECT = "_leadml_position", "_leadml_time", "_leadml_suspect"
# the local engine's labels: decided (not open), when it converted, a positive outcome,
# and the outcome itself (converted within the horizon)
DECIDED, CONVERTED, POSITIVE = "_leadml_decided", "_leadml_converted", "_leadml_positive"
Y, SEEN = "_leadml_y", "_leadml_seen"  # (SEEN: the conversion time the audit reads)
WINDOWS = ("train", "calibration", "test")
MAX_SUSPECT = 50_000  # rows the local engine would stop on, handed to the driver at most


@dataclass(frozen=True)
class OnSpark:
    """Where and how a job reads its history on Spark: ``master`` (default ``local[*]``, or
    the one spark-submit set), extra Spark settings (``conf``), and ``source``, a URI that
    replaces the config's ``dataset.path`` (``s3a://``, ``abfss://``, ``hdfs://``, ...)."""

    master: str | None = None
    conf: dict[str, str] = field(default_factory=dict)
    source: str | None = None


@dataclass(frozen=True)
class Reduced:
    """The leads the driver trains on, in the file's order; the outcomes table's rows for
    them (or None); what the cluster counted (``facts``); and, when the history was cut,
    the shares of the config's ``split`` that cut the kept leads into the cluster's
    windows (``split``: None when every lead was kept)."""

    leads: pd.DataFrame
    outcomes: pd.DataFrame | None
    facts: dict = field(default_factory=dict)
    split: dict[str, float] | None = None
    #: the test window's leads older than those kept (Parquet parts in time order, on the
    #: driver's disk, for the test metrics over the whole window), and their outcomes
    rest_of_test: Path | None = None
    rest_outcomes: pd.DataFrame | None = None
    spill: tempfile.TemporaryDirectory | None = None
    #: the whole history's open and young leads and outcome values, when the open and the
    #: young leads stay on the cluster; and the export time that told young from old
    counted: Counted | None = None
    as_of: pd.Timestamp | None = None

    def close(self) -> None:
        """Remove the spilled rest of the test window."""
        if self.spill is not None:
            self.spill.cleanup()

    def config(self, cfg: TrainConfig) -> TrainConfig:
        """``cfg`` with the split that gives the kept leads the cluster's windows."""
        if self.split is None:
            return cfg
        update = {"split": cfg.split.model_copy(update=self.split)}
        if self.as_of is not None:  # the young leads stayed on the cluster: same export time
            update["dataset"] = cfg.dataset.model_copy(
                update={"as_of": self.as_of.to_pydatetime()})
        return cfg.model_copy(update=update)


def is_parquet(source: str) -> bool:
    """A Parquet file, or a local folder of Parquet parts; else read as CSV."""
    if source.lower().endswith((".parquet", ".pq")):
        return True
    return Path(source).is_dir() and any(Path(source).glob("*.parquet"))


def reduce_history(cfg: TrainConfig, on: OnSpark, *, spark=None) -> Reduced:
    """Read the config's history (or ``on.source``: any URI Spark reads) on Spark and
    reduce it to the newest ``model.max_fit_leads`` leads of each window (see the module)."""
    ds = cfg.dataset
    source = on.source or (str(ds.path) if ds.path is not None else None)
    if source is None:
        raise ConfigError("dataset.path is not set: name the lead history in the config "
                          "(any URI Spark reads)")
    if not is_parquet(source) and Path(source).is_file():  # the local reader's header checks
        csv_header(source, delimiter=ds.csv.delimiter, encoding=ds.csv.encoding)
    spark = spark or session(on.master, on.conf, name="leadml-train")
    frame, from_csv = read_leads(spark, source, parquet=is_parquet(source),
                                 delimiter=ds.csv.delimiter, encoding=ds.csv.encoding)
    header = [c for c in frame.columns if c != CORRUPT]
    kept_columns = [c for c in header if c not in ds.columns.personal]  # (at the door)
    required_columns(pd.DataFrame(columns=kept_columns), cfg)  # the local engine's message
    frame = frame.select(*kept_columns, *([CORRUPT] if from_csv else []))
    from pyspark.sql import functions as sf

    frame = frame.withColumn(POS, sf.monotonically_increasing_id()).cache()
    if from_csv:
        _refuse_corrupt(frame, source)
    total = frame.count()
    if total == 0:
        raise LeadDataError(f"lead file '{ds.source_name}' has no rows")
    budget = cfg.model.max_fit_leads
    sizes = _window_sizes(total, cfg)
    facts = {"engine": "spark", "source": source, "history_leads": int(total),
             "max_fit_leads": budget}
    columns = [c for c in frame.columns if c != CORRUPT]
    if budget is None or max(sizes.values()) <= budget:
        leads = _to_pandas(frame.select(*columns), kept_columns)
        frame.unpersist()
        facts["kept_leads"] = int(len(leads))
        return Reduced(leads, _outcomes(spark, cfg, leads), facts)

    flagged = _flagged(frame.select(*columns), cfg, kept_columns)
    labelled, counted, as_of = _labelled(spark, flagged, cfg)
    good = flagged.filter(~sf.col(SUSPECT) & labelled)
    n_good = good.count()
    if n_good == 0 and not flagged.filter(sf.col(SUSPECT)).limit(1).count():
        raise all_open(ds) if counted.open_leads == total else all_young(ds, as_of)
    sizes = _window_sizes(n_good, cfg)
    ranges = _kept_ranges(sizes, budget)
    first_test = sizes["train"] + sizes["calibration"]
    older_test = (first_test, ranges["test"][0]) if ranges["test"][0] > first_test else None
    tenths = _tenths(n_good) if _clock(cfg) else {}
    newest_tenth = {"newest_tenth": (n_good - max(1, n_good // 10), n_good)} if tenths else {}
    bounds = _bounds(good, {**ranges, **({"older_test": older_test} if older_test else {}),
                            **tenths, **newest_tenth})
    if tenths:  # the audit's totals, rates by tenth and time to convert, over every lead
        counted = dataclasses.replace(counted, **_whole(
            spark, good, cfg, {t: bounds[t] for t in tenths}, bounds["newest_tenth"][0]))
    keep = sf.col(SUSPECT) & (sf.col(POS) <= _last_shown(flagged))
    for w in WINDOWS:
        keep = keep | (_at_or_after(bounds[w][0]) & _at_or_before(bounds[w][1]))
    leads = _to_pandas(flagged.filter(keep), kept_columns)
    spill, rest, rest_outcomes = None, None, None
    if older_test:  # the test window's older leads, for the metrics of the whole window
        lo, hi = bounds["older_test"]
        older = good.filter(_at_or_after(lo) & _at_or_before(hi))
        spill = tempfile.TemporaryDirectory(prefix="leadml-spark-test-")
        rest = Path(spill.name) / "rest.parquet"
        older.orderBy(TIME, POS).select(*kept_columns).write.parquet(str(rest))
        rest_outcomes = _outcomes(spark, cfg, None, ids=older.select(ds.id_column)) \
            if ds.id_column else None
    kept = {w: int(b - a) for w, (a, b) in ranges.items()}
    n_kept = sum(kept.values())
    facts.update(kept_leads=int(len(leads)), windows_on_cluster=sizes, kept_per_window=kept,
                 suspect_rows=int(len(leads) - n_kept))
    if counted.open_leads or as_of is not None:
        facts.update(open_leads_on_cluster=counted.open_leads,
                     young_leads_on_cluster=counted.unlabelled)
    logger.info("Spark: %d leads, windows %s on the cluster; the driver trains on the newest "
                "%s of each (%d leads)", total, sizes, f"{budget:,}", n_kept)
    split = {"train": kept["train"] / n_kept, "calibration": kept["calibration"] / n_kept}
    reduced = Reduced(leads, _outcomes(spark, cfg, leads), facts, split, rest, rest_outcomes,
                      spill, counted, as_of)
    flagged.unpersist()
    frame.unpersist()
    return reduced


def _last_shown(flagged) -> int:
    """The position of the last row the local engine would stop on that the driver gets:
    the first :data:`MAX_SUSPECT` of them in file order (any one stops the training; more
    would only fill the driver)."""
    from pyspark.sql import functions as sf

    first = flagged.filter(sf.col(SUSPECT)).select(POS).orderBy(POS).limit(MAX_SUSPECT)
    found = first.agg(sf.max(POS)).collect()[0][0]
    return -1 if found is None else int(found)


def _refuse_corrupt(frame, source: str) -> None:
    from pyspark.sql import functions as sf

    bad = frame.filter(sf.col(CORRUPT).isNotNull())
    found = bad.limit(3).select(CORRUPT).collect()
    if found:
        shown = "; ".join(repr(r[0][:80]) for r in found)
        raise LeadDataError(
            f"lead file '{source}' is malformed: {bad.count():,} row(s) do not split into its "
            f"header's fields (for example {shown}). Check dataset.csv.delimiter and quoting.")


def _window_sizes(n: int, cfg: TrainConfig) -> dict[str, int]:
    """The leads of each window of ``n`` time-ordered leads, cut as the local engine cuts
    them (:func:`leadml.training.fit.split_windows`)."""
    cut1 = int(round(n * cfg.split.train))
    cut2 = int(round(n * (cfg.split.train + cfg.split.calibration)))
    return {"train": cut1, "calibration": cut2 - cut1, "test": n - cut2}


def _kept_ranges(sizes: dict[str, int], budget: int) -> dict[str, tuple[int, int]]:
    """Per window, the ranks (0-based, in time order, end excluded) of its newest
    ``budget`` leads.

    >>> _kept_ranges({"train": 600, "calibration": 200, "test": 200}, 300)
    {'train': (300, 600), 'calibration': (600, 800), 'test': (800, 1000)}
    """
    out, start = {}, 0
    for w in WINDOWS:
        stop = start + sizes[w]
        out[w] = (max(start, stop - budget), stop)
        start = stop
    return out


def _flagged(frame, cfg: TrainConfig, columns: list[str]):
    """Each row with its time (the local engine's parser, on the workers; its position
    without a time column) and whether the local engine would stop on it or set it aside."""
    from pyspark.sql import functions as sf
    from pyspark.sql.types import BooleanType, DoubleType, StructField, StructType

    schema = StructType([*frame.schema.fields, StructField(TIME, DoubleType()),
                         StructField(SUSPECT, BooleanType()), StructField(DECIDED, BooleanType()),
                         StructField(CONVERTED, DoubleType()),
                         StructField(POSITIVE, BooleanType())])
    ds = cfg.dataset
    required = required_columns(pd.DataFrame(columns=columns), cfg)

    def flag(batches):
        for batch in batches:
            decided, converted, positive, stops = _labels(batch, cfg)
            yield batch.assign(**{TIME: _times(batch, cfg),
                                  SUSPECT: _suspect(batch, cfg, required) | stops,
                                  DECIDED: decided, CONVERTED: converted, POSITIVE: positive})

    flagged = frame.mapInPandas(flag, schema)
    if ds.id_column:  # every copy of a repeated id: the local audit sets the later ones aside
        repeated = frame.groupBy(ds.id_column).count().filter(sf.col("count") > 1) \
            .select(sf.col(ds.id_column).alias("_leadml_repeated"))
        flagged = flagged.join(repeated, flagged[ds.id_column] == repeated["_leadml_repeated"],
                               "left") \
            .withColumn(SUSPECT, sf.col(SUSPECT) | sf.col("_leadml_repeated").isNotNull()) \
            .drop("_leadml_repeated")
    return flagged.cache()


def _times(batch: pd.DataFrame, cfg: TrainConfig) -> np.ndarray:
    ds = cfg.dataset
    if not ds.time_column:
        return batch[POS].to_numpy(dtype=float)
    return _seconds(parse_times(batch[ds.time_column], ds.time_format))  # as locally


def _seconds(parsed: pd.Series) -> np.ndarray:
    """Parsed times as seconds since 1970 (NaN where none); a sequence as its numbers."""
    if pd.api.types.is_datetime64_any_dtype(parsed):
        seconds = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        return seconds.to_numpy(dtype=float, na_value=np.nan)
    return parsed.to_numpy(dtype=float, na_value=np.nan)


def _labels(batch: pd.DataFrame, cfg: TrainConfig
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per lead, as the local validation reads a target column: whether its outcome is
    decided (``target.negative_values``: else every lead is), when it converted (seconds;
    NaN where not said or no horizon), whether its outcome is a positive value, and whether
    validation stops on it (no outcome without ``negative_values``; with a horizon, a
    conversion time that does not read, or a converted lead without one)."""
    ds, n = cfg.dataset, len(batch)
    decided, converted, stops = np.ones(n, bool), np.full(n, np.nan), np.zeros(n, bool)
    target = ds.target
    if target is None:  # (the outcomes table says: :func:`_with_outcome`)
        return decided, converted, np.zeros(n, bool), stops
    values = batch[target.column]
    missing = np.asarray(is_missing(values, ds.missing_values), dtype=bool)
    text = outcome_text(values)
    positive = text.isin(outcome_keys(target.positive_values)).to_numpy()
    if target.negative_values is None:
        stops |= missing
    else:
        decided = ~missing & (positive | text.isin(outcome_keys(target.negative_values))
                              .to_numpy())
    column = target.converted_at_column
    if column and column in batch.columns:  # (read without a horizon too: the audit's)
        when = batch[column]
        stated = ~np.asarray(is_missing(when, ds.missing_values), dtype=bool)
        converted = _seconds(parse_times(when.where(stated, None), ds.converted_at_format))
        if ds.horizon_days is not None:
            stops |= (stated | positive) & np.isnan(converted)
    return decided, converted, positive, stops


def _labelled(spark, flagged, cfg: TrainConfig):
    """(the condition that a lead is labelled as the local validation labels it: decided,
    and old enough for the horizon at the export time; what was counted; that time, or
    None without a horizon), over every lead on the cluster."""
    from pyspark.sql import functions as sf

    ds = cfg.dataset
    finite = sf.when(~sf.isnan(TIME), sf.col(TIME))
    row = flagged.agg(sf.sum((~sf.col(DECIDED)).cast("long")).alias("open"),
                      sf.max(finite).alias("newest"),
                      sf.max(sf.when(~sf.isnan(CONVERTED), sf.col(CONVERTED)))
                      .alias("converted")).collect()[0]
    values = None
    if ds.target is not None:  # each value of the target column as written, and its leads
        found = flagged.groupBy(ds.target.column).count().collect()
        text = outcome_text(pd.Series([r[0] for r in found], dtype=object))
        values = {str(k): int(v) for k, v in pd.Series(
            [r[1] for r in found]).groupby(text.to_numpy(), sort=False).sum().items()}
    labelled = sf.col(DECIDED)
    if ds.horizon_days is None:
        return labelled, Counted(int(row["open"] or 0), 0, values), None
    if ds.as_of is not None:
        as_of = pd.Timestamp(ds.as_of)
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    else:
        converted = row["converted"] if ds.target is not None else _newest_conversion(
            spark, cfg, flagged)
        seen = [t for t in (row["newest"], converted) if t is not None]
        if not seen:  # no time reads: every lead stops the driver's validation
            return sf.lit(False), Counted(int(row["open"] or 0), 0, values), None
        as_of = pd.Timestamp(round(max(seen) * 1e6), unit="us", tz="UTC")
    cut = (as_of - pd.Timedelta(days=ds.horizon_days)).value / 1e9
    labelled = labelled & (sf.col(TIME) <= cut)
    young = flagged.filter(~(sf.col(TIME) <= cut)).count()
    return labelled, Counted(int(row["open"] or 0), int(young), values), as_of


def _clock(cfg: TrainConfig) -> bool:
    """Whether the leads' times are times (not a sequence or the file's order)."""
    return bool(cfg.dataset.time_column) and cfg.dataset.time_format != "sequence"


def _tenths(n: int) -> dict[str, tuple[int, int]]:
    """The ranks of each tenth of ``n`` time-ordered leads, as the audit cuts them.

    >>> _tenths(25)["tenth_10"]
    (22, 25)
    """
    edges = np.linspace(0, n, DECILES + 1).astype(int)
    return {f"tenth_{i + 1}": (int(a), int(b))
            for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)) if b > a}


def _whole(spark, good, cfg: TrainConfig, tenths: dict[str, tuple[tuple, tuple]],
           newest_tenth: tuple) -> dict:
    """Over every labelled lead (``good``), as the local audit computes them
    (:func:`leadml.data.audit.audit_history`): how many, how many converted, the rate by
    tenth of the history (``tenths``: each tenth's first and last keys) and, without a
    horizon, the time to convert that the maturity check reads (``newest_tenth``: the key
    of the first lead of the audit's newest tenth)."""
    from pyspark.sql import functions as sf

    tenth = None
    for name, (lo, hi) in tenths.items():
        inside = _at_or_after(lo) & _at_or_before(hi)
        tenth = (sf if tenth is None else tenth).when(inside, sf.lit(name))
    labelled = _with_outcome(spark, good, cfg).cache()
    rows = labelled.groupBy(tenth.alias("tenth")).agg(
        sf.count(sf.lit(1)).alias("leads"), sf.sum(sf.col(Y)).alias("conversions"),
        sf.min(TIME).alias("first"), sf.max(TIME).alias("last")).collect()
    found = {r["tenth"]: r for r in rows}
    drift = [{"tenth": i + 1, "first_time": _shown(found[t]["first"]),
              "last_time": _shown(found[t]["last"]), "leads": int(found[t]["leads"]),
              "rate": round(float(found[t]["conversions"] / found[t]["leads"]), 4)}
             for i, t in enumerate(tenths)]
    out = {"leads": sum(int(r["leads"]) for r in rows),
           "conversions": sum(int(r["conversions"]) for r in rows), "drift": drift}
    if cfg.dataset.horizon_days is None:
        out["maturity"] = _time_to_convert(labelled, out["leads"], newest_tenth)
    labelled.unpersist()
    return out


def _time_to_convert(labelled, n: int, newest_tenth: tuple) -> dict | None:
    """:func:`leadml.data.audit.time_to_convert` over every labelled lead (``n``)."""
    from pyspark.sql import functions as sf

    lag = (sf.col(SEEN) - sf.col(TIME)) / 86_400
    converted = labelled.filter((sf.col(Y) == 1) & ~sf.isnan(lag) & (lag >= 0))
    stats = converted.agg(sf.count(sf.lit(1)).alias("n"),
                          sf.percentile(lag, [0.5, 0.9]).alias("q")).collect()[0]
    if stats["n"] < 20:
        return None
    newer = _at_or_after(newest_tenth)
    seen = labelled.agg(
        sf.max(TIME).alias("time"), sf.max(sf.when(~sf.isnan(SEEN), sf.col(SEEN))).alias("seen"),
        sf.avg(sf.when(newer, sf.col(Y))).alias("newest"),
        sf.avg(sf.when(~newer, sf.col(Y))).alias("earlier")).collect()[0]
    as_of = max(t for t in (seen["time"], seen["seen"]) if t is not None)
    median, p90 = stats["q"]
    return {"converted_leads": int(stats["n"]), "median_days": float(median),
            "p90_days": float(p90), "newest_tenth_from": _shown(newest_tenth[0]),
            "newest_tenth_age_days": float((as_of - newest_tenth[0]) / 86_400),
            "newest_tenth_rate": float(seen["newest"]),
            "earlier_rate": None if n <= max(1, n // 10) else float(seen["earlier"])}


def _shown(seconds: float) -> str:
    """A lead time as the local history shows it (``str`` of a UTC timestamp)."""
    return str(pd.Timestamp(round(seconds * 1e6), unit="us", tz="UTC"))


def _with_outcome(spark, frame, cfg: TrainConfig):
    """``frame`` with :data:`Y`, 1 where the local validation labels the lead converted
    (a positive value of the target column, or a conversion in the outcomes table: the
    first stated time of its id; within ``horizon_days`` of creation under a horizon), and
    :data:`SEEN`, its conversion time as the audit reads it (seconds, NaN where none)."""
    from pyspark.sql import functions as sf

    ds = cfg.dataset
    horizon = None if ds.horizon_days is None else ds.horizon_days * 86_400
    if ds.target is not None:
        within = sf.col(POSITIVE)
        if horizon is not None:
            within = within & (sf.col(CONVERTED) - sf.col(TIME) <= horizon)
        return frame.withColumn(Y, within.cast("int")).withColumn(SEEN, sf.col(CONVERTED))
    parsed = _parsed_outcomes(spark, cfg)
    first = parsed.groupBy(sf.col(ds.outcomes.id_column).cast("string").alias("_leadml_id")) \
        .agg(sf.min(sf.when(~sf.isnan(CONVERTED), sf.struct(POS, CONVERTED)))  # the schema's
             .getField(CONVERTED).alias("_leadml_first"),
             sf.min(sf.struct(POS, CONVERTED)).getField(CONVERTED).alias(SEEN))  # the audit's
    joined = frame.join(first, frame[ds.id_column].cast("string") == first["_leadml_id"],
                        "left")
    within = sf.col("_leadml_first").isNotNull()
    if horizon is not None:
        within = within & (sf.col("_leadml_first") - sf.col(TIME) <= horizon)
    return joined.withColumn(Y, within.cast("int")) \
        .withColumn(SEEN, sf.coalesce(sf.col(SEEN), sf.lit(float("nan")))) \
        .drop("_leadml_id", "_leadml_first")


def _newest_conversion(spark, cfg: TrainConfig, flagged) -> float | None:
    """The newest conversion time (seconds) the outcomes table gives a lead of the
    history, as the local engine reads it."""
    from pyspark.sql import functions as sf

    parsed = _parsed_outcomes(spark, cfg)
    if CONVERTED not in parsed.columns:
        return None
    ids = flagged.select(sf.col(cfg.dataset.id_column).cast("string").alias("_leadml_id"))
    joined = parsed.join(ids.distinct(), parsed[cfg.dataset.outcomes.id_column].cast("string")
                         == sf.col("_leadml_id"), "left_semi")
    return joined.agg(sf.max(sf.when(~sf.isnan(CONVERTED), sf.col(CONVERTED)))).collect()[0][0]


def _suspect(batch: pd.DataFrame, cfg: TrainConfig, required: list[str]) -> np.ndarray:
    """Rows the local validation stops on: no id, a time or number it cannot read, a
    repeated header line."""
    ds = cfg.dataset
    out = repeated_header(batch, required)
    if ds.id_column:
        out |= is_missing(batch[ds.id_column], ds.missing_values)
    if ds.time_column:
        out |= np.isnan(_times(batch, cfg))
    for col in ds.columns.numeric:
        out |= np.asarray(parse_numbers(batch[col], ds.missing_values, decimal=ds.csv.decimal,
                                        thousands=ds.csv.thousands)[1], dtype=bool)
    return out


def _bounds(good, ranges: dict[str, tuple[int, int]]) -> dict[str, tuple[tuple, tuple]]:
    """The (time, position) keys of the first and last lead of each kept range, ranked on
    the cluster over every lead (only the two key columns are sorted)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    wanted = sorted({r for a, b in ranges.values() for r in (a, b - 1)})
    ranked = good.select(TIME, POS).withColumn(
        "_leadml_rank", sf.row_number().over(Window.orderBy(TIME, POS)) - 1)
    keys = {int(r["_leadml_rank"]): (float(r[TIME]), int(r[POS])) for r in
            ranked.filter(sf.col("_leadml_rank").isin(wanted)).collect()}
    return {w: (keys[a], keys[b - 1]) for w, (a, b) in ranges.items()}


def _at_or_after(key: tuple):
    from pyspark.sql import functions as sf

    t, pos = key
    return (sf.col(TIME) > t) | ((sf.col(TIME) == t) & (sf.col(POS) >= pos))


def _at_or_before(key: tuple):
    from pyspark.sql import functions as sf

    t, pos = key
    return (sf.col(TIME) < t) | ((sf.col(TIME) == t) & (sf.col(POS) <= pos))


def _to_pandas(frame, columns: list[str]) -> pd.DataFrame:
    """The rows on the driver in the file's order, through Parquet on local disk (the JVM
    never holds them all at once), without the reduction's own columns."""
    with tempfile.TemporaryDirectory(prefix="leadml-spark-") as tmp:
        folder = os.path.join(tmp, "kept.parquet")
        frame.write.parquet(folder)
        out = pd.read_parquet(folder)
    return out.sort_values(POS, kind="stable")[columns].reset_index(drop=True)


def _parsed_outcomes(spark, cfg: TrainConfig):
    """The outcomes table on Spark with each row's conversion time (seconds, NaN where
    none is said) and whether the local engine stops on it (a stated time it cannot read);
    None when the table lacks the columns the config names (the local engine then says
    what is wrong)."""
    from pyspark.sql import functions as sf
    from pyspark.sql.types import BooleanType, DoubleType, StructField, StructType

    table, ds = cfg.dataset.outcomes, cfg.dataset
    source = str(table.path)
    frame, _ = read_leads(spark, source, parquet=is_parquet(source),
                          delimiter=ds.csv.delimiter, encoding=ds.csv.encoding)
    frame = frame.drop(CORRUPT) if CORRUPT in frame.columns else frame
    frame = frame.withColumn(POS, sf.monotonically_increasing_id())
    if ds.id_column is None or not {table.id_column, table.converted_at_column} \
            <= set(frame.columns):
        return frame.withColumn(SUSPECT, sf.lit(True))
    schema = StructType([*frame.schema.fields, StructField(CONVERTED, DoubleType()),
                         StructField(SUSPECT, BooleanType())])

    def parse(batches):
        for batch in batches:
            when = batch[table.converted_at_column]
            stated = ~np.asarray(is_missing(when, ds.missing_values), dtype=bool)
            seconds = _seconds(parse_times(when.where(stated, None), ds.converted_at_format))
            yield batch.assign(**{CONVERTED: seconds, SUSPECT: stated & np.isnan(seconds)})

    return frame.mapInPandas(parse, schema)


def _outcomes(spark, cfg: TrainConfig, leads: pd.DataFrame | None, *, ids=None
              ) -> pd.DataFrame | None:
    """The outcomes table's rows for the kept ``leads`` (or for ``ids``, a one-column Spark
    frame of lead ids), read on Spark, with every row the local engine would stop on;
    None without an outcomes table."""
    table = cfg.dataset.outcomes
    if table is None:
        return None
    from pyspark.sql import functions as sf

    parsed = _parsed_outcomes(spark, cfg)
    columns = [c for c in parsed.columns if c not in (POS, CONVERTED, SUSPECT)]
    if CONVERTED not in parsed.columns:  # (the local engine says what is wrong)
        return _to_pandas(parsed, columns)
    if ids is None:
        ids = sf.broadcast(spark.createDataFrame(pd.DataFrame(
            {"_leadml_id": leads[cfg.dataset.id_column].astype(str).unique()})))
    else:
        ids = ids.select(sf.col(ids.columns[0]).cast("string").alias("_leadml_id")).distinct()
    joined = parsed.join(ids, parsed[table.id_column].cast("string") == ids["_leadml_id"],
                         "left")
    return _to_pandas(joined.filter(sf.col("_leadml_id").isNotNull() | sf.col(SUSPECT)),
                      columns)
