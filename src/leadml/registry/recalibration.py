"""A recalibrated champion registered as a challenger, with its lineage.

``leadml recalibrate`` (:func:`leadml.jobs.recalibrate`) refits only the rate shift of the
champion on recently matured leads; this module registers the result as a new version of
the same model: the parent's metadata (columns, reference lead, ranges), its reference
probabilities and test-window predictions moved by the same shift (so grades by share,
the report and the plan stay consistent), tags naming the parent and the leads used, and the
``challenger`` alias; ``champion`` only when the gate (:mod:`leadml.registry.promotion`) passes on
the held-out newest leads.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadml.model.saved_paths import TRUSTED_TYPES
from leadml.model.wrappers import served
from leadml.registry import store
from leadml.registry.models import CHALLENGER, CHAMPION, model_version, recorded_auc


def register_recalibrated(model, *, parent_uri: str, lineage: dict[str, Any], shift,
                          promote: bool, decision: str, numbers: dict[str, float]) -> dict:
    """Log and register ``model`` (a :class:`~leadml.model.wrappers.RateShifted`) as a new version
    of the parent's model; returns name, version, uri and whether it became champion."""
    import mlflow
    import yaml

    uri = store.tracking_uri()
    client = store.client(uri)
    parent = model_version(parent_uri, uri=uri)
    name = parent["name"]
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=parent_uri))
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    meta = dict(mlmodel.get("metadata") or {})
    meta["reference_quantiles"] = [float(q) for q in
                                   shift(np.asarray(meta.get("reference_quantiles", [])))]
    if meta.get("score_reference"):  # the shift keeps the order: the same leads per bin
        meta["score_reference"] = {**meta["score_reference"], "edges": [
            float(e) for e in shift(np.asarray(meta["score_reference"]["edges"], float))]}
    meta["recalibrated_from"] = f"{name} v{parent['version']}"
    parent_run = client.get_run(parent["run_id"]) if parent.get("run_id") else None
    experiment = parent_run.info.experiment_id if parent_run else \
        store.experiment_id(client, "leadml", uri)
    store.close_abandoned_runs(client, experiment)
    parent_auc = recorded_auc(parent_uri, uri=uri)
    with mlflow.start_run(experiment_id=experiment,
                          run_name=f"recalibrate {name} v{parent['version']}") as run, \
            tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mlflow.set_tags({"leadml.stage": "recalibrate",
                         "leadml.host": socket.gethostname(), "leadml.pid": str(os.getpid()),
                         "leadml.parent_version": parent["version"],
                         "leadml.parent_run_id": parent.get("run_id", ""),
                         "leadml.promotion": decision})
        mlflow.log_params({k: v for k, v in lineage.items() if not isinstance(v, list | dict)})
        mlflow.log_dict(lineage, "recalibration/lineage.json")
        mlflow.log_metrics({k: v for k, v in numbers.items() if np.isfinite(v)})
        if parent_auc is not None:  # what the next recalibration's gate compares with
            mlflow.log_metric("parent_test_roc_auc", parent_auc)
        if parent_run is not None:  # the report and plan of the parent, shifted
            _carry_reports(client, parent["run_id"], tmp, shift)
        signature = mlflow.models.Model.load(str(local / "MLmodel")).signature
        info = mlflow.sklearn.log_model(
            served(model), name="model", serialization_format="skops",
            skops_trusted_types=TRUSTED_TYPES, signature=signature,
            pip_requirements=store.requirements(), metadata=meta)
        # Registered with its lineage in one call: no version ever lacks it.
        registered = mlflow.register_model(info.model_uri, name, tags={
            "parent_version": parent["version"],
            "recalibrated_on_leads": str(lineage.get("leads_fitted"))})
    version = str(registered.version)
    client.update_model_version(name, version, description=(
        f"Recalibrated from version {parent['version']}: {decision}"))
    with store.store_lock(uri, "promote"):
        promote, decision = _still_ahead(client, name, parent["version"], promote, decision)
        client.set_registered_model_alias(name, CHALLENGER, version)
        if promote:
            client.set_registered_model_alias(name, CHAMPION, version)
    client.set_tag(run.info.run_id, "leadml.promotion", decision)
    return {"name": name, "version": version, "uri": f"models:/{name}/{version}",
            "run_id": run.info.run_id, "promoted": promote, "decision": decision}


def _still_ahead(client, name: str, parent: str, promote: bool, decision: str
                 ) -> tuple[bool, str]:
    """The decision taken again against the champion read under the lock: a version
    promoted while this ran (a training) was never compared with, so it stays champion."""
    if not promote:
        return promote, decision
    try:
        current = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except Exception as exc:
        if store.not_found(exc):
            return promote, decision
        raise
    if current != parent:
        return False, (f"version (recalibrated) not promoted: version {current} became "
                       f"champion while it ran (it was compared with version {parent} "
                       "only); run leadml recalibrate again")
    return promote, decision


def _carry_reports(client, run_id: str, tmp: Path, shift) -> None:
    import mlflow

    try:
        report = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="report"))
        predictions = Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="evaluation/test_predictions.parquet"))
    except Exception:  # a parent trained before reports existed: nothing to carry
        return
    data = json.loads((report / "report_data.json").read_text())
    frame = pd.read_parquet(predictions)
    frame["p"] = shift(frame["p"].to_numpy())
    (tmp / "evaluation").mkdir()
    frame.to_parquet(tmp / "evaluation" / "test_predictions.parquet")
    mlflow.log_artifact(str(tmp / "evaluation" / "test_predictions.parquet"), "evaluation")
    data["model"]["recalibrated"] = True
    mlflow.log_dict(data, "report/report_data.json")
