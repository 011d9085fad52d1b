"""MLflow behind one adapter: the only package that imports mlflow.

- :mod:`~leadml.registry.store`: where runs go (``MLFLOW_TRACKING_URI``, the config, else
  ``~/.leadml/mlflow.db``), locks among leadml processes, abandoned runs;
- :mod:`~leadml.registry.training`: what a training run logs, registration, champion or
  challenger (the rule itself is :mod:`leadml.registry.promotion`);
- :mod:`~leadml.registry.models`: loading registered models with leadml's allow-list;
- :mod:`~leadml.registry.runs`: scoring, backtest and monitoring runs;
- :mod:`~leadml.registry.recalibration`: a recalibrated champion as a new version.
"""

from importlib import import_module

#: Where each public name lives. Lazy, as for :mod:`leadml.jobs`: importing
#: :mod:`leadml.registry.store` (the tracking check) must not load MLflow, pandas and
#: scikit-learn, so a server that does not answer is named within its timeout.
_HOME = {
    "ModelUnavailableError": "leadml.errors", "RegistryUnavailableError": "leadml.errors",
    "TrackingServerDownError": "leadml.errors", "TRUSTED_TYPES": "leadml.model.saved_paths",
    **dict.fromkeys(["CHALLENGER", "CHAMPION", "axes_in_points", "export_model", "load_model",
                     "load_scoring_model", "logged_test_shares", "model_version", "recorded_auc",
                     "report_inputs",
                     "resolve_model_uri"], "leadml.registry.models"),
    **dict.fromkeys(["log_backtest", "log_monitoring", "log_scoring"],
                    "leadml.registry.runs"),
    **dict.fromkeys(["check_reachable", "leadml_home", "store_lock", "tracking_uri"],
                    "leadml.registry.store"),
    **dict.fromkeys(["Registered", "contract_metadata", "input_example", "log_into_run",
                     "log_training", "model_signature", "promote_training", "training_run"],
                    "leadml.registry.training"),
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(_HOME[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
