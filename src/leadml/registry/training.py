"""What a training run logs: parameters, metrics, plots, the model card, the model with its
contract and signature, the sales-ops report; then champion or challenger."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadml import __version__
from leadml.config import default_rules
from leadml.errors import RegistryUnavailableError
from leadml.explain import report
from leadml.explain.effects import Explainer, Shares
from leadml.model.encoders import distinct_rows
from leadml.model.saved_paths import TRUSTED_TYPES
from leadml.model.sklearn_compat import model_parts
from leadml.model.wrappers import served
from leadml.monitoring.statistics import (
    field_reference,
    numeric_reference,
    unseen_shares,
)
from leadml.process import checkpoint
from leadml.registry import promotion, store
from leadml.registry.models import CHALLENGER, CHAMPION, load_model
from leadml.rules import axes, bant
from leadml.scoring.chunks import known_categories
from leadml.training.metrics import save_plots

#: The leadml package's folder, copied beside a logged model for MLflow's own loaders.
PACKAGE = Path(__file__).resolve().parents[1]


def input_example(features: pd.DataFrame, numeric: tuple[str, ...]) -> pd.DataFrame:
    """One made-up lead: the median of each number and the commonest value of each other
    field, so no real person's row (names, emails, phones) is ever stored with a model."""
    row = {}
    for col in features.columns:
        values = features[col]
        if col in numeric:
            x = pd.to_numeric(values, errors="coerce")
            whole = x.notna().all() and (x == x.round()).all()
            row[col] = int(x.median()) if whole else float(x.median())
        else:
            mode = values.mode(dropna=True)
            row[col] = str(mode.iloc[0]) if len(mode) else ""
    return pd.DataFrame([row])


def contract_metadata(result, cfg, reference: pd.DataFrame) -> dict[str, Any]:
    """What scoring needs to know about the data a model expects, stored with the model
    (``reference``: the typical lead, :func:`input_example` of the test window)."""

    ds = cfg.dataset
    return {
        "leadml_model_kind": result.kind,
        "model_name": cfg.registry.model_name,  # kept by a folder export (its version: below)
        "id_column": ds.id_column,
        "time_column": ds.time_column,
        "time_format": ds.time_format,
        "horizon_days": ds.horizon_days,
        "numeric": list(ds.columns.numeric),
        "categorical": list(ds.columns.categorical),
        "text": list(ds.columns.text),
        "missing_values": list(ds.missing_values),
        "decimal": ds.csv.decimal,
        "thousands": ds.csv.thousands,
        # Percentiles 0..100 of the newest window's probabilities: share-based grades.
        # A typical recent lead (median numbers, commonest values): per-lead reasons say
        # how each field moves a lead's probability away from this one's.
        "reference_lead": {k: (v.item() if hasattr(v, "item") else v)
                           for k, v in reference.iloc[0].items()},
        # What the model saw of each number: scoring rejects values far outside it.
        "numeric_ranges": {k: list(v) for k, v in result.numeric_ranges.items()},
        "reference_quantiles": [float(q) for q in
                                np.quantile(result.p_test, np.linspace(0, 1, 101))],
        # Each field in the newest window, its probabilities and the share of its values
        # training never saw: what leadml monitor compares tonight's leads with.
        "field_reference": field_reference(result.X_test, ds.columns.numeric,
                                           ds.columns.categorical, ds.missing_values),
        "score_reference": numeric_reference(result.p_test),
        "unseen_reference": unseen_shares(result.X_test, known_categories(result.model),
                                          ds.missing_values),
    }


