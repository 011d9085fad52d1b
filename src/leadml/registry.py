"""Everything MLflow: where runs go, what a training run logs, registration, aliases, loading.

The only module that imports mlflow. Tracking goes to ``MLFLOW_TRACKING_URI`` when set,
else to the config's ``registry.tracking_uri``, else to a SQLite store in the leadml home
(``$LEADML_HOME``, default ``~/.leadml``): ``~/.leadml/mlflow.db`` with artifacts in
``~/.leadml/mlartifacts``, whatever the current directory is.

Models are saved with skops, never pickle, and loaded with the allow-list
:data:`TRUSTED_TYPES` written here, not the list stored inside the model.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadml import promotion, report
from leadml.batch import checkpoint
from leadml.schema import Contract

logger = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"

#: Types beyond skops' defaults that a leadml model holds. A model with any other type
#: is refused at load time (see tests/test_registry.py, which checks this list is complete).
TRUSTED_TYPES = [
    "functools.partial",
    "leadml.drift.RateShifted",
    "leadml.features.LeadCleaner",
    "leadml.features._SignedLog",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


class ModelUnavailableError(RuntimeError):
    """The requested model cannot be found or loaded."""


class RegistryUnavailableError(ModelUnavailableError):
    """The tracking store or registry answered with an error other than "not found"."""


def leadml_home() -> Path:
    return Path(os.environ.get("LEADML_HOME", Path.home() / ".leadml")).expanduser().resolve()


def tracking_uri(configured: str | None = None) -> str:
    """``MLFLOW_TRACKING_URI``, else the config's value, else the SQLite store in the home."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured
    if uri:
        return uri
    return f"sqlite:///{leadml_home() / 'mlflow.db'}"


@contextmanager
def store_lock(uri: str, purpose: str = "store"):
    """An exclusive lock among leadml processes on this machine for one tracking store:
    beside a SQLite database, else in the leadml home (a shared server serialises only
    the jobs of one machine this way)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        path = db.parent / f".{db.name}.{purpose}.lock"
    else:
        path = leadml_home() / f"{purpose}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _client(uri: str):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    # A new SQLite store creates its tables when first opened; two processes doing that at
    # once fail ("duplicate column name"). One creates them, the others wait.
    with store_lock(uri, "create"):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    return client


def _not_found(exc: Exception) -> bool:
    """MLflow's answer for an alias or model that does not exist (and nothing else)."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.error_code in (
        "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") and "not found" in str(exc)


def close_abandoned_runs(client, experiment_id: str) -> list[str]:
    """Mark FAILED the runs this machine started whose process is gone (a killed
    ``leadml train``), so they do not show as RUNNING forever. Runs of other machines
    are left alone: their processes cannot be seen from here."""
    from mlflow.entities import RunStatus

    host, closed = socket.gethostname(), []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'",
                                  max_results=200):
        tags = run.data.tags
        if tags.get("leadml.host") != host or not tags.get("leadml.pid", "").isdigit():
            continue
        if _alive(int(tags["leadml.pid"])):
            continue
        client.set_tag(run.info.run_id, "leadml.note", "its process ended before the run "
                       "finished (killed?); marked FAILED by the next leadml job")
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
        closed.append(run.info.run_id)
    if closed:
        logger.warning("marked %d abandoned run(s) FAILED: %s", len(closed), closed)
    return closed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def _experiment_id(client, name: str, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifacts = None
    if uri.startswith("sqlite:///"):
        # Beside the database, never in whatever folder the job happens to run from.
        db = Path(uri.removeprefix("sqlite:///"))
        artifacts = (db.parent / "mlartifacts").resolve().as_uri()
        db.parent.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=artifacts)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in
            ("scikit-learn", "skops", "pandas", "numpy", "scipy", "pyarrow")]


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


