"""Helpers that tests import: the repository's paths, a config written for a test, and
headless Chromium for the pages' checks. (Fixtures live in conftest.py.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLE_CONFIG = REPO / "pipelines" / "configs" / "sample.yaml"
RULES = REPO / "pipelines" / "configs" / "bant.yaml"
PINNED = "2026-07-01T06:00:00Z"


def score(path: Path, out: Path, *extra: str):
    """``leadml score`` of ``path`` into ``out`` with the shipped rules (later ``--rules``
    win) and a pinned time: the CLI's result and the manifest, or None without one."""
    import json

    from typer.testing import CliRunner

    from leadml.cli import app

    result = CliRunner().invoke(app, ["score", str(path), "--output", str(out), "--rules",
                                      str(RULES), "--scored-at", PINNED, *extra])
    manifest = out.with_name(out.stem + ".manifest.json")
    return result, json.loads(manifest.read_text()) if manifest.exists() else None


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
