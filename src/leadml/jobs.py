"""The jobs users run: training, audit, backtest, scoring, the report, the sample.

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
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from leadml.config import (
    DECIMAL_MARKS,
    MISSING_VALUES,
    THOUSANDS_SEPARATORS,
    ConfigError,
    Rules,
    TrainConfig,
    default_rules,
)
from leadml.schema import History, probability_meaning

logger = logging.getLogger(__name__)


# --- reading a history ---------------------------------------------------------------------

def read_history(cfg: TrainConfig, data: pd.DataFrame | None = None,
                 outcomes: pd.DataFrame | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The lead history and, when the config names one, the outcomes table: read from the
    config's files, or given as DataFrames (``data``, ``outcomes``) by a Python caller."""
    from leadml import io

    ds = cfg.dataset
    if data is None:
        if ds.path is None:
            raise ConfigError("dataset.path is not set: name the lead history in the config, "
                              "or pass the leads as a DataFrame (leadml.train_model(config, "
                              "data=leads))")
        raw = io.read_table(ds.path, delimiter=ds.csv.delimiter, encoding=ds.csv.encoding)
    else:
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas DataFrame of leads, got {type(data)}")
        raw = data
    if ds.outcomes is not None and outcomes is None:
        outcomes = io.read_table(ds.outcomes.path, delimiter=ds.csv.delimiter,
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
        "horizon_days": history.horizon_days,
        "as_of": None if history.as_of is None else str(history.as_of),
        "unlabelled_young_leads": history.unlabelled,
        "open_leads": history.open_leads,
        "probability_means": probability_meaning(history.horizon_days),
    }


def audited_history(cfg: TrainConfig, *, refuse: bool = True, data: pd.DataFrame | None = None,
                    outcomes: pd.DataFrame | None = None):
    """Read and audit the history: (the audit, the validated :class:`History`). Raises
    :class:`~leadml.schema.LeadDataError` on a blocking finding when ``refuse``."""
    from leadml.audit import audit_frame, refuse_if_blocked

    raw, outcomes = read_history(cfg, data, outcomes)
    audit, history = audit_frame(raw, cfg, outcomes)
    if refuse:
        refuse_if_blocked(audit)
    return audit, history


# --- the jobs ------------------------------------------------------------------------------

def train(cfg: TrainConfig, *, force_promote: bool = False, rules: Rules | None = None,
          data: pd.DataFrame | None = None, outcomes: pd.DataFrame | None = None):
    """Read, validate, audit, train, log, register, promote. ``rules``: the team's BANT
    rules, for the grade cut-offs of the report logged with the run. ``data`` (and
    ``outcomes``): the history as DataFrames instead of the config's files.

    Returns the :class:`~leadml.train.TrainResult` and the
    :class:`~leadml.registry.Registered` version.
    """
    from leadml import heap, registry

    registry.check_reachable(registry.tracking_uri(cfg.registry.tracking_uri))  # before fitting
    with heap.spared():  # (MLflow's and scikit-learn's modules, imported by now)
        return _train(cfg, force_promote=force_promote, rules=rules, data=data,
                      outcomes=outcomes)


def _train(cfg: TrainConfig, *, force_promote: bool, rules: Rules | None,
           data: pd.DataFrame | None, outcomes: pd.DataFrame | None):
    from leadml import io, registry
    from leadml.audit import refuse_if_blocked
    from leadml.batch import checkpoint
    from leadml.importance import field_insights, permutation_importances
    from leadml.train import train as fit

    started = time.perf_counter()
    audit, history = audited_history(cfg, refuse=False, data=data, outcomes=outcomes)
    audited = time.perf_counter() - started
    for finding in audit.findings:
        logger.warning("audit: %s", finding.message)
    refuse_if_blocked(audit)
    facts = dataset_facts(history, cfg, io.file_sha256(cfg.dataset.path) if data is None
                          else io.frame_sha256(data))
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
    start = time.perf_counter()
    result = fit(history, cfg)
    checkpoint("train_fitted")
    result.timings["read_and_audit_seconds"] = audited
    result.timings["train_seconds"] = time.perf_counter() - start
    result.audit = audit
    features = list(cfg.dataset.columns.features)
    start = time.perf_counter()
    result.importances = permutation_importances(result.model, result.X_test[features],
                                                 result.y_test, seed=cfg.model.seed)
    result.insights = field_insights(history.features, history.target, cfg.dataset.columns,
                                     cfg.dataset.missing_values)
    result.timings["importance_seconds"] = time.perf_counter() - start
    logger.info("fields the model leans on most: %s", ", ".join(
        result.importances["field"].head(5)))
    target = cfg.dataset.target.column if cfg.dataset.target else "converted"
    registered = registry.log_training(result, cfg, facts, force_promote=force_promote,
                                       rules=rules, dataset=history.features[features].assign(
                                           **{target: history.target}))
    return result, registered


