"""Training jobs: the audit of a history, a training run (fit, log, register, promote) and a
backtest.

Each job wires the library's steps (read, validate, audit, fit, log, score) and returns
what it made; it prints nothing and exits nothing. The CLI parses arguments, calls a job and
maps its errors to exit codes; ``pipelines/`` scripts and Python callers (an Airflow task, a
notebook) call the same functions::

    from leadml import jobs
    from leadml.config import load_config

    result, registered = jobs.train(load_config("pipelines/configs/sample.yaml"))
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from leadml import registry
from leadml.config import (
    Rules,
    TrainConfig,
    config_line,
    is_uri,
)
from leadml.data.audit import audit_frame, refuse_if_blocked
from leadml.data.schema import Counted, History, probability_meaning
from leadml.data.spark_history import OnSpark, reduce_history
from leadml.data.tables import file_sha256, frame_sha256, read_table
from leadml.errors import ConfigError
from leadml.explain.importance import (
    INSIGHT_BINS,
    field_insights,
    insights_from_counts,
    permutation_importances,
)
from leadml.process import checkpoint, spared
from leadml.registry import log_backtest
from leadml.training.backtest import backtest as replay
from leadml.training.backtest import write_backtest
from leadml.training.fit import train as fit
from leadml.training.whole_test import over_whole_window

logger = logging.getLogger(__name__)


# --- reading a history ---------------------------------------------------------------------

def read_history(cfg: TrainConfig, data: pd.DataFrame | None = None,
                 outcomes: pd.DataFrame | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The lead history and, when the config names one, the outcomes table: read from the
    config's files, or given as DataFrames (``data``, ``outcomes``) by a Python caller."""

    ds = cfg.dataset
    for where, path in (("dataset.path", ds.path if data is None else None),
                        ("dataset.outcomes.path", ds.outcomes.path
                         if ds.outcomes is not None and outcomes is None else None)):
        if is_uri(path):
            raise ConfigError(f"{where} is a URI ({path}): the local engine reads local "
                              "files; read it on Spark with --engine spark (docs/spark.md), "
                              "or copy it here")
    if data is None:
        if ds.path is None:
            raise ConfigError("dataset.path is not set: name the lead history in the config, "
                              "or pass the leads as a DataFrame (leadml.train_model(config, "
                              "data=leads))")
        raw = read_table(ds.path, delimiter=ds.csv.delimiter, encoding=ds.csv.encoding)
    else:
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas DataFrame of leads, got {type(data)}")
        raw = data
    if ds.outcomes is not None and outcomes is None:
        outcomes = read_table(ds.outcomes.path, delimiter=ds.csv.delimiter,
                                 encoding=ds.csv.encoding)
    # Personal data goes here, at the door: nothing after this line can log or store it.
    raw = raw.drop(columns=[c for c in ds.columns.personal if c in raw.columns])
    unused = sorted(set(raw.columns) - set(ds.columns.features) - set(ds.columns.excluded)
                    - {ds.id_column, ds.time_column} - ds.outcome_columns)
    if unused:
        logger.warning("columns not named in the config are not used: %s (list them under "
                       "columns.excluded to silence this)", unused)
    return raw, outcomes


def dataset_facts(history: History, cfg: TrainConfig, sha256: str) -> dict:
    """What data trained the model: logged with the run and written in the model card."""
    return {
        "path": cfg.dataset.source_name,
        "sha256": sha256,
        "rows": int(len(history.target)),
        "conversions": int(history.target.sum()),
        "positive_rate": round(float(history.target.mean()), 6),
        "first_time": str(history.time.iloc[0]),
        "last_time": str(history.time.iloc[-1]),
        "time_order": cfg.dataset.time_order,
        "horizon_days": history.horizon_days,
        "as_of": None if history.as_of is None else str(history.as_of),
        "unlabelled_young_leads": history.unlabelled,
        "open_leads": history.open_leads,
        "probability_means": probability_meaning(history.horizon_days),
    }


def audited_history(cfg: TrainConfig, *, refuse: bool = True, data: pd.DataFrame | None = None,
                    outcomes: pd.DataFrame | None = None, counted: Counted | None = None):
    """Read and audit the history: (the audit, the validated :class:`History`). Raises
    :class:`~leadml.errors.LeadDataError` on a blocking finding when ``refuse``.
    ``counted``: what Spark counted over a history it reduced (:class:`Counted`)."""

    raw, outcomes = read_history(cfg, data, outcomes)
    audit, history = audit_frame(raw, cfg, outcomes, counted=counted)
    if refuse:
        refuse_if_blocked(audit)
    return audit, history


