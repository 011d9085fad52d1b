"""What the cluster counts over every labelled lead of a history it reduced, as the local
engine counts it: for the audit (:func:`leadml.data.audit.audit_history`) the leads, their
conversions, the conversion rate by tenth of the history and the time to convert that the
maturity check reads; for the field insights (:func:`leadml.explain.importance.
field_counts`) each value's or bin's leads and conversions. The driver then audits the leads
it keeps, and builds the insights, with these numbers (:class:`leadml.data.schema.Counted`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.config import TrainConfig
from leadml.data.audit import DECILES
from leadml.data.spark_labels import POS, SEEN, TIME, Y, at_or_after, at_or_before, with_outcome
from leadml.data.values import bin_of, field_values


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


def whole(good, cfg: TrainConfig, tenths: dict[str, tuple[tuple, tuple]],
          newest_tenth: tuple | None, *, outcomes=None, insight_bins: int | None = None
          ) -> dict:
    """Over every labelled lead (``good``), as the local audit computes them
    (:func:`leadml.data.audit.audit_history`): how many, how many converted, the rate by
    tenth of the history (``tenths``: each tenth's first and last keys) and, without a
    horizon, the time to convert that the maturity check reads (``newest_tenth``: the key
    of the first lead of the audit's newest tenth); without ``tenths`` (a history ordered
    by a sequence or the file's order) only the leads and conversions. With
    ``insight_bins``, each field's
    counts for the field insights (:func:`field_counts`). ``outcomes``: the outcomes table
    as :func:`leadml.data.spark_labels.parsed_outcomes` reads it, when the config names
    one."""
    from pyspark.sql import functions as sf

    if not tenths:
        if insight_bins is None:
            return {}
        fields = field_counts(with_outcome(good, cfg, outcomes), cfg, insight_bins)
        frame, _ = next(iter(fields.values()))  # (every field's counts hold every lead)
        return {"fields": fields, "leads": int(frame["leads"].sum()),
                "conversions": int(frame["conversions"].sum())}
    tenth = None
    for name, (lo, hi) in tenths.items():
        inside = at_or_after(lo) & at_or_before(hi)
        tenth = (sf if tenth is None else tenth).when(inside, sf.lit(name))
    labelled = with_outcome(good, cfg, outcomes).cache()
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
    """Per feature, over every labelled lead: each value's (a number's: each quantile
    bin's) leads, conversions and first lead (``first_time``, ``first_pos``), with the bin
    edges: what :func:`leadml.explain.importance.field_counts` counts on one machine, in
    two passes over the cluster (the numbers' quantiles, then every field's counts, summed
    from each batch's)."""
    from pyspark.sql import functions as sf
    from pyspark.sql.types import (
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    ds = cfg.dataset
    roles = ds.columns.roles
    markers = tuple(ds.missing_values)
    numeric = [f for f, r in roles.items() if r == "numeric"]
    edges = dict.fromkeys(roles, np.array([]))
    if numeric:
        names = {f: f"_leadml_number_{i}" for i, f in enumerate(numeric)}

        def numbers(batches):
            for batch in batches:
                yield pd.DataFrame({names[f]: field_values(batch[f], "numeric", markers)
                                    for f in numeric})

        quantiles = np.linspace(0, 1, bins + 1).tolist()
        found = labelled.select(*numeric).mapInPandas(numbers, StructType(
            [StructField(names[f], DoubleType()) for f in numeric])).agg(
            *[sf.percentile(sf.col(names[f]), quantiles).alias(names[f]) for f in numeric]) \
            .collect()[0]  # (NaN reaches Spark as null: percentile skips it)
        edges.update({f: np.unique(np.asarray(found[names[f]] or [], dtype=float))
                      for f in numeric})

    def counts(batches):
        for batch in batches:
            batch = batch.sort_values([TIME, POS], kind="stable")
            parts = []
            for f, role in roles.items():
                values = field_values(batch[f], role, markers)
                if role == "numeric":
                    ok = ~np.isnan(values)
                    values = np.where(ok, bin_of(values, edges[f]), -1)
                codes, keys = pd.factorize(values, use_na_sentinel=False)
                first = np.unique(codes, return_index=True)[1]
                n, numbers = len(keys), role == "numeric"
                nothing = pd.Series(np.full(n, None, dtype=object), dtype=object)
                parts.append(pd.DataFrame({  # (object, not str: one Arrow array per batch)
                    "field": pd.Series(np.full(n, f, dtype=object), dtype=object),
                    "text": nothing if numbers else pd.Series(keys, dtype=object),
                    "bin": pd.array(keys if numbers else nothing, dtype="Int64"),
                    "leads": np.bincount(codes, minlength=len(keys)),
                    "conversions": np.bincount(codes, weights=batch[Y].to_numpy(),
                                               minlength=len(keys)).round().astype(int),
                    "first_time": batch[TIME].to_numpy()[first],
                    "first_pos": batch[POS].to_numpy()[first]}))
            yield pd.concat(parts, ignore_index=True)

    schema = StructType([StructField("field", StringType()), StructField("text", StringType()),
                         StructField("bin", LongType()), StructField("leads", LongType()),
                         StructField("conversions", LongType()),
                         StructField("first_time", DoubleType()),
                         StructField("first_pos", LongType())])
    rows = labelled.select(TIME, POS, Y, *roles).mapInPandas(counts, schema) \
        .groupBy("field", "text", "bin").agg(
            sf.sum("leads").alias("leads"), sf.sum("conversions").alias("conversions"),
            sf.min(sf.struct("first_time", "first_pos")).alias("first")) \
        .select("field", "text", "bin", "leads", "conversions", "first.first_time",
                "first.first_pos").toPandas()
    out = {}
    for f, role in roles.items():
        mine = rows[rows["field"] == f]
        key = mine["bin"].astype(int) if role == "numeric" else mine["text"]
        out[f] = (pd.DataFrame({
            "key": key.to_numpy(dtype=object if role != "numeric" else int),
            "leads": mine["leads"].to_numpy(dtype=int),
            "conversions": mine["conversions"].to_numpy(dtype=int),
            "first_time": mine["first_time"].to_numpy(dtype=float),
            "first_pos": mine["first_pos"].to_numpy(dtype=int)}), edges[f])
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
