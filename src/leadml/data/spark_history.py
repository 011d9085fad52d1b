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
metrics over the whole window (:mod:`leadml.training.whole_test`); what needs every lead
beside them is counted on the cluster (:mod:`leadml.data.spark_counts`). What the reduction
changes for a history over the budget (the calibration choice's backtest windows and the
audit's column statistics are those of the leads kept) is stated in docs/spark.md and
recorded with the run (:attr:`Reduced.facts`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from leadml.config import TrainConfig
from leadml.data.schema import Counted, all_open, all_young, required_columns
from leadml.data.spark_counts import clock, tenth_ranges, whole
from leadml.data.spark_files import CORRUPT, read_leads, session
from leadml.data.spark_labels import (
    CONVERTED,
    POS,
    SUSPECT,
    TIME,
    at_or_after,
    at_or_before,
    flag_leads,
    label_leads,
    parsed_outcomes,
)
from leadml.data.tables import csv_header, is_parquet
from leadml.errors import ConfigError, LeadDataError

logger = logging.getLogger(__name__)

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


def reduce_history(cfg: TrainConfig, on: OnSpark, *, spark=None,
                   insight_bins: int | None = None) -> Reduced:
    """Read the config's history (or ``on.source``: any URI Spark reads) on Spark and
    reduce it to the newest ``model.max_fit_leads`` leads of each window (see the module).
    ``insight_bins``: also count each field's values over every lead, for the field
    insights of a training (:func:`leadml.data.spark_counts.field_counts`)."""
    ds = cfg.dataset
    source = on.source or (str(ds.path) if ds.path is not None else None)
    if source is None:
        raise ConfigError("dataset.path is not set: name the lead history in the config "
                          "(any URI Spark reads)")
    if not is_parquet(source) and Path(source).is_file():  # the local header checks
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

    flagged = flag_leads(frame.select(*columns), cfg, kept_columns)
    # the outcomes table, read once for the labels, the counts and the handover
    outcomes = parsed_outcomes(spark, cfg).cache() if ds.outcomes is not None else None
    labelled, counted, as_of = label_leads(flagged, cfg, outcomes)
    good = flagged.filter(~sf.col(SUSPECT) & labelled)
    n_good = good.count()
    if n_good == 0 and not flagged.filter(sf.col(SUSPECT)).limit(1).count():
        raise all_open(ds) if counted.open_leads == total else all_young(ds, as_of)
    sizes = _window_sizes(n_good, cfg)
    ranges = _kept_ranges(sizes, budget)
    first_test = sizes["train"] + sizes["calibration"]
    older_test = (first_test, ranges["test"][0]) if ranges["test"][0] > first_test else None
    tenths = tenth_ranges(n_good) if clock(cfg) else {}
    newest_tenth = {"newest_tenth": (n_good - max(1, n_good // 10), n_good)} if tenths else {}
    bounds = _bounds(good, {**ranges, **({"older_test": older_test} if older_test else {}),
                            **tenths, **newest_tenth})
    # the audit's totals, rates by tenth and time to convert, and the field insights, over
    # every lead (the audit's, for a history with a creation time)
    counted = dataclasses.replace(counted, **whole(
        good, cfg, {t: bounds[t] for t in tenths}, bounds["newest_tenth"][0] if tenths
        else None, outcomes=outcomes, insight_bins=insight_bins))
    keep = sf.col(SUSPECT) & (sf.col(POS) <= _last_shown(flagged))
    for w in WINDOWS:
        keep = keep | (at_or_after(bounds[w][0]) & at_or_before(bounds[w][1]))
    leads = _to_pandas(flagged.filter(keep), kept_columns)
    spill, rest, rest_outcomes = None, None, None
    if older_test:  # the test window's older leads, for the metrics of the whole window
        lo, hi = bounds["older_test"]
        older = good.filter(at_or_after(lo) & at_or_before(hi))
        spill = tempfile.TemporaryDirectory(prefix="leadml-spark-test-")
        rest = Path(spill.name) / "rest.parquet"
        older.orderBy(TIME, POS).select(*kept_columns).write.parquet(str(rest))
        rest_outcomes = _outcomes(spark, cfg, None, ids=older.select(ds.id_column),
                                  parsed=outcomes) \
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
    reduced = Reduced(leads, _outcomes(spark, cfg, leads, parsed=outcomes), facts, split,
                      rest, rest_outcomes, spill, counted, as_of)
    if outcomes is not None:
        outcomes.unpersist()
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


def _to_pandas(frame, columns: list[str]) -> pd.DataFrame:
    """The rows on the driver in the file's order, through Parquet on local disk (the JVM
    never holds them all at once), without the reduction's own columns."""
    with tempfile.TemporaryDirectory(prefix="leadml-spark-") as tmp:
        folder = os.path.join(tmp, "kept.parquet")
        frame.write.parquet(folder)
        out = pd.read_parquet(folder)
    return out.sort_values(POS, kind="stable")[columns].reset_index(drop=True)


def _outcomes(spark, cfg: TrainConfig, leads: pd.DataFrame | None, *, ids=None,
              parsed=None) -> pd.DataFrame | None:
    """The outcomes table's rows for the kept ``leads`` (or for ``ids``, a one-column Spark
    frame of lead ids), read on Spark, with every row the local engine would stop on;
    None without an outcomes table."""
    table = cfg.dataset.outcomes
    if table is None:
        return None
    from pyspark.sql import functions as sf

    parsed = parsed_outcomes(spark, cfg) if parsed is None else parsed  # (read once)
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