def audit(cfg: TrainConfig, output: Path | None = None, *, data: pd.DataFrame | None = None,
          outcomes: pd.DataFrame | None = None):
    """Audit the history and write the audit JSON (when ``output``); returns (the audit, its
    path). Does not raise on blocking findings: the caller reads ``audit.blocking``."""
    report, _ = audited_history(cfg, refuse=False, data=data, outcomes=outcomes)
    if output is None:
        return report, None
    return report, report.write(output)


def backtest(cfg: TrainConfig, *, start: float, window: float, end: float, output: Path):
    """Retrain before each window and score it; writes the tables and plot to ``output``
    and logs an MLflow run. Returns (the backtest, its files, the run id)."""
    from leadml.backtest import backtest as replay
    from leadml.backtest import write_backtest
    from leadml.registry import log_backtest

    _, history = audited_history(cfg)
    bt = replay(history, cfg, start=start, window=window, end=end)
    files = write_backtest(bt, output)
    return bt, files, log_backtest(bt, cfg, files, start=start, window=window, end=end)


@dataclass(frozen=True)
class ScoreRequest:
    """One nightly scoring run, as a scheduler asks for it."""

    input: str | Path
    output: str | Path
    model: str | None = None  # a model URI; default models:/<model_name>@champion
    model_name: str = "leadml"
    rules: str | Path | None = None  # default: the shipped rules
    rules_only: bool = False
    id_column: str = "lead_id"  # with rules_only (a model knows its own)
    engine: str = "local"
    spark_master: str | None = None
    spark_conf: tuple[str, ...] = ()
    log_to_mlflow: bool = False


@dataclass(frozen=True)
class ScoreOutcome:
    manifest: dict[str, Any]
    paths: Any  # leadml.batch.RunPaths
    using: str  # "leadml v3", or "the BANT rules alone"


