"""Shared fixtures: seeded generated leads, configs written to a temporary folder, and a
SQLite MLflow store per test, so no test touches ~/.leadml or a team's server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from leadml.synthetic import make_sample

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLE_CONFIG = REPO / "pipelines" / "configs" / "sample.yaml"


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


def write_config(folder: Path, data_path: Path, **sections) -> Path:
    """The sample config pointed at ``data_path``, with sections replaced or merged."""
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["dataset"]["path"] = str(data_path)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    raw.setdefault("evaluation", {})["bootstrap"] = 20
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking"]


def images_in_chromium(html: str, folder: Path) -> tuple[int, int, str]:
    """(images decoded, images on the page, the DOM) of ``html`` in headless Chromium: a
    copy with a check appended (every image decoded, naturalWidth > 0)."""
    probe = folder / "probe.html"
    probe.write_text(html.replace("</body>", (
        "<script>window.onload=()=>{const i=[...document.images];document.title="
        "'IMAGES '+i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length};"
        "</script></body>")), encoding="utf-8")
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, "--virtual-time-budget=5000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    found = re.search(r"<title>IMAGES (\d+)/(\d+)</title>", dom)
    return (int(found.group(1)), int(found.group(2)), dom) if found else (0, -1, dom)


def screenshot(page: Path, shot: Path, size: str = "1100,2400") -> Path:
    subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--screenshot={shot}", f"--window-size={size}",
                    page.as_uri()], capture_output=True, timeout=120)
    return shot
