"""Where MLflow runs go, and safe access to the store.

Tracking goes to ``MLFLOW_TRACKING_URI`` when set, else to the config's
``registry.tracking_uri``, else to a SQLite store in the leadml home (``$LEADML_HOME``,
default ``~/.leadml``): ``~/.leadml/mlflow.db`` with artifacts in ``~/.leadml/mlartifacts``,
whatever the current directory is.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from leadml.errors import TrackingServerDownError

logger = logging.getLogger(__name__)


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


_ANSWERED: set[str] = set()


def check_reachable(uri: str) -> None:
    """Fail within ``LEADML_TRACKING_TIMEOUT`` seconds (default 10) when an HTTP tracking
    server does not answer: one HTTP request to its health page, so a server that accepts
    connections and never replies is found as fast as one that refuses them. Any HTTP
    answer (even an error page) counts as alive. MLflow's own retries are bounded for the
    rest of the run (``MLFLOW_HTTP_REQUEST_*`` set by the user win)."""
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")) or uri in _ANSWERED:
        return
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    wait = float(os.environ.get("LEADML_TRACKING_TIMEOUT", "10"))
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=wait) as answer:
            answer.read(64)
    except urllib.error.HTTPError:
        pass  # it answered (a proxy's 404, a 401 without credentials): alive
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise TrackingServerDownError(
            f"the MLflow tracking server {uri} does not answer ({reason}; waited up to "
            f"{wait:g} s): is it running, and is MLFLOW_TRACKING_URI (or "
            "registry.tracking_uri) right? Nothing was changed. LEADML_TRACKING_TIMEOUT sets "
            "the wait.") from None
    _ANSWERED.add(uri)


def client(uri: str):
    import mlflow
    from mlflow import MlflowClient

    check_reachable(uri)
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


def not_found(exc: Exception) -> bool:
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


#: Tells the MLflow UI these experiments hold model runs, so it opens on the runs table and
#: not on the GenAI traces page.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def run_page(ui: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the MLflow UI served at ``ui``, in its model-training view.

    >>> run_page("https://mlflow.example.com/", "3", "abc")
    'https://mlflow.example.com/#/experiments/3/runs/abc?workflowType=machine_learning'
    """
    return (f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
            "?workflowType=machine_learning")


def experiment_id(client, name: str, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.tags.get("mlflow.experimentKind") is None:  # made before leadml set it
            client.set_experiment_tag(found.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
        return found.experiment_id
    artifacts = None
    if uri.startswith("sqlite:///"):
        # Beside the database, never in whatever folder the job happens to run from.
        db = Path(uri.removeprefix("sqlite:///"))
        artifacts = (db.parent / "mlartifacts").resolve().as_uri()
        db.parent.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=artifacts, tags=EXPERIMENT_KIND)


def requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in
            ("scikit-learn", "skops", "pandas", "numpy", "scipy", "pyarrow")]