def score(request: ScoreRequest, settings=None, *, on_progress=None) -> ScoreOutcome:
    """Check the request, load the model and rules, score on the chosen engine."""
    from leadml import batch
    from leadml.config import load_rules
    from leadml.io import input_files
    from leadml.registry import load_scoring_model, log_scoring, resolve_model_uri
    from leadml.scoring import ScoreSettings, rules_only_contract, score_file

    settings = settings or ScoreSettings()
    spark = request.engine == "spark"
    if request.engine not in ("local", "spark"):
        raise ConfigError(f"--engine must be local or spark, got {request.engine!r}")
    if settings.decimal not in (None, *DECIMAL_MARKS):
        raise ConfigError(f"--decimal must be . or , (the decimal mark of the numbers), "
                          f"got {settings.decimal!r}")
    if settings.thousands not in (None, *THOUSANDS_SEPARATORS):
        raise ConfigError("--thousands must be one of , . ' or a space (the thousands "
                          f"separator of the numbers), got {settings.thousands!r}")
    uris = [p for p in (request.input, request.output, settings.rejects)
            if p and batch.is_uri(p)]
    if uris and not spark:
        raise ConfigError(f"{uris[0]} is a URI: the local engine reads and writes files on "
                          "this machine; add --engine spark for cluster storage")
    # Checked before the model loads: a scheduler learns of a missing file at once (a URI
    # is checked on its store once the Spark session is up).
    if not batch.is_uri(request.input):
        input_files(request.input)
    paths = batch.run_paths(request.input, request.output, settings.rejects,
                            output_is_folder=spark,
                            rejects_suffix=".rejects.parquet" if spark else ".rejects.csv")
    if len(settings.delimiter) != 1:
        raise ConfigError(f"--delimiter must be one character, got {settings.delimiter!r}")
    if settings.scored_at is not None:
        try:
            pd.Timestamp(settings.scored_at)
        except ValueError:
            raise ConfigError(f"--scored-at {settings.scored_at!r} is not an ISO 8601 "
                              "time") from None
    bad = [c for c in request.spark_conf if "=" not in c]
    if bad:
        raise ConfigError(f"--spark-conf takes KEY=VALUE, got {bad}")
    rules = load_rules(request.rules) if request.rules else default_rules()
    if request.rules_only:
        if request.model is not None:
            raise ConfigError("--rules-only scores without a model: drop --model")
        sq = rules.label_policy.sales_qualified
        if sq.by_capacity or sq.min_expected_value is not None:
            raise ConfigError(f"the rules '{rules.source}' rank or cut leads by probability "
                              "or expected value (label_policy.sales_qualified capacity, "
                              "capacity_share or min_expected_value): --rules-only has no "
                              "probability; remove those keys or score with a model")
        markers = MISSING_VALUES
        model, contract = None, rules_only_contract(request.id_column, markers)
        using = "the BANT rules alone"
    else:
        model, contract = load_scoring_model(resolve_model_uri(request.model,
                                                               request.model_name))
        using = f"{contract.name} v{contract.version}"
    if settings.decimal is not None or settings.thousands is not None:
        contract = replace(contract, decimal=settings.decimal or contract.decimal,
                           thousands=settings.thousands or contract.thousands)
        if contract.thousands == contract.decimal:
            raise ConfigError(f"the decimal mark and the thousands separator are both "
                              f"{contract.decimal!r}: pass --decimal and --thousands that "
                              "differ")
    logger.info("scoring %s with %s, rules %s", request.input, using, rules.sha256[:16])
    if spark:
        try:
            from leadml.spark import score_spark
        except ImportError:
            raise ConfigError("--engine spark needs PySpark: pip install "
                              "'leadml[spark]'") from None
        manifest = score_spark(request.input, request.output, model=model, contract=contract,
                               rules=rules, settings=settings, master=request.spark_master,
                               conf=dict(c.split("=", 1) for c in request.spark_conf))
    else:
        manifest = score_file(request.input, request.output, model=model, contract=contract,
                              rules=rules, settings=settings, on_progress=on_progress)
    for warning in manifest["warnings"]:
        logger.warning(warning)
    if request.log_to_mlflow:
        logger.info("logged to MLflow run %s", log_scoring(manifest))
    return ScoreOutcome(manifest=manifest, paths=paths, using=using)


SCORED_COLUMNS = ["lead_id", "conversion_probability", "grade", "label", "reasons"]


def report(output: Path, *, model: str | None = None, model_name: str = "leadml",
           scored: Path | None = None, rules: Path | None = None):
    """Write the sales-ops HTML report of a registered model (and tonight's scored file);
    returns (the page, the model's contract)."""
    import numpy as np

    from leadml import bant
    from leadml.config import load_rules
    from leadml.io import read_table, write_text
    from leadml.registry import load_scoring_model, report_inputs, resolve_model_uri
    from leadml.report import render
    from leadml.schema import require_columns

    uri = resolve_model_uri(model, model_name)
    _, contract = load_scoring_model(uri)
    data, predictions = report_inputs(uri)
    ruleset = load_rules(rules) if rules else default_rules()
    cutoffs = bant.grade_cutoffs(ruleset.grades, np.asarray(contract.reference_quantiles))
    frame = None
    if scored is not None:
        frame = read_table(scored)
        require_columns(list(frame.columns), SCORED_COLUMNS, what=f"scored file '{scored}'",
                        fix="Pass a file written by leadml score.")
        for col in ("conversion_probability", "expected_value"):
            if col in frame:
                frame[col] = frame[col].astype(float)
    sq = ruleset.label_policy.sales_qualified
    capacities = [sq.capacity_share] if sq.capacity_share else \
        [min(sq.capacity / len(frame), 1.0)] if sq.capacity and frame is not None and len(frame) \
        else []
    page = render(data, predictions["y"].to_numpy(), predictions["p"].to_numpy(),
                  cutoffs=cutoffs, scored=frame, scored_name=scored.name if scored else "",
                  capacities=capacities, meanings=bant.meanings(ruleset.label_policy))
    write_text(page, output)
    return page, contract


