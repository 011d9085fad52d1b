"""Registered models: names and aliases, loading with leadml's allow-list, the data a
model's training run logged for reports.

Models are saved with skops, never pickle, and loaded with the allow-list
:data:`leadml.model.saved_paths.TRUSTED_TYPES` written in code, not the list stored inside the
model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from leadml.data.schema import Contract
from leadml.data.tables import file_sha256
from leadml.errors import ConfigError, ModelUnavailableError, OutputError
from leadml.explain.effects import Explainer, Shares
from leadml.model.saved_paths import TRUSTED_TYPES
from leadml.model.sklearn_compat import check_trees
from leadml.registry.store import client, tracking_uri
from leadml.rules import axes

CHAMPION, CHALLENGER = "champion", "challenger"


def logged_test_shares(model_uri: str, *, uri: str | None = None) -> pd.DataFrame | None:
    """The newest test leads' fields' shares logged with a model's training run
    (:func:`leadml.registry.training.test_shares`); None for a run from before they were."""
    import mlflow

    run_id = model_version(model_uri, uri=uri).get("run_id")
    if not run_id:
        return None
    try:
        path = Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="evaluation/test_shares.parquet"))
    except Exception:  # (an older run: the report says how to get the matrix)
        return None
    return pd.read_parquet(path)


def axes_in_points(rules, fitted, contract):
    """``rules`` with their fit and engagement cut-offs in points for this model: share
    cut-offs (``axes.method: share``) are cut on the shares its training run logged for its
    test window (:func:`leadml.rules.axes.share_points`); points are kept as they are."""
    if rules.axes is None or rules.axes.method == "points":
        return rules
    logged = None
    if contract.uri.startswith("models:/") and contract.reference_lead is not None:
        logged = logged_test_shares(contract.uri)
    if logged is None or not set(rules.axes.fields) <= {
            c.split(":", 1)[1] for c in logged.columns if c.startswith("points:")}:
        raise ConfigError(
            f"the rules file '{rules.source}' cuts the fit and engagement axes by shares "
            f"(axes.method: share), but model {contract.name} v{contract.version} has no "
            "test-window shares to cut them on (a model folder, or trained before leadml "
            "logged them): score a registered model trained by this version, or give the "
            "cut-offs in points (axes.method: points)")
    shares = Shares.logged(logged, Explainer(fitted, contract.reference_lead))
    return rules.model_copy(update={"axes": axes.share_points(rules.axes, shares)})


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
    try:
        mlmodel = yaml.safe_load((local / "MLmodel").read_text())
        meta = (mlmodel or {}).get("metadata") or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError) as exc:
        raise ModelUnavailableError(
            f"model '{model_uri}': its MLmodel file cannot be read ({type(exc).__name__}); "
            "train, register or export it again") from None
    if "numeric" not in meta:
        raise ModelUnavailableError(f"model '{model_uri}' was not trained by leadml (its "
                                    "metadata names no columns); retrain it with leadml train")
    version = model_version(model_uri, uri=uri) if model_uri.startswith("models:/") else \
        folder_version(local, meta)
    return model, Contract(
        name=version["name"], version=version["version"], uri=model_uri,
        id_column=meta["id_column"], time_column=meta.get("time_column"),
        time_format=meta.get("time_format", "iso"),
        horizon_days=meta.get("horizon_days"), decimal=meta.get("decimal", "."),
        thousands=meta.get("thousands"),
        numeric=tuple(meta["numeric"]), categorical=tuple(meta["categorical"]),
        text=tuple(meta["text"]), missing_values=tuple(meta["missing_values"]),
        reference_quantiles=tuple(meta.get("reference_quantiles", ())),
        reference_lead=meta.get("reference_lead"),
        field_reference=meta.get("field_reference"),
        score_reference=meta.get("score_reference"),
        unseen_reference=meta.get("unseen_reference"),
        numeric_ranges={k: tuple(v) for k, v in (meta.get("numeric_ranges") or {}).items()},
    )


PROVENANCE = "leadml_provenance.json"


def folder_version(folder: Path, meta: dict) -> dict[str, str]:
    """Name and version of a model folder outside the registry: as ``leadml export``
    recorded them, or as MLflow did when it downloaded a ``models:/`` URI
    (``registered_model_meta``), else the registered name and the training run."""

    import yaml

    written = folder / PROVENANCE
    run_id = str((yaml.safe_load((folder / "MLmodel").read_text()) or {}).get("run_id") or "")
    if written.exists():
        facts = _provenance(folder)
        version = str(facts["version"])
        if not facts.get("sha256"):  # exported by leadml 0.1: nothing to check it against
            version += " (unverified)"
        return {"name": str(facts["name"]), "version": version,
                "run_id": facts.get("run_id", run_id)}
    if (folder / "registered_model_meta").exists():
        facts = yaml.safe_load((folder / "registered_model_meta").read_text()) or {}
        if facts.get("model_name") and facts.get("model_version") is not None:
            return {"name": str(facts["model_name"]), "version": str(facts["model_version"]),
                    "run_id": run_id}
    return {"name": meta.get("model_name") or folder.name,
            "version": f"unknown (run {run_id[:8]})" if run_id else "unknown",
            "run_id": run_id}


#: The files of an exported folder whose sha256 its provenance records.
CHECKED_FILES = ("model.skops", "MLmodel")


def _provenance(folder: Path) -> dict:
    """An exported folder's provenance, checked against the files it describes: the name
    and version it states are believed only if the model is the one exported."""
    import json


    where = folder / PROVENANCE
    try:
        facts = json.loads(where.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelUnavailableError(f"'{where}' cannot be read ({exc}): export the model "
                                    "again with leadml export") from None
    if not isinstance(facts, dict) or not facts.get("name") or facts.get("version") is None:
        raise ModelUnavailableError(f"'{where}' does not name the model and its version: "
                                    "export the model again with leadml export")
    recorded = facts.get("sha256") or {}
    if not isinstance(recorded, dict):
        raise ModelUnavailableError(f"'{where}': its sha256 entry is not a table of files")
    for name, digest in recorded.items():
        path = folder / name
        if name not in CHECKED_FILES or not path.is_file() or file_sha256(path) != digest:
            raise ModelUnavailableError(
                f"'{folder}': {name} is not the file that was exported as "
                f"{facts['name']} v{facts['version']} (its sha256 differs from the one "
                f"{PROVENANCE} records): the folder was changed since leadml export; export "
                "the model again")
    return facts


def export_model(model_uri: str, folder: Path, *, uri: str | None = None) -> dict[str, str]:
    """Copy a registered model to ``folder`` (which must not exist or be empty) with a
    provenance file, so that files scored with the copy still name its version. The copy
    appears whole or not at all."""
    import json
    import shutil
    import tempfile
    from datetime import UTC, datetime

    import mlflow


    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise OutputError(f"'{folder}' exists and is not empty: export into a new folder")
    version = model_version(model_uri, uri=uri) if model_uri.startswith("models:/") else None
    if version is None:
        raise ModelUnavailableError(f"'{model_uri}' is not a registry URI: export takes "
                                    "models:/<name>@<alias> or models:/<name>/<version>")
    _load(model_uri, uri)  # a leadml model, loadable with the allow-list
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(staging))
        facts = {**version, "source": model_uri, "tracking_uri": uri or tracking_uri(),
                 "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "sha256": {name: file_sha256(staging / name) for name in CHECKED_FILES
                            if (staging / name).is_file()}}
        (staging / PROVENANCE).write_text(json.dumps(facts, indent=2) + "\n")
        if folder.exists():
            folder.rmdir()
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return facts


def _load(model_uri: str, uri: str | None):
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    if Path(model_uri).is_dir():  # an exported folder: read in place, no tracking store
        local = Path(model_uri)
        if (local / PROVENANCE).exists():
            _provenance(local)  # its files are the ones exported, before any is read
    else:
        import mlflow

        client(uri or tracking_uri())
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
        except Exception as exc:
            raise ModelUnavailableError(
                f"cannot find model '{model_uri}' in {uri or tracking_uri()}: {exc}. "
                + registered_models_hint(uri)) from None
    path = local / "model.skops"
    if not path.exists():
        raise ModelUnavailableError(f"'{model_uri}' is not a leadml model: no model.skops in it")
    try:
        model = skops.io.load(path, trusted=TRUSTED_TYPES)
    except UntrustedTypesFoundException:
        untrusted = set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
        raise ModelUnavailableError(f"model '{model_uri}' holds types leadml does not trust: "
                                    f"{sorted(untrusted)}") from None
    except Exception as exc:  # not a skops file: truncated, emptied, a pickle, a folder
        raise ModelUnavailableError(
            f"model '{model_uri}': {path.name} cannot be read as a leadml model "
            f"({type(exc).__name__}: {str(exc)[:200]}); train, register or export it "
            "again") from None
    try:
        check_trees(model)
    except ValueError as exc:
        raise ModelUnavailableError(
            f"model '{model_uri}' cannot score: {exc}. Its model.skops is damaged or was not "
            "written by leadml; train again, or register or export the model again") from None
    return model, local


def registered_models(uri: str | None = None) -> dict[str, dict[str, str]]:
    """Each registered model's name and its aliases (alias -> version)."""
    registry = client(uri or tracking_uri())
    return {m.name: {a: str(v) for a, v in sorted((m.aliases or {}).items())}
            for m in registry.search_registered_models()}


