"""What the cluster counts over every labelled lead of a history it reduced, as the local
audit counts it (:func:`leadml.data.audit.audit_history`): the leads, their conversions,
the conversion rate by tenth of the history, and the time to convert that the maturity
check reads. The driver then audits the leads it keeps with these numbers
(:class:`leadml.data.schema.Counted`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.config import TrainConfig
from leadml.data.audit import DECILES
from leadml.data.spark_labels import POS, SEEN, TIME, Y, at_or_after, at_or_before, with_outcome
from leadml.data.values import is_missing, parse_numbers


def clock(cfg: TrainConfig) -> bool:
    """Whether the leads' times are times (not a sequence or the file's order)."""
    return bool(cfg.dataset.time_column) and cfg.dataset.time_format != "sequence"


def tenth_ranges(n: int) -> dict[str, tuple[int, int]]:
    """The ranks of each tenth of ``n`` time-ordered leads, as the audit cuts them.

    >>> tenth_ranges(25)["tenth_10"]
    (22, 25)
    """
    edges = np.linspace(0, n, DECILES + 1).astype(int)
    return {f"tenth_{i + 1}": (int(a), int(b))
            for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)) if b > a}


def whole(spark, good, cfg: TrainConfig, tenths: dict[str, tuple[tuple, tuple]],
          newest_tenth: tuple, *, insight_bins: int | None = None) -> dict:
    """Over every labelled lead (``good``), as the local audit computes them
    (:func:`leadml.data.audit.audit_history`): how many, how many converted, the rate by
    tenth of the history (``tenths``: each tenth's first and last keys) and, without a
    horizon, the time to convert that the maturity check reads (``newest_tenth``: the key
    of the first lead of the audit's newest tenth); with ``insight_bins``, each field's
    counts for the field insights (:func:`field_counts`)."""
    from pyspark.sql import functions as sf

    tenth = None
    for name, (lo, hi) in tenths.items():
        inside = at_or_after(lo) & at_or_before(hi)
        tenth = (sf if tenth is None else tenth).when(inside, sf.lit(name))
    labelled = with_outcome(spark, good, cfg).cache()
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
    if insight_bins is not None:
        out["fields"] = field_counts(labelled, cfg, insight_bins)
    labelled.unpersist()
    return out


def field_counts(labelled, cfg: TrainConfig, bins: int) -> dict[str, tuple[pd.DataFrame,
                                                                          np.ndarray]]:
    """Per feature, over every labelled lead: each value's (a number's: each quantile bin's)
    leads, conversions and first lead (``first_time``, ``first_pos``), with the bin edges
    (``np.unique`` of the ``bins`` quantiles, as :func:`leadml.explain.importance.
    field_insights` cuts them; empty for a text field). Values are read as the local insights
    read them: a number by its parser, a text trimmed (a free-text field lower-cased), a
    missing marker as missing (``key`` None, or bin -1)."""
    from pyspark.sql import functions as sf
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    ds = cfg.dataset
    roles = {**{c: "numeric" for c in ds.columns.numeric},
             **{c: "categorical" for c in ds.columns.categorical},
             **{c: "text" for c in ds.columns.text}}
    keys = {f: f"_leadml_field_{i}" for i, f in enumerate(roles)}
    schema = StructType([StructField(TIME, DoubleType()), StructField(POS, labelled.schema[POS]
                                                                      .dataType),
                         StructField(Y, labelled.schema[Y].dataType),
                         *[StructField(keys[f], DoubleType() if r == "numeric" else StringType())
                           for f, r in roles.items()]])
    markers = tuple(ds.missing_values)

    def read(batches):
        for batch in batches:
            out = {TIME: batch[TIME], POS: batch[POS], Y: batch[Y]}
            for f, role in roles.items():
                missing = np.asarray(is_missing(batch[f], markers), dtype=bool)
                if role == "numeric":
                    x = parse_numbers(batch[f], markers)[0].to_numpy(dtype=float)
                    out[keys[f]] = np.where(~missing & np.isfinite(x), x, np.nan)
                    continue
                codes, uniques = pd.factorize(batch[f], use_na_sentinel=False)
                text = pd.Series(uniques, dtype=object).astype(str).str.strip()
                text = text.str.lower() if role == "text" else text
                out[keys[f]] = np.where(missing, None, text.to_numpy(dtype=object)[codes])
            yield pd.DataFrame(out)

    read_values = labelled.mapInPandas(read, schema).cache()
    numeric = [f for f, r in roles.items() if r == "numeric"]
    quantiles = np.linspace(0, 1, bins + 1).tolist()
    found = read_values.agg(*[sf.percentile(sf.when(~sf.isnan(keys[f]), sf.col(keys[f])),
                                            quantiles).alias(keys[f]) for f in numeric]) \
        .collect()[0] if numeric else {}
    counted = {}
    for f, role in roles.items():
        edges = np.unique(np.asarray(found[keys[f]] or [], dtype=float)) \
            if role == "numeric" else np.array([])
        key = sf.col(keys[f])
        if role == "numeric":  # the bin: np.searchsorted(edges, x, "right") - 1, clipped
            at = sf.lit(-1)
            for edge in edges:
                at = at + (key >= float(edge)).cast("int")
            at = sf.least(sf.greatest(at, sf.lit(0)), sf.lit(max(len(edges) - 2, 0)))
            key = sf.when(key.isNull() | sf.isnan(key), sf.lit(-1)).otherwise(at)  # (NaN: null)
        rows = read_values.groupBy(key.alias("key")).agg(
            sf.count(sf.lit(1)).alias("leads"), sf.sum(sf.col(Y)).alias("conversions"),
            sf.min(sf.struct(TIME, POS)).alias("first")).collect()
        counted[f] = (pd.DataFrame({
            "key": [r["key"] for r in rows], "leads": [int(r["leads"]) for r in rows],
            "conversions": [int(r["conversions"]) for r in rows],
            "first_time": [r["first"][0] for r in rows],
            "first_pos": [r["first"][1] for r in rows]}), edges)
    read_values.unpersist()
    return counted


def _time_to_convert(labelled, n: int, newest_tenth: tuple) -> dict | None:
    """:func:`leadml.data.audit.time_to_convert` over every labelled lead (``n``)."""
    from pyspark.sql import functions as sf

    lag = (sf.col(SEEN) - sf.col(TIME)) / 86_400
    converted = labelled.filter((sf.col(Y) == 1) & ~sf.isnan(lag) & (lag >= 0))
    stats = converted.agg(sf.count(sf.lit(1)).alias("n"),
                          sf.percentile(lag, [0.5, 0.9]).alias("q")).collect()[0]
    if stats["n"] < 20:
        return None
    newer = at_or_after(newest_tenth)
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