def explain(lead_file: Path, *, model: str | None = None, model_name: str = "leadml",
            rows: int = 5, delimiter: str = ","):
    """Why the first ``rows`` leads of a file score as they do: (contract, ids,
    probabilities, per-field effects)."""
    from leadml.explain import Explainer
    from leadml.io import read_table
    from leadml.registry import load_scoring_model, resolve_model_uri
    from leadml.schema import LeadDataError, require_columns
    from leadml.scoring import typed_features

    fitted, contract = load_scoring_model(resolve_model_uri(model, model_name))
    if contract.reference_lead is None:
        raise LeadDataError(f"model {contract.name} v{contract.version} has no reference "
                            "lead (trained before reasons existed); retrain it")
    leads = read_table(lead_file, delimiter=delimiter).head(rows)
    require_columns(list(leads.columns), contract.features, what=f"'{lead_file}'",
                    fix=f"The model expects {contract.features}.")
    p, effects = Explainer(fitted, contract.reference_lead).effects(
        typed_features(leads, contract))
    ids = leads[contract.id_column].astype(str).tolist() if contract.id_column in leads \
        else [str(i) for i in range(1, len(leads) + 1)]
    return contract, ids, p, effects


@dataclass(frozen=True)
class Plan:
    table: pd.DataFrame  # one row per capacity share (leadml.plan.plan_table)
    lines: dict[float, str]  # the rules lines of each share
    y: Any  # the test window's outcomes, probabilities and ranking keys, for the chart
    p: Any
    keys: Any
    oracle: Any
    model: str


def plan(cfg: TrainConfig, shares, *, rules: Rules | None = None, model: str | None = None,
         model_name: str = "leadml", oracle_column: str | None = None) -> Plan:
    """The capacity plan of a registered model on its own test window: the history it was
    trained on is read again and split as in training (refused if it changed since)."""

    from leadml import bant, capacity, io
    from leadml import plan as planning
    from leadml.batch import with_record_ids
    from leadml.registry import load_scoring_model, report_inputs, resolve_model_uri
    from leadml.schema import LeadDataError
    from leadml.scoring import SeenIds, check_columns, validate_rows
    from leadml.train import split_windows

    rules = rules or default_rules()
    bad = [s for s in shares if not 0 < s <= 1]
    if bad or not shares:
        raise ConfigError(f"capacity shares must be in (0, 1], got {list(shares)}")
    uri = resolve_model_uri(model, model_name)
    fitted, contract = load_scoring_model(uri)
    data, _ = report_inputs(uri)
    trained_on = data["data"].get("sha256")
    if trained_on and trained_on != io.file_sha256(cfg.dataset.path):
        raise LeadDataError(
            f"'{cfg.dataset.path}' is not the file model {contract.name} v{contract.version} "
            f"was trained on (sha256 {trained_on[:16]}...): its test window is not defined "
            "there. Pass the training config of that model, or train on this file first.")
    _, history = audited_history(cfg, refuse=False)
    test = split_windows(history, cfg)["test"]
    if test.rows != data["windows"]["test"]["rows"]:
        raise ConfigError(
            f"the config's split gives a test window of {test.rows} leads, but model "
            f"{contract.name} v{contract.version} was tested on "
            f"{data['windows']['test']['rows']}: use the config it was trained with")
    leads = history.features.iloc[test.rows_slice]
    if oracle_column is not None and oracle_column not in leads:
        raise ConfigError(f"--oracle-column {oracle_column!r} is not a column of "
                          f"'{cfg.dataset.path}'")
    run_contract = with_record_ids(contract)
    frame = leads.assign(**{run_contract.id_column:
                            history.ids.iloc[test.rows_slice].astype(str).to_numpy()})
    check_columns(list(frame.columns), run_contract, rules, path=cfg.dataset.path,
                  delimiter=cfg.dataset.csv.delimiter)
    typed, _ = validate_rows(frame, run_contract, rules, seen=SeenIds(),
                             scored_at=pd.Timestamp("2200-01-01", tz="UTC"))
    p = fitted.predict_proba(typed[contract.features])[:, 1]
    policy = planning.capacity_policy(rules.label_policy)
    ev = None
    if rules.value is not None:
        deal = typed[rules.value.column].to_numpy(dtype=float) if rules.value.column else None
        ev = capacity.expected_value(p, deal, rules.value)
    eligible = bant.label(p, bant.evaluate(typed, rules, run_contract.missing_values), policy,
                          ev) == "sales_qualified"
    keys = capacity.rank_keys(policy.sales_qualified, p, ev)
    oracle = None if oracle_column is None else \
        pd.to_numeric(leads[oracle_column], errors="coerce").to_numpy(dtype=float)
    y = history.target[test.rows_slice]
    ids = frame[run_contract.id_column].to_numpy(dtype=object)
    table = planning.plan_table(y, p, ids, eligible, list(shares), keys=keys, oracle=oracle)
    lines = {float(r["capacity_share"]): planning.rules_lines(r, rules.label_policy)
             for _, r in table.iterrows()}
    return Plan(table=table, lines=lines, y=y, p=p, keys=keys, oracle=oracle,
                model=f"{contract.name} v{contract.version}")