def model_signature(columns, features: pd.DataFrame):
    """Numbers of any type (a lead file read as text gives strings, read by pandas gives
    floats or whole numbers; the model reads all of them) and the rest as strings, all
    optional (CRM fields are often empty), so that MLflow's own serving takes a lead file
    as exported. The output is the probability that the lead converts."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    inputs = [ColSpec(AnyType(), c, required=False) for c in columns.numeric]
    inputs += [ColSpec("string", c, required=False) for c in (*columns.categorical,
                                                               *columns.text)]
    return ModelSignature(inputs=Schema(inputs),
                          outputs=Schema([ColSpec("double", "conversion_probability")]))


@dataclass(frozen=True)
class Registered:
    run_id: str
    name: str
    version: str
    uri: str
    tracking_uri: str
    promoted: bool
    decision: str
    experiment_id: str = ""

    def page(self, ui: str = "http://127.0.0.1:5000") -> str:
        """The run's page in the MLflow UI at ``ui``, opened on model training (MLflow 3's
        UI otherwise opens on GenAI traces)."""
        return store.run_page(ui, self.experiment_id, self.run_id)


@contextmanager
def training_run(cfg, facts: dict[str, Any]):
    """The MLflow run of one training, opened before the fitting so that its duration is
    the training's (it read 9.7 s for a 60 s training when it opened after). Tagged with
    this host and process at once, so a training killed while fitting is closed as FAILED
    by the next job; a training that fails ends its run FAILED. Yields the run."""
    import mlflow

    uri = store.tracking_uri(cfg.registry.tracking_uri)
    client = store.client(uri)
    experiment_id = store.experiment_id(client, cfg.registry.experiment, uri)
    store.close_abandoned_runs(client, experiment_id)
    name = (f"train {cfg.registry.model_name} on {Path(str(facts['path'])).name} "
            f"({facts['rows']:,} leads)")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        # (MLflow tags the git commit itself, mlflow.source.git.commit, when leadml runs
        # from a repository; the version says which release otherwise)
        mlflow.set_tags({"leadml.stage": "train", "leadml.host": socket.gethostname(),
                         "leadml.pid": str(os.getpid()), "leadml.version": __version__})
        yield run


def log_training(result, cfg, facts: dict[str, Any], *, force_promote: bool = False,
                 rules=None, dataset: pd.DataFrame | None = None) -> Registered:
    """Log a training whole into its run (opened by :func:`training_run`, or here when
    none is), register its model, then (the run finished) decide champion or challenger.
    An alias never points at a version whose run did not finish. ``rules``: the team's
    BANT rules, for the report's grade cut-offs (default: shipped). ``dataset``: the
    history's features and outcome, logged as an MLflow dataset (its source, digest,
    schema and counts; never its rows)."""
    import mlflow

    opened = mlflow.active_run()
    if opened is not None:
        raise RuntimeError("log_training ends the run it logs into: call it after the "
                           "training_run block (use log_into_run inside it)")
    with training_run(cfg, facts) as run:
        version = log_into_run(result, cfg, facts, rules=rules, dataset=dataset)
    return promote_training(run, result, cfg, version, force_promote=force_promote)


def log_into_run(result, cfg, facts: dict[str, Any], *, rules=None,
                 dataset: pd.DataFrame | None = None) -> str:
    """Everything a training logs, into the active run, and its model registered;
    returns the version (not yet champion or challenger: :func:`promote_training`, once the
    run has finished)."""
    import mlflow

    uri = store.tracking_uri(cfg.registry.tracking_uri)
    client = store.client(uri)
    experiment_id = mlflow.active_run().info.experiment_id
    name = cfg.registry.model_name
    features = list(cfg.dataset.columns.features)
    example = input_example(result.X_test[features], cfg.dataset.columns.numeric)
    signature = model_signature(cfg.dataset.columns, result.X_test)
    mlflow.set_tag("mlflow.runName", f"train {name}: {result.kind.replace('_', ' ')} on "
                   f"{Path(str(facts['path'])).name} ({facts['rows']:,} leads)")
    with tempfile.TemporaryDirectory() as tmp:
        _log_inputs(result, cfg, facts, dataset)
        checkpoint("train_logging")
        _log_evaluation(result, cfg, experiment_id, Path(tmp) / "plots")
        version = _log_model(result, cfg, facts, client, example=example, signature=signature)
        checkpoint("train_registered")
        _log_sales_ops(result, cfg, facts, name=name, version=version, folder=Path(tmp) / "ops",
                       rules=rules, reliability=Path(tmp) / "plots" / "reliability.png",
                       reference=example)
    return version


def promote_training(run, result, cfg, version: str, *, force_promote: bool = False
                     ) -> Registered:
    """Champion or challenger for a training whose run has finished."""
    uri = store.tracking_uri(cfg.registry.tracking_uri)
    client = store.client(uri)
    name = cfg.registry.model_name
    run_id = run.info.run_id  # the run is FINISHED: only now may an alias point at it
    decision = _promote(client, uri, run_id, name, version, result, cfg, force_promote)
    return Registered(run_id=run_id, name=name, version=version,
                      uri=f"models:/{name}/{version}", tracking_uri=uri,
                      promoted=decision.promote, decision=decision.message,
                      experiment_id=run.info.experiment_id)


def _log_inputs(result, cfg, facts: dict[str, Any], dataset: pd.DataFrame | None) -> None:
    """The run's tags, config, audit, dataset and parameters."""
    import mlflow

    mlflow.set_tags({"leadml.train_window_end": result.windows["train"].last_time,
                     "leadml.test_window_start": result.windows["test"].first_time})
    mlflow.log_dict(cfg.model_dump(mode="json"), "config/train_config.json")
    if cfg.source:
        mlflow.log_artifact(str(cfg.source), "config")
    if result.audit is not None:
        mlflow.log_dict(result.audit.to_dict(), "audit/audit.json")
    if dataset is not None:
        _log_dataset(dataset, facts, target=cfg.dataset.target.column
                     if cfg.dataset.target else "converted")
    mlflow.log_params({
        **settings_params(cfg),
        **{f"classifier_{k}": v for k, v in classifier_settings(result.model).items()},
        **{f"drift_{k}": v for k, v in result.drift.items()},
        "model_kind": result.kind,
        "fitted_leads": result.fitted_leads,
        "calibration_method": result.calibration_method,
        "config_sha256": cfg.sha256,
        "seed": cfg.model.seed,
        **{f"split_{k}": v for k, v in cfg.split.model_dump().items()},
        **{f"data_{k}": v for k, v in facts.items()},
        **{f"{n}_window": f"{w.first_time} .. {w.last_time} ({w.rows} leads, "
           f"{w.conversions} conversions)" for n, w in result.windows.items()},
    })