def contract_metadata(result, cfg) -> dict[str, Any]:
    """What scoring needs to know about the data a model expects, stored with the model."""
    ds = cfg.dataset
    return {
        "leadml_model_kind": result.kind,
        "id_column": ds.id_column,
        "time_column": ds.time_column,
        "numeric": list(ds.columns.numeric),
        "categorical": list(ds.columns.categorical),
        "text": list(ds.columns.text),
        "missing_values": list(ds.missing_values),
        # Percentiles 0..100 of the newest window's probabilities: share-based grades.
        # A typical recent lead (median numbers, commonest values): per-lead reasons say
        # how each field moves a lead's probability away from this one's.
        "reference_lead": {k: (v.item() if hasattr(v, "item") else v) for k, v in
                           input_example(result.X_test[list(ds.columns.features)],
                                         ds.columns.numeric).iloc[0].items()},
        # What the model saw of each number: scoring rejects values far outside it.
        "numeric_ranges": {k: list(v) for k, v in result.numeric_ranges.items()},
        "reference_quantiles": [round(float(q), 6) for q in
                                np.quantile(result.p_test, np.linspace(0, 1, 101))],
    }


def model_signature(columns, features: pd.DataFrame):
    """Whole-number columns that are never missing as longs, other numbers as doubles, the
    rest as strings, all optional (CRM fields are often empty), so that MLflow's own
    serving reads a lead file as pandas does. The output is the pyfunc's predicted class."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    def kind(col: str) -> str:
        x = pd.to_numeric(features[col], errors="coerce")
        return "long" if x.notna().all() and (x == x.round()).all() else "double"

    inputs = [ColSpec(kind(c), c, required=False) for c in columns.numeric]
    inputs += [ColSpec("string", c, required=False) for c in (*columns.categorical,
                                                               *columns.text)]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("long")]))


@dataclass(frozen=True)
class Registered:
    run_id: str
    name: str
    version: str
    uri: str
    tracking_uri: str
    promoted: bool
    decision: str


def log_training(result, cfg, facts: dict[str, Any], *,
                 force_promote: bool = False) -> Registered:
    """Log a training run whole, register its model, then (the run finished) decide
    champion or challenger. An alias never points at a version whose run did not finish."""
    import mlflow

    from leadml.evaluate import save_plots

    uri = tracking_uri(cfg.registry.tracking_uri)
    client = _client(uri)
    experiment_id = _experiment_id(client, cfg.registry.experiment, uri)
    close_abandoned_runs(client, experiment_id)
    name = cfg.registry.model_name
    features = list(cfg.dataset.columns.features)
    example = input_example(result.X_test[features], cfg.dataset.columns.numeric)
    signature = model_signature(cfg.dataset.columns, result.X_test)
    with mlflow.start_run(experiment_id=experiment_id) as run, \
            tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mlflow.set_tags({"leadml.stage": "train", "leadml.host": socket.gethostname(),
                         "leadml.pid": str(os.getpid()), "leadml.train_window_end":
                         result.windows["train"].last_time,
                         "leadml.test_window_start": result.windows["test"].first_time})
        mlflow.log_dict(cfg.model_dump(mode="json"), "config/train_config.json")
        if cfg.source:
            mlflow.log_artifact(str(cfg.source), "config")
        if result.audit is not None:
            mlflow.log_dict(result.audit.to_dict(), "audit/audit.json")
        mlflow.log_params({
            **{f"drift_{k}": v for k, v in result.drift.items()},
            "model_kind": result.kind,
            "calibration_method": result.calibration_method,
            "config_sha256": cfg.sha256,
            "seed": cfg.model.seed,
            **{f"split_{k}": v for k, v in cfg.split.model_dump().items()},
            **{f"data_{k}": v for k, v in facts.items()},
            **{f"{n}_window": f"{w.first_time} .. {w.last_time} ({w.rows} leads, "
               f"{w.conversions} conversions)" for n, w in result.windows.items()},
        })
        checkpoint("train_logging")
        mlflow.log_metrics({f"test_{k}": v for k, v in result.test_metrics.items()})
        mlflow.log_metrics({f"test_uncalibrated_{k}": v
                            for k, v in result.uncalibrated_test_metrics.items()})
        mlflow.log_metrics({f"test_{k}_ci_low": lo for k, (lo, _) in result.intervals.items()})
        mlflow.log_metrics({f"test_{k}_ci_high": hi for k, (_, hi) in result.intervals.items()})
        for kind, values in result.candidates.items():
            mlflow.log_metrics({f"candidate_{kind}_{k}": v for k, v in values.items()})
        mlflow.log_metrics(result.timings)
        mlflow.log_table(result.calibration, "evaluation/calibration_table.json")
        mlflow.log_table(result.bands, "evaluation/score_bands.json")
        for path in save_plots(result.y_test, result.p_test, tmp / "plots",
                               bins=cfg.evaluation.calibration_bins, title="(test window)"):
            mlflow.log_artifact(str(path), "plots")
        card = report.model_card(result, cfg, facts)
        mlflow.log_text(card, "model_card.md")
        import leadml

        info = mlflow.sklearn.log_model(
            result.model,
            name="model",
            serialization_format="skops",
            skops_trusted_types=TRUSTED_TYPES,
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            code_paths=[str(Path(leadml.__file__).parent)],
            registered_model_name=name,
            metadata=contract_metadata(result, cfg),
        )
        version = str(info.registered_model_version)
        client.update_model_version(name, version, description=card)
        client.set_model_version_tag(name, version, "train_window_end",
                                     result.windows["train"].last_time)
        checkpoint("train_registered")
        _log_sales_ops(result, cfg, facts, name=name, version=version, folder=tmp / "ops")
    run_id = run.info.run_id  # the run is FINISHED: only now may an alias point at it
    with store_lock(uri, "promote"):  # racing trainings promote one after the other
        decision = _decide(client, name, version, result, cfg, force_promote)
        client.set_registered_model_alias(name, CHALLENGER, version)
        checkpoint("train_promoting")
        if decision.promote:
            client.set_registered_model_alias(name, CHAMPION, version)
    for key, value in decision.numbers.items():
        client.log_metric(run_id, key, value)
    client.set_tag(run_id, "leadml.promotion", decision.message)
    client.log_text(run_id, decision.message, "promotion.txt")
    return Registered(run_id=run_id, name=name, version=version,
                      uri=f"models:/{name}/{version}", tracking_uri=uri,
                      promoted=decision.promote, decision=decision.message)


def _log_sales_ops(result, cfg, facts: dict[str, Any], *, name: str, version: str,
                   folder: Path) -> None:
    """Importances, field insights, the test window's predictions and the HTML report."""
    import mlflow

    from leadml import bant
    from leadml.config import default_rules
    from leadml.importance import importance_plot

    folder.mkdir(parents=True, exist_ok=True)
    if result.importances is not None:
        mlflow.log_table(result.importances, "importance/permutation_importance.json")
        mlflow.log_artifact(str(importance_plot(result.importances,
                                                folder / "permutation_importance.png")),
                            "importance")
    if result.insights is not None:
        mlflow.log_table(result.insights, "importance/field_insights.json")
    predictions = folder / "test_predictions.parquet"
    pd.DataFrame({"y": result.y_test, "p": result.p_test}).to_parquet(predictions)
    mlflow.log_artifact(str(predictions), "evaluation")
    data = report.report_data(result, cfg, facts, name=name, version=version,
                              importances=result.importances, insights=result.insights)
    mlflow.log_dict(data, "report/report_data.json")
    rules = default_rules()
    cutoffs = bant.grade_cutoffs(rules.grades, np.quantile(result.p_test,
                                                           np.linspace(0, 1, 101)))
    mlflow.log_text(report.render(data, result.y_test, result.p_test, cutoffs=cutoffs),
                    "report/report.html")