def write_plan(made: Plan, output: Path) -> None:
    """The plan as JSON (rows and rules lines) and its gain chart as PNG beside it."""
    import io as stdio

    import matplotlib.pyplot as plt

    from leadml.io import atomic_path, write_json
    from leadml.plan import gain_figure

    shares = made.table["capacity_share"].tolist()
    write_json({"model": made.model, "leads": len(made.y), "conversions": int(made.y.sum()),
                "capacities": made.table.to_dict("records"),
                "rules_lines": {f"{s:g}": t for s, t in made.lines.items()}}, output)
    fig = gain_figure(made.y, made.keys, shares, oracle=made.oracle, policy_points=made.table)
    buf = stdio.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    with atomic_path(output.with_suffix(".png")) as tmp:
        tmp.write_bytes(buf.getvalue())


@dataclass(frozen=True)
class OutcomeSource:
    """Where the outcomes of scored leads are, and how a conversion is recorded."""

    path: str | Path
    id_column: str = "lead_id"
    converted_at_column: str | None = None
    converted_column: str | None = None
    positive_values: tuple[str, ...] = ("1", "true", "yes")
    time_format: str = "iso"
    delimiter: str = ","

    def read(self) -> pd.DataFrame:
        from leadml.outcomes import read_outcomes

        return read_outcomes(self.path, id_column=self.id_column,
                             converted_at=self.converted_at_column,
                             converted=self.converted_column,
                             positive_values=self.positive_values,
                             time_format=self.time_format, delimiter=self.delimiter)


def _matured(scored_paths, outcomes: OutcomeSource, *, horizon_days: float | None,
             as_of: str | None):
    """(the scored runs, every scored lead with ``matured`` and ``converted``, horizon,
    as-of time)."""
    from leadml.monitor import mature
    from leadml.outcomes import read_scored

    scored = read_scored(scored_paths)
    if horizon_days is None:
        stated = {h for h in scored.runs["horizon_days"] if h is not None}
        horizon_days = max(stated) if stated else None
    when = pd.Timestamp(as_of) if as_of else pd.Timestamp.now(tz="UTC")
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    frame = mature(scored.leads, outcomes.read(), horizon_days=horizon_days, as_of=when)
    early = frame.loc[frame["converted_before_scoring"], "lead_id"]
    if len(early):
        logger.warning(
            "%d scored lead(s) had converted more than a day before they were scored (%s): "
            "left out of the realised rates; a nightly file should hold open leads only "
            "(check the export's filter)", len(early), ", ".join(map(str, early.iloc[:3])))
    return scored, frame, horizon_days, when