def _log_evaluation(result, cfg, experiment_id: str, plots: Path) -> None:
    """Test-window metrics and intervals, candidates, the leaderboard, the calibration
    choice, timings, the calibration and band tables and the plots."""
    import mlflow

    metrics = {  # one call: against a tracking server, each call is a request
        **{f"test_{k}": v for k, v in result.test_metrics.items()},
        **{f"test_uncalibrated_{k}": v for k, v in result.uncalibrated_test_metrics.items()},
        **{f"test_{k}_ci_low": lo for k, (lo, _) in result.intervals.items()},
        **{f"test_{k}_ci_high": hi for k, (_, hi) in result.intervals.items()},
        **{f"candidate_{kind}_{k}": v for kind, values in result.candidates.items()
           for k, v in values.items()},
        **result.timings}
    _log_leaderboard(result, experiment_id)
    if result.calibration_choice is not None:  # every candidate's backtest numbers
        choice = result.calibration_choice
        mlflow.log_params({"calibration_map": choice["window"],
                           "calibration_drift": choice["drift"]})
        mlflow.log_dict(choice, "evaluation/calibration_choice.json")
        metrics.update({f"calibration_{c['window']}_{c['drift']}_{k}": c[k]
                        for c in choice["candidates"] for k in ("log_loss", "brier", "ece")})
    mlflow.log_metrics(metrics)
    mlflow.log_table(result.calibration, "evaluation/calibration_table.json")
    mlflow.log_table(result.bands, "evaluation/score_bands.json")
    for path in save_plots(result.y_test, result.p_test, plots,
                           bins=cfg.evaluation.calibration_bins, title="(test window)"):
        mlflow.log_artifact(str(path), "plots")


def _log_model(result, cfg, facts: dict[str, Any], client, *, example, signature) -> str:
    """The model card and the model (registered, with its contract); returns its version."""
    import mlflow

    name = cfg.registry.model_name
    card = report.model_card(result, cfg, facts)
    mlflow.log_text(card, "model_card.md")
    mlflow.set_tag("mlflow.note.content", card)  # the run's description in the UI
    info = mlflow.sklearn.log_model(
        served(result.model),  # MLflow's predict: the probability (leadml.model.wrappers)
        name="model",
        serialization_format="skops",
        skops_trusted_types=TRUSTED_TYPES,
        signature=signature,
        input_example=example,
        pip_requirements=store.requirements(),
        code_paths=[str(PACKAGE)],
        registered_model_name=name,
        metadata=contract_metadata(result, cfg, example),
    )
    version = str(info.registered_model_version)
    client.update_model_version(name, version, description=card)
    client.set_model_version_tag(name, version, "train_window_end",
                                 result.windows["train"].last_time)
    return version