def report_inputs(model_uri: str, *, uri: str | None = None
                  ) -> tuple[dict[str, Any], pd.DataFrame]:
    """The report data and test-window predictions logged with a model's training run."""
    import json

    import mlflow

    version = model_version(model_uri, uri=uri)
    run_id = version.get("run_id")
    if not run_id:
        raise ModelUnavailableError(f"'{model_uri}' has no training run to report on; pass a "
                                    "registered model (models:/name@champion)")
    try:
        folder = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="report"))
        predictions = Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="evaluation/test_predictions.parquet"))
    except Exception as exc:
        raise ModelUnavailableError(f"model '{model_uri}' was trained before reports existed "
                                    f"({exc}); retrain it with leadml train") from None
    return json.loads((folder / "report_data.json").read_text()), pd.read_parquet(predictions)


def _decide(client, name: str, version: str, result, cfg,
            force: bool) -> promotion.Decision:
    """Read the current champion and score this run's test window with it; the rule is
    :func:`leadml.promotion.decide`. Only "no such alias" means a first champion: any
    other error stops the job (fails closed), the new version registered, not promoted."""
    ours = result.test_metrics
    numbers = {"challenger_log_loss": ours["log_loss"], "challenger_roc_auc": ours["roc_auc"]}
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except Exception as exc:
        if _not_found(exc):
            return promotion.first_champion(version, name, numbers)
        raise RegistryUnavailableError(
            f"cannot read the '{CHAMPION}' alias of '{name}' ({type(exc).__name__}: "
            f"{str(exc)[:300]}); version {version} is registered but NOT promoted. Check "
            f"the tracking server, then promote by hand if it is better: leadml train "
            f"--force-promote, or set the alias in the MLflow UI") from None
    p, error = None, None
    if not force:
        try:
            champion = load_model(f"models:/{name}/{current.version}", uri=tracking_uri(
                cfg.registry.tracking_uri))
            p = champion.predict_proba(result.X_test)[:, 1]
        except Exception as exc:
            error = str(exc)
    return promotion.decide(
        version, ours, champion_version=str(current.version), y_test=result.y_test,
        p_champion=p, cfg=cfg.promotion, test_first_time=result.windows["test"].first_time,
        champion_train_end=current.tags.get("train_window_end"), force=force,
        champion_error=error)