def monitor(scored_paths, outcomes: OutcomeSource, *, output: Path | None = None,
            by: str = "run", horizon_days: float | None = None, as_of: str | None = None,
            thresholds=None, log_to_mlflow: bool = True):
    """Realised against predicted conversion of past scoring runs (:mod:`leadml.monitor`):
    writes ``monitor.json``, ``periods.csv`` and ``monitor.html`` to ``output`` and logs an
    MLflow run. ``thresholds``: a :class:`~leadml.monitor.Thresholds` or its fields as a
    dict. Returns the :class:`~leadml.monitor.Monitoring`."""
    from leadml import monitor as mon
    from leadml.io import write_json, write_table, write_text

    if by not in ("run", "week"):
        raise ConfigError(f"--by must be run or week, got {by!r}")
    if output is not None and output.exists() and not output.is_dir():
        raise ConfigError(f"--output '{output}' is a file: monitor writes a folder "
                          "(monitor.html, monitor.json, periods.csv); choose another name")
    scored, frame, horizon, when = _matured(scored_paths, outcomes,
                                            horizon_days=horizon_days, as_of=as_of)
    from leadml.outcomes import read_input
    from leadml.registry import load_scoring_model

    references, contracts = {}, {}
    for model, name, version in scored.runs[["model", "model_name", "model_version"]] \
            .drop_duplicates().itertuples(index=False):
        try:
            contracts[model] = load_scoring_model(f"models:/{name}/{version}")[1]
            references[model] = contracts[model].reference_quantiles
        except Exception as exc:  # a model exported or deleted since: no drift shown
            logger.warning("no reference for %s (%s): score and input drift not shown",
                           model, str(exc)[:200])
    drift = []
    for model, facts in zip(scored.runs["model"], scored.runs["input"], strict=True):
        contract = contracts.get(model)
        leads = read_input(facts) if contract and contract.field_reference else None
        drift.append(None if leads is None else mon.field_psi(
            leads, contract.field_reference, contract.missing_values,
            decimal=facts.get("decimal") or contract.decimal,
            thousands=facts.get("thousands", contract.thousands)))
    scored.runs["input_psi"] = drift
    if isinstance(thresholds, dict):
        thresholds = mon.Thresholds(**thresholds)
    result = mon.summarize(frame, scored.runs, by=by, thresholds=thresholds or mon.Thresholds(),
                           references=references)
    distinct = frame["lead_id"].nunique()
    note = (f"{distinct:,} leads scored in {len(scored.runs)} run(s)"
            + (f" ({len(frame) - distinct:,} of the scorings repeat a lead)"
               if len(frame) > distinct else "") + "; outcomes from "
            f"{outcomes.path} as of {when:%Y-%m-%d %H:%M} UTC; "
            + (f"a lead matures {horizon:g} days after it was scored"
               if horizon else "a lead counts once the outcomes table lists it (no horizon)")
            + (f"; {early:,} scored lead(s) had converted before they were scored: left "
               "out" if (early := int(frame["converted_before_scoring"].sum())) else "")
            + (f"; skipped: {'; '.join(scored.skipped)}" if scored.skipped else ""))
    result.note = note
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        write_json({**result.to_dict(), "note": note, "horizon_days": horizon,
                    "as_of": str(when)}, output / "monitor.json")
        write_table(result.periods.drop(columns=["unseen_rates"]), output / "periods.csv")
        write_text(mon.render(result, title="leadml monitoring: realised against predicted",
                              note=note), output / "monitor.html")
    if log_to_mlflow:
        from leadml.registry import log_monitoring

        result.run_id = log_monitoring(result, output)
    return result


def recalibrate(scored_paths, outcomes: OutcomeSource, *, model_name: str = "leadml",
                holdout: float = 0.3, min_leads: int = 500, horizon_days: float | None = None,
                as_of: str | None = None, promotion=None):
    """Refit the champion's rate shift on its recently matured leads and register the
    result as a challenger (promoted when it beats the champion on the newest
    ``holdout`` of those leads). Returns a dict: the new version, the decision, numbers."""
    import numpy as np

    from leadml import promotion as gate
    from leadml.config import PromotionConfig
    from leadml.drift import recalibrated, shift_rate
    from leadml.evaluate import metrics
    from leadml.registry import load_scoring_model, resolve_model_uri
    from leadml.registry.recalibration import register_recalibrated
    from leadml.schema import LeadDataError

    if not 0 < holdout < 1:
        raise ConfigError(f"--holdout must be between 0 and 1, got {holdout}")
    from leadml.serving import unserved

    uri = resolve_model_uri(None, model_name)
    champion, contract = load_scoring_model(uri)
    champion = unserved(champion)
    scored, frame, _, when = _matured(scored_paths, outcomes, horizon_days=horizon_days,
                                      as_of=as_of)
    mine = frame[(frame["model"] == f"{contract.name} v{contract.version}") & frame["matured"]]
    # A lead scored by several runs (overlapping nightly exports) counts once, as first scored.
    mine = mine.drop_duplicates("lead_id", keep="first")
    if len(mine) < min_leads:
        raise LeadDataError(
            f"{len(mine)} matured leads were scored by the champion {contract.name} "
            f"v{contract.version} (of {len(frame)} scored in these runs); recalibrating needs "
            f"at least {min_leads} (--min-leads): wait for outcomes to mature, or pass more "
            "scoring runs")
    mine = mine.sort_values("scored_at", kind="stable")
    cut = int(round(len(mine) * (1 - holdout)))
    fit, held = mine.iloc[:cut], mine.iloc[cut:]
    y_fit = fit["converted"].to_numpy(int)
    new = recalibrated(champion, fit["conversion_probability"].to_numpy(float), y_fit.mean())
    old_shift = (champion.source_rate, champion.target_rate) \
        if hasattr(champion, "source_rate") else None

    def moved(p):  # the champion's probabilities as the new model gives them
        p = np.asarray(p, dtype=float)
        if old_shift is not None:
            p = shift_rate(p, old_shift[1], old_shift[0])  # undo the champion's shift
        return shift_rate(p, new.source_rate, new.target_rate)

    y_held = held["converted"].to_numpy(int)
    p_old = held["conversion_probability"].to_numpy(float)
    ours = metrics(y_held, moved(p_old))
    decision = gate.decide("(recalibrated)", ours, champion_version=contract.version,
                           y_test=y_held, p_champion=p_old, cfg=promotion or PromotionConfig(),
                           test_first_time="", champion_train_end=None)
    lineage = {"parent": f"{contract.name} v{contract.version}", "as_of": str(when),
               "leads_fitted": len(fit), "leads_held_out": len(held),
               "fitted_rate": round(float(y_fit.mean()), 6),
               "fitted_predicted_rate": round(float(fit["conversion_probability"].mean()), 6),
               "held_out_first_scored_at": str(held["scored_at"].min()),
               "source_rate": new.source_rate, "target_rate": new.target_rate,
               "scoring_runs": sorted(set(mine["run"]))}
    numbers = {**decision.numbers, "held_out_ece_before": metrics(y_held, p_old)["ece"],
               "held_out_ece_after": ours["ece"]}
    registered = register_recalibrated(new, parent_uri=f"models:/{contract.name}/"
                                       f"{contract.version}", lineage=lineage, shift=moved,
                                       promote=decision.promote, decision=decision.message,
                                       numbers=numbers)
    message = decision.message.replace("(recalibrated)", registered["version"])
    return {**registered, "decision": message, "numbers": numbers, "lineage": lineage}


