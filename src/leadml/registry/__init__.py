"""MLflow behind one adapter: the only package that imports mlflow.

- :mod:`~leadml.registry.store`: where runs go (``MLFLOW_TRACKING_URI``, the config, else
  ``~/.leadml/mlflow.db``), locks among leadml processes, abandoned runs;
- :mod:`~leadml.registry.training`: what a training run logs, registration, champion or
  challenger (the rule itself is :mod:`leadml.registry.promotion`);
- :mod:`~leadml.registry.models`: loading registered models with leadml's allow-list;
- :mod:`~leadml.registry.runs`: scoring, backtest and monitoring runs;
- :mod:`~leadml.registry.recalibration`: a recalibrated champion as a new version.
"""

from leadml.errors import ModelUnavailableError, RegistryUnavailableError, TrackingServerDownError
from leadml.model.saved_paths import TRUSTED_TYPES
from leadml.registry.models import (
    CHALLENGER,
    CHAMPION,
    export_model,
    load_model,
    load_scoring_model,
    model_version,
    recorded_auc,
    report_inputs,
    resolve_model_uri,
)
from leadml.registry.runs import log_backtest, log_monitoring, log_scoring
from leadml.registry.store import check_reachable, leadml_home, store_lock, tracking_uri
from leadml.registry.training import (
    Registered,
    contract_metadata,
    input_example,
    log_training,
    model_signature,
)

__all__ = [
    "CHALLENGER", "CHAMPION", "TRUSTED_TYPES", "ModelUnavailableError", "Registered",
    "RegistryUnavailableError", "TrackingServerDownError", "check_reachable",
    "contract_metadata", "export_model", "input_example", "leadml_home",
    "load_model", "load_scoring_model", "log_backtest", "log_monitoring", "log_scoring",
    "log_training",
    "model_signature", "model_version", "recorded_auc", "report_inputs", "resolve_model_uri",
    "store_lock",
    "tracking_uri",
]