def _promote(client, uri: str, run_id: str, name: str, version: str, result, cfg,
             force_promote: bool):
    """Champion or challenger, decided after the run finished; the decision is logged on
    the run."""
    with store.store_lock(uri, "promote"):  # racing trainings promote one after the other
        decision = _decide(client, name, version, result, cfg, force_promote)
        client.set_registered_model_alias(name, CHALLENGER, version)
        checkpoint("train_promoting")
        if decision.promote:
            client.set_registered_model_alias(name, CHAMPION, version)
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0)
                                      for k, v in decision.numbers.items()],
                     tags=[RunTag("leadml.promotion", decision.message)])
    client.log_text(run_id, decision.message, "promotion.txt")
    return decision


def _log_dataset(frame: pd.DataFrame, facts: dict[str, Any], *, target: str) -> None:
    import warnings

    import mlflow
    from mlflow.models import infer_signature

    path = Path(str(facts["path"]))
    name = path.name if path.exists() else str(facts["path"])
    with warnings.catch_warnings():  # MLflow's notes on local sources and integer columns
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            frame, source=str(path.resolve()) if path.exists() else None, targets=target,
            name=name, digest=str(facts["sha256"])[:16])
        # MLflow infers the schema value by value (20 s for 1M leads); the types and whether
        # a column has missing values depend only on which values occur, so the distinct
        # values give the same schema in a fraction of a second.
        dataset.__dict__["schema"] = infer_signature(distinct_rows(frame)).inputs
        mlflow.log_input(dataset, context="training", tags={
            "rows": str(facts["rows"]), "conversions": str(facts["conversions"]),
            "first_time": str(facts["first_time"]), "last_time": str(facts["last_time"])})


def settings_params(cfg) -> dict[str, Any]:
    """Every setting of the config that is not a column list, as ``section.key`` params
    (the columns are in ``config/train_config.json``)."""
    def flat(prefix: str, value) -> dict[str, Any]:
        if isinstance(value, dict):
            return {k: v for key, sub in value.items() for k, v in flat(f"{prefix}.{key}",
                                                                      sub).items()}
        return {prefix: value if value is None or isinstance(value, str | int | float | bool)
                else json.dumps(value)}

    dumped = cfg.model_dump(mode="json")
    dumped["dataset"] = {k: v for k, v in dumped["dataset"].items()
                         if k not in ("columns", "path")}
    return {k: v for k, v in flat("config", dumped).items() if len(str(v)) <= 500}


def classifier_settings(model) -> dict[str, Any]:
    """The chosen classifier's own settings (C, learning rate, leaves...) as fitted."""

    clf = model_parts(model)[0][-1]
    return {k: v for k, v in clf.get_params(deep=False).items()
            if v is None or isinstance(v, str | int | float | bool)}


def _log_leaderboard(result, experiment_id: str) -> None:
    """Each trial of each candidate as a child run of the training run (its settings as
    params, its calibration-window metrics), and the leaderboard table."""
    import mlflow

    if not result.leaderboard:
        return
    mlflow.log_table(pd.DataFrame([{**{k: v for k, v in row.items() if k != "settings"},
                                    "settings": json.dumps(row["settings"])}
                                   for row in result.leaderboard]),
                     "evaluation/leaderboard.json")
    for row in result.leaderboard:
        with mlflow.start_run(experiment_id=experiment_id, nested=True,
                              run_name=f"candidate {row['name'].replace('_', ' ')}"):
            mlflow.set_tags({"leadml.stage": "candidate", "leadml.chosen": str(row["chosen"]),
                             "leadml.rank": str(row["rank"]),
                             # so that a killed training's children are closed too
                             "leadml.host": socket.gethostname(),
                             "leadml.pid": str(os.getpid())})
            mlflow.log_params({"model_kind": row["kind"], **row["settings"]})
            mlflow.log_metrics({k: row[k] for k in row
                                if k.startswith("calibration_window_")}
                               | {"fit_seconds": row["seconds"]})


#: The newest test leads whose fields' shares are logged, for the report's fit and
#: engagement matrix under any rules' axes (a few seconds at most, whatever the history).
SHARES_LEADS = 20_000