def rules_init(cfg: TrainConfig, output: Path) -> str:
    """Write a starting BANT rules file for the config's history (every guess commented);
    refuses to overwrite an existing file. Returns its text."""
    from leadml.io import write_text
    from leadml.rules_init import rules_text

    if output.exists():
        raise ConfigError(f"'{output}' exists: leadml rules init never overwrites a rules "
                          "file; choose another --output or remove it")
    _, history = audited_history(cfg, refuse=False)
    text = rules_text(history, cfg)
    write_text(text, output)
    return text


def config_init(export: Path, output: Path, *, target: str | None = None,
                positive: tuple[str, ...] = (), outcomes: Path | None = None,
                delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """Write a first training config for a lead export (:mod:`leadml.config_init`), every
    choice commented; refuses to overwrite a file. Returns a line per choice."""
    import tempfile

    from leadml.config import load_config
    from leadml.config_init import draft
    from leadml.io import read_table, write_text

    if output.exists():
        raise ConfigError(f"'{output}' exists: leadml config init never overwrites a config; "
                          "choose another --output or remove it")
    frame = read_table(export, delimiter=delimiter, encoding=encoding)
    table = read_table(outcomes, delimiter=delimiter, encoding=encoding) \
        if outcomes is not None else None
    text, notes = draft(frame, export, output, target=target, positive=positive,
                        outcomes=table, outcomes_path=outcomes, delimiter=delimiter,
                        encoding=encoding)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=output.parent,
                                     delete=False) as tmp:
        tmp.write(text)
    try:
        load_config(tmp.name)  # what is written loads (paths relative to its folder)
    finally:
        os.unlink(tmp.name)
    write_text(text, output)
    return notes


def sample(out: Path, *, rows: int, seed: int, nightly_rows: int):
    """Write the synthetic history and nightly file; returns both frames."""
    from leadml.io import write_table
    from leadml.synthetic import make_sample

    history, nightly = make_sample(rows, seed=seed, nightly_rows=nightly_rows)
    write_table(history, out / "leads.csv")
    write_table(nightly, out / "nightly.csv")
    return history, nightly


def sample_crm(out: Path, *, rows: int, seed: int, nightly_rows: int) -> dict:
    """Write the CRM-style sample (:mod:`leadml.synthetic_crm`) and its first config."""
    from leadml.synthetic_crm import write_crm_export

    return write_crm_export(out, rows, seed=seed, nightly_rows=nightly_rows)
