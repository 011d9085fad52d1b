"""Shared fixtures: seeded generated leads, configs written to a temporary folder, and a
SQLite MLflow store per test, so no test touches ~/.leadml or a team's server. Helpers that
tests import are in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadml.setup.synthetic import make_sample
from tests.helpers import write_config


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADML_HOME", str(tmp_path / "leadml_home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory) -> Path:
    """8,000 generated leads and a 600-lead nightly file, written once per session."""
    folder = tmp_path_factory.mktemp("sample")
    history, nightly = make_sample(8_000, seed=7, nightly_rows=600)
    history.to_csv(folder / "leads.csv", index=False)
    nightly.to_csv(folder / "nightly.csv", index=False)
    return folder


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, sample_files) -> str:
    """A tracking store holding one trained champion ``leadml`` v1, trained once."""
    from leadml.config import load_config
    from leadml.jobs import train as train_job

    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("LEADML_HOME", str(folder))
        train_job(load_config(write_config(folder, sample_files / "leads.csv")))
    return uri


@pytest.fixture
def champion(trained_store, monkeypatch) -> str:
    """Point this test at the trained store; returns its tracking URI."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store)
    return trained_store