def registered_models_hint(uri: str | None = None) -> str:
    """What is registered in the store, and how to pick one: for a model not found."""
    try:
        found = registered_models(uri)
    except Exception:  # the store itself failed: the caller's message says so
        return ("Train one with `leadml train --config ...`, or pass --model with a "
                "registered version.")
    if not found:
        return "Nothing is registered there yet: train a model with `leadml train --config ...`."
    aliased = {name: ", ".join(f"{a} v{v}" for a, v in aliases.items()) or "no alias"
               for name, aliases in found.items()}
    listed = "; ".join(f"'{name}' ({aliases})" for name, aliases in aliased.items())
    return (f"Registered models: {listed}. Pick one with --model-name NAME, with --config "
            "CONFIG (the model its registry.model_name registers), or with --model URI.")


def model_version(model_uri: str, *, uri: str | None = None) -> dict[str, str]:
    """Name and version behind a ``models:/name@alias`` or ``models:/name/version`` URI."""
    registry = client(uri or tracking_uri())
    spec = model_uri.removeprefix("models:/")
    if not model_uri.startswith("models:/"):
        return {"name": model_uri, "version": "local"}
    if "@" in spec:
        name, alias = spec.split("@", 1)
        mv = registry.get_model_version_by_alias(name, alias)
    else:
        name, version = spec.split("/", 1)
        mv = registry.get_model_version(name, version)
    return {"name": name, "version": str(mv.version), "run_id": mv.run_id or ""}


def recorded_auc(model_uri: str, *, uri: str | None = None) -> float | None:
    """The test ROC AUC a registered version was measured at: its training run's, or for
    a recalibrated version the one it carried from its parent. None when unknown."""
    try:
        version = model_version(model_uri, uri=uri)
        if not version.get("run_id"):
            return None
        metrics = client(uri or tracking_uri()).get_run(version["run_id"]).data.metrics
    except Exception:  # an older store or a deleted run: the gate goes without it
        return None
    found = metrics.get("test_roc_auc", metrics.get("parent_test_roc_auc"))
    return float(found) if found is not None else None