def spark_engine(engine: str, *, master: str | None = None, conf: tuple[str, ...] = (),
                 source: str | None = None) -> OnSpark | None:
    """The Spark engine a job runs on (None for ``local``), checked before any work:
    ``conf`` as ``KEY=VALUE`` settings, PySpark installed."""
    if engine not in ("local", "spark"):
        raise ConfigError(f"--engine must be local or spark, got {engine!r}")
    if engine == "local":
        if master or conf or source:
            raise ConfigError("--spark-master, --spark-conf and --input go with --engine spark")
        return None
    bad = [c for c in conf if "=" not in c]
    if bad:
        raise ConfigError(f"--spark-conf takes KEY=VALUE, got {bad}")
    try:
        import pyspark  # noqa: F401  (optional: leadml[spark])
    except ImportError:
        raise ConfigError("--engine spark needs PySpark: pip install 'leadml[spark]'") from None
    return OnSpark(master=master, conf=dict(c.split("=", 1) for c in conf), source=source)


def _on_spark(cfg: TrainConfig, spark: OnSpark | None, data, outcomes, *,
              insights: bool = False):
    """(the config, leads and outcomes a job goes on with, and the
    :class:`~leadml.data.spark_history.Reduced` history or None): as given, or read and
    reduced on Spark (:mod:`leadml.data.spark_history`; ``insights``: with each field's
    counts over every lead, for a training's field insights)."""
    if spark is None:
        return cfg, data, outcomes, None
    if data is not None:
        raise ConfigError("the Spark engine reads the history itself: pass the config's "
                          "file (or a source URI), not a DataFrame")
    reduced = reduce_history(cfg, spark, insight_bins=INSIGHT_BINS if insights else None)
    return reduced.config(cfg), reduced.leads, reduced.outcomes, reduced


def _data_sha256(cfg: TrainConfig, data: pd.DataFrame | None, spark: OnSpark | None):
    if spark is not None:  # a local file is hashed as the local engine hashes it
        path = Path(spark.source or str(cfg.dataset.path))  # (None for a cluster URI)
        return file_sha256(path) if path.exists() else None
    return file_sha256(cfg.dataset.path) if data is None else frame_sha256(data)


# --- the jobs ------------------------------------------------------------------------------

def train(cfg: TrainConfig, *, force_promote: bool = False, rules: Rules | None = None,
          data: pd.DataFrame | None = None, outcomes: pd.DataFrame | None = None,
          spark: OnSpark | None = None):
    """Read, validate, audit, train, log, register, promote. ``rules``: the team's BANT
    rules, for the grade cut-offs of the report logged with the run. ``data`` (and
    ``outcomes``): the history as DataFrames instead of the config's files. ``spark``: read
    the history on Spark, the driver holding the newest leads of each window
    (:mod:`leadml.data.spark_history`).

    Returns the :class:`~leadml.training.fit.TrainResult` and the
    :class:`~leadml.registry.Registered` version.
    """

    registry.check_reachable(registry.tracking_uri(cfg.registry.tracking_uri))  # before fitting
    with spared():  # (MLflow's and scikit-learn's modules, imported by now)
        return _train(cfg, force_promote=force_promote, rules=rules, data=data,
                      outcomes=outcomes, spark=spark)


def _train(cfg: TrainConfig, *, force_promote: bool, rules: Rules | None,
           data: pd.DataFrame | None, outcomes: pd.DataFrame | None, spark: OnSpark | None):

    started = time.perf_counter()
    given = data  # (a DataFrame from a Python caller: its digest is the history's)
    cfg, data, outcomes, reduced = _on_spark(cfg, spark, data, outcomes, insights=True)
    try:
        return _train_history(cfg, force_promote=force_promote, rules=rules, data=data,
                              outcomes=outcomes, reduced=reduced, started=started,
                              sha256=lambda: _data_sha256(cfg, given, spark))
    finally:
        if reduced is not None:
            reduced.close()