def test_shares(result, cfg, reference: pd.DataFrame) -> tuple[pd.DataFrame, Shares]:
    """The newest test leads' outcome and probability, and each field's share of their
    distance from the typical lead, on the decision (``log_odds:FIELD``) and in probability
    (``points:FIELD``), as logged, from the typical lead ``reference``; and the shares
    themselves
    (:meth:`leadml.explain.effects.Explainer.shares`)."""
    features = list(cfg.dataset.columns.features)
    X = result.X_test[features].iloc[-SHARES_LEADS:]
    found = Explainer(result.model, reference.iloc[0].to_dict()).shares(X)
    frame = pd.DataFrame({"y": result.y_test[-SHARES_LEADS:], "p": found.p})
    for f in found.points.columns:
        frame[f"points:{f}"] = found.points[f].to_numpy(dtype="float32")
        if found.log_odds is not None:
            frame[f"log_odds:{f}"] = found.log_odds[f].to_numpy(dtype="float32")
    return frame, found


def _log_sales_ops(result, cfg, facts: dict[str, Any], *, name: str, version: str,
                   folder: Path, reference: pd.DataFrame, rules=None,
                   reliability: Path | None = None) -> None:
    """Importances, field insights, the test window's predictions and the HTML report
    (its reliability chart the one logged with the evaluation, ``reliability``; its
    importance chart the one logged here; ``reference``: the typical lead)."""
    import mlflow

    folder.mkdir(parents=True, exist_ok=True)
    charts = {"reliability": reliability.read_bytes()} if reliability is not None else {}
    if result.importances is not None:
        mlflow.log_table(result.importances, "importance/permutation_importance.json")
        charts["importance"] = report.importance_png(result.importances.to_dict("records"))
        (folder / "permutation_importance.png").write_bytes(charts["importance"])
        mlflow.log_artifact(str(folder / "permutation_importance.png"), "importance")
    if result.insights is not None:
        mlflow.log_table(result.insights, "importance/field_insights.json")
    predictions = folder / "test_predictions.parquet"
    pd.DataFrame({"y": result.y_test, "p": result.p_test}).to_parquet(predictions)
    mlflow.log_artifact(str(predictions), "evaluation")
    shares = folder / "test_shares.parquet"
    logged, found = test_shares(result, cfg, reference)
    logged.to_parquet(shares)
    mlflow.log_artifact(str(shares), "evaluation")
    data = report.report_data(result, cfg, facts, name=name, version=version,
                              importances=result.importances, insights=result.insights)
    mlflow.log_dict(data, "report/report_data.json")
    rules = rules or default_rules()
    mlflow.set_tags({"leadml.report_rules": str(rules.source),
                     "leadml.report_rules_sha256": rules.sha256})
    cutoffs = bant.grade_cutoffs(rules.grades, np.quantile(result.p_test,
                                                           np.linspace(0, 1, 101)))
    table = None
    if rules.axes is not None and set(rules.axes.fields) <= set(found.points.columns):
        table = axes.matrix(axes.columns(found, rules.axes), logged["y"].to_numpy(),
                            logged["p"].to_numpy())
    mlflow.log_text(report.render(data, result.y_test, result.p_test, cutoffs=cutoffs,
                                  meanings=bant.meanings(rules.label_policy),
                                  charts=charts, matrix=table),
                    "report/report.html")


def _decide(client, name: str, version: str, result, cfg,
            force: bool) -> promotion.Decision:
    """Read the current champion and score this run's test window with it; the rule is
    :func:`leadml.registry.promotion.decide`. Only "no such alias" means a first champion: any
    other error stops the job (fails closed), the new version registered, not promoted."""
    ours = result.test_metrics
    numbers = {"challenger_log_loss": ours["log_loss"], "challenger_roc_auc": ours["roc_auc"]}
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except Exception as exc:
        if store.not_found(exc):
            return promotion.first_champion(version, name, numbers)
        raise RegistryUnavailableError(
            f"cannot read the '{CHAMPION}' alias of '{name}' ({type(exc).__name__}: "
            f"{str(exc)[:300]}); version {version} is registered but NOT promoted. Check "
            f"the tracking server, then promote by hand if it is better: leadml train "
            f"--force-promote, or set the alias in the MLflow UI") from None
    p, error = None, None
    if not force:
        try:
            champion = load_model(f"models:/{name}/{current.version}", uri=store.tracking_uri(
                cfg.registry.tracking_uri))
            p = champion.predict_proba(result.X_test)[:, 1]
        except Exception as exc:
            error = str(exc)
    return promotion.decide(
        version, ours, champion_version=str(current.version), y_test=result.y_test,
        p_champion=p, cfg=cfg.promotion, test_first_time=result.windows["test"].first_time,
        champion_train_end=current.tags.get("train_window_end"), force=force,
        champion_error=error)