def resolve_model_uri(model: str | None, name: str = "leadml") -> str:
    """``models:/<name>@champion`` unless the user named a model URI or path."""
    return model or f"models:/{name}@{CHAMPION}"


def load_model(model_uri: str, *, uri: str | None = None):
    """Load a leadml model (registry URI, run URI or local folder) with our skops allow-list."""
    return _load(model_uri, uri)[0]


def load_scoring_model(model_uri: str, *, uri: str | None = None):
    """The model and its :class:`Contract` (name, version, expected columns)."""
    import yaml

    model, local = _load(model_uri, uri)
    meta = (yaml.safe_load((local / "MLmodel").read_text()) or {}).get("metadata") or {}
    if "numeric" not in meta:
        raise ModelUnavailableError(f"model '{model_uri}' was not trained by leadml (its "
                                    "metadata names no columns); retrain it with leadml train")
    version = model_version(model_uri, uri=uri) if model_uri.startswith("models:/") else \
        {"name": Path(model_uri).name, "version": "local"}
    return model, Contract(
        name=version["name"], version=version["version"], uri=model_uri,
        id_column=meta["id_column"], time_column=meta.get("time_column"),
        numeric=tuple(meta["numeric"]), categorical=tuple(meta["categorical"]),
        text=tuple(meta["text"]), missing_values=tuple(meta["missing_values"]),
        reference_quantiles=tuple(meta.get("reference_quantiles", ())),
        reference_lead=meta.get("reference_lead"),
        numeric_ranges={k: tuple(v) for k, v in (meta.get("numeric_ranges") or {}).items()},
    )