def _train_history(cfg: TrainConfig, *, force_promote: bool, rules: Rules | None,
                   data: pd.DataFrame | None, outcomes: pd.DataFrame | None, reduced,
                   started: float, sha256):
    on_spark = {} if reduced is None else \
        {f"spark_{k}": v for k, v in reduced.facts.items() if k != "source"}
    audit, history = audited_history(cfg, refuse=False, data=data, outcomes=outcomes,
                                     counted=None if reduced is None else reduced.counted)
    audited = time.perf_counter() - started
    for finding in audit.findings:
        logger.warning("audit: %s", finding.message)
    refuse_if_blocked(audit)
    facts = {**dataset_facts(history, cfg, sha256()), **on_spark}
    logger.info("%d leads, %d conversions (%.2f%%), %s to %s", facts["rows"],
                facts["conversions"], 100 * facts["positive_rate"], facts["first_time"],
                facts["last_time"])
    if history.horizon_days is not None:
        logger.info("horizon %g days at %s: %d leads too young to know are left out of "
                    "training and evaluation", history.horizon_days, facts["as_of"],
                    history.unlabelled)
    if history.open_leads:
        logger.info("%d leads still open (their outcome in neither positive_values nor "
                    "negative_values) are left out of training and evaluation",
                    history.open_leads)
    with registry.training_run(cfg, facts) as run:  # its duration is the training's
        start = time.perf_counter()
        result = fit(history, cfg)
        if reduced is not None and reduced.rest_of_test is not None:
            result = over_whole_window(result, cfg, history, reduced.rest_of_test,
                                       reduced.rest_outcomes)
        checkpoint("train_fitted")
        result.timings["read_and_audit_seconds"] = audited
        result.timings["train_seconds"] = time.perf_counter() - start
        result.audit = audit
        features = list(cfg.dataset.columns.features)
        start = time.perf_counter()
        X_imp, y_imp = result.importance_leads or (result.X_test[features], result.y_test)
        result.importances = permutation_importances(result.model, X_imp, y_imp,
                                                     seed=cfg.model.seed)
        counted = None if reduced is None else reduced.counted
        if counted is not None and counted.fields is not None:  # over every lead, on Spark
            result.insights = insights_from_counts(counted.fields, cfg.dataset.columns,
                                                   counted.conversions / counted.leads)
        else:
            result.insights = field_insights(history.features, history.target,
                                             cfg.dataset.columns, cfg.dataset.missing_values)
        result.timings["importance_seconds"] = time.perf_counter() - start
        logger.info("fields the model leans on most: %s", ", ".join(
            result.importances["field"].head(5)))
        target = cfg.dataset.target.column if cfg.dataset.target else "converted"
        version = registry.log_into_run(result, cfg, facts, rules=rules,
                                        dataset=history.features[features].assign(
                                            **{target: history.target}))
    registered = registry.promote_training(run, result, cfg, version,
                                           force_promote=force_promote)
    return result, registered


def audit(cfg: TrainConfig, output: Path | None = None, *, data: pd.DataFrame | None = None,
          outcomes: pd.DataFrame | None = None, spark: OnSpark | None = None):
    """Audit the history and write the audit JSON (when ``output``); returns (the audit, its
    path). Does not raise on blocking findings: the caller reads ``audit.blocking``.
    ``spark``: read it on Spark (the totals, rates by tenth and time to convert over every
    lead; the column statistics of the leads a training keeps: docs/spark.md)."""
    cfg, data, outcomes, reduced = _on_spark(cfg, spark, data, outcomes)
    try:
        report, _ = audited_history(cfg, refuse=False, data=data, outcomes=outcomes,
                                    counted=None if reduced is None else reduced.counted)
    finally:
        if reduced is not None:
            reduced.close()
    if output is None:
        return report, None
    return report, report.write(output)


def backtest(cfg: TrainConfig, *, start: float, window: float, end: float, output: Path,
             spark: OnSpark | None = None):
    """Retrain before each window and score it; writes the tables and plot to ``output``
    and logs an MLflow run. Returns (the backtest, its files, the run id). ``spark``: read
    the history on Spark; a replay scores every lead of its windows, so the history must
    reach the driver whole (each training window within ``model.max_fit_leads``)."""

    cfg, data, outcomes, reduced = _on_spark(cfg, spark, None, None)
    if reduced is not None:
        reduced.close()
        if reduced.split is not None:
            raise ConfigError(
                f"a backtest on Spark needs the whole history on the driver (it scores every "
                f"lead of its windows), and this one has {reduced.facts['history_leads']:,} "
                f"leads, over {config_line(cfg, 'model', 'max_fit_leads')} in a window: "
                "backtest a stretch of it (--input of a time slice), or on the local engine")
    _, history = audited_history(cfg, data=data, outcomes=outcomes)
    bt = replay(history, cfg, start=start, window=window, end=end)
    files = write_backtest(bt, output)
    return bt, files, log_backtest(bt, cfg, files, start=start, window=window, end=end)
