"""Leads labelled on the cluster as the local validation labels them: each row's time (the
local engine's own parser, on the workers), whether validation would stop on it, whether
its outcome is decided, whether it converted (within the horizon), and the export time a
horizon is counted from. The columns this adds (:data:`TIME`, :data:`SUSPECT`, ...) are
the reduction's own (:mod:`leadml.data.spark_history`); ``(time, position)`` keys order the
leads as the local engine's stable sort does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.config import TrainConfig
from leadml.data.schema import (
    Counted,
    outcome_keys,
    outcome_text,
    repeated_header,
    required_columns,
)
from leadml.data.spark_files import CORRUPT, read_leads
from leadml.data.tables import is_parquet
from leadml.data.values import is_missing, parse_numbers, parse_times

POS, TIME, SUSPECT = "_leadml_position", "_leadml_time", "_leadml_suspect"
# the local engine's labels: decided (not open), when it converted, a positive outcome,
# and the outcome itself (converted within the horizon)
DECIDED, CONVERTED, POSITIVE = "_leadml_decided", "_leadml_converted", "_leadml_positive"
Y, SEEN = "_leadml_y", "_leadml_seen"  # (SEEN: the conversion time the audit reads)


def flag_leads(frame, cfg: TrainConfig, columns: list[str]):
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


def label_leads(flagged, cfg: TrainConfig, outcomes=None):
    """(the condition that a lead is labelled as the local validation labels it: decided,
    and old enough for the horizon at the export time; what was counted; that time, or
    None without a horizon), over every lead on the cluster. ``outcomes``: the outcomes
    table as :func:`parsed_outcomes` reads it, when the config names one."""
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
            outcomes, cfg, flagged)
        seen = [t for t in (row["newest"], converted) if t is not None]
        if not seen:  # no time reads: every lead stops the driver's validation
            return sf.lit(False), Counted(int(row["open"] or 0), 0, values), None
        as_of = pd.Timestamp(round(max(seen) * 1e6), unit="us", tz="UTC")
    cut = (as_of - pd.Timedelta(days=ds.horizon_days)).value / 1e9
    labelled = labelled & (sf.col(TIME) <= cut)
    young = flagged.filter(~(sf.col(TIME) <= cut)).count()
    return labelled, Counted(int(row["open"] or 0), int(young), values), as_of


def _newest_conversion(parsed, cfg: TrainConfig, flagged) -> float | None:
    """The newest conversion time (seconds) the outcomes table (``parsed``) gives a lead
    of the history, as the local engine reads it."""
    from pyspark.sql import functions as sf

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


def with_outcome(frame, cfg: TrainConfig, outcomes=None):
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
    parsed = outcomes  # (the outcomes table, as :func:`parsed_outcomes` reads it)
    if CONVERTED not in parsed.columns:  # (not the config's columns: the driver says so)
        return frame.withColumn(Y, sf.lit(0)).withColumn(SEEN, sf.lit(float("nan")))
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


def parsed_outcomes(spark, cfg: TrainConfig):
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


def at_or_after(key: tuple):
    from pyspark.sql import functions as sf

    t, pos = key
    return (sf.col(TIME) > t) | ((sf.col(TIME) == t) & (sf.col(POS) >= pos))


def at_or_before(key: tuple):
    from pyspark.sql import functions as sf

    t, pos = key
    return (sf.col(TIME) < t) | ((sf.col(TIME) == t) & (sf.col(POS) <= pos))