def _load(model_uri: str, uri: str | None):
    import mlflow
    import skops.io

    _client(uri or tracking_uri())
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    except Exception as exc:
        raise ModelUnavailableError(
            f"cannot find model '{model_uri}' in {uri or tracking_uri()}: {exc}. Train one with "
            "`leadml train --config ...`, or pass --model with a registered version."
        ) from None
    path = local / "model.skops"
    if not path.exists():
        raise ModelUnavailableError(f"'{model_uri}' is not a leadml model: no model.skops in it")
    untrusted = set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
    if untrusted:
        raise ModelUnavailableError(
            f"model '{model_uri}' holds types leadml does not trust: {sorted(untrusted)}"
        )
    return skops.io.load(path, trusted=TRUSTED_TYPES), local


def model_version(model_uri: str, *, uri: str | None = None) -> dict[str, str]:
    """Name and version behind a ``models:/name@alias`` or ``models:/name/version`` URI."""
    client = _client(uri or tracking_uri())
    spec = model_uri.removeprefix("models:/")
    if not model_uri.startswith("models:/"):
        return {"name": model_uri, "version": "local"}
    if "@" in spec:
        name, alias = spec.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
    else:
        name, version = spec.split("/", 1)
        mv = client.get_model_version(name, version)
    return {"name": name, "version": str(mv.version), "run_id": mv.run_id or ""}


def log_scoring(manifest: dict[str, Any], *, experiment: str = "leadml-scoring",
                configured_uri: str | None = None) -> str:
    """Record a scoring run (counts, label and grade mix, model version) as an MLflow run."""
    import mlflow

    uri = tracking_uri(configured_uri)
    client = _client(uri)
    experiment_id = _experiment_id(client, experiment, uri)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tags({"leadml.stage": "score", "leadml.status": manifest["status"]})
        mlflow.log_params({
            "model_name": manifest["model"]["name"],
            "model_version": manifest["model"]["version"],
            "rules_sha256": manifest["rules"]["sha256"],
            "input_sha256": manifest["input"]["sha256"],
            "input_path": manifest["input"]["path"],
            "scored_at": manifest["scored_at"],
        })
        mlflow.log_metrics({
            "rows": manifest["input"]["rows"], "scored": manifest["scored"],
            "rejected": manifest["rejected"], "reject_rate": manifest["reject_rate"],
            **{f"label_{k}": v for k, v in manifest["labels"].items()},
            **{f"grade_{k}": v for k, v in manifest["grades"].items()},
            **{f"seconds_{k}": v for k, v in manifest["timings"].items()},
        })
        mlflow.log_dict(manifest, "manifest.json")
        return run.info.run_id


def log_backtest(bt, cfg, files: list[Path], *, start: float, window: float,
                 end: float = 1.0) -> str:
    """Record a backtest as an MLflow run: pooled metrics per drift method, per-window
    metrics as steps, the tables and the plot. Returns the run id."""
    import mlflow

    uri = tracking_uri(cfg.registry.tracking_uri)
    client = _client(uri)
    experiment_id = _experiment_id(client, cfg.registry.experiment, uri)
    with mlflow.start_run(experiment_id=experiment_id, run_name="backtest") as run:
        mlflow.set_tags({"leadml.stage": "backtest"})
        mlflow.log_params({"backtest_start": start, "backtest_window": window,
                           "backtest_end": end,
                           "drift_method": bt.configured, "config_sha256": cfg.sha256})
        if cfg.source:
            mlflow.log_artifact(str(cfg.source), "config")
        for row in bt.pooled.to_dict(orient="records"):
            mlflow.log_metrics({f"pooled_{row['method']}_{k}": float(v) for k, v in row.items()
                                if k not in ("method", "leads")})
        for row in bt.windows.to_dict(orient="records"):
            mlflow.log_metrics({f"window_{row['method']}_{k}": float(row[k])
                                for k in ("roc_auc", "log_loss", "brier", "ece",
                                          "positive_rate", "mean_probability")},
                               step=int(row["window"]))
        for path in files:
            mlflow.log_artifact(str(path), "backtest")
        return run.info.run_id
