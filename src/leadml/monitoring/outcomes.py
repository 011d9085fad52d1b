"""Reading what was scored and what happened: past scored files (through their manifests)
and an outcomes table, for ``leadml monitor`` and ``leadml recalibrate``.

A scored file counts only when its manifest says ``status: ok`` and the file still has the
``output_sha256`` the manifest recorded (the loader's rule of :mod:`leadml.scoring.run`); every
other manifest is skipped with the reason, never read half.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config import MISSING_VALUES
from leadml.data.schema import MONITORED_COLUMNS
from leadml.data.tables import file_sha256, read_table
from leadml.data.values import is_missing, parse_times
from leadml.errors import ConfigError, LeadDataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    leads: pd.DataFrame  # one row per scored lead: run, scored_at, model, MONITORED_COLUMNS
    runs: pd.DataFrame  # one row per run: run, scored_at, model, scored, unseen, manifest
    skipped: list[str]  # manifests not used, with why


def manifests(paths) -> list[Path]:
    """The manifests behind ``paths``: manifest files, scored files (their manifest), or
    folders (every ``*.manifest.json`` in them)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(path.glob("*.manifest.json"))
        elif path.name.endswith(".manifest.json"):
            found.append(path)
        else:
            found.append(path.with_suffix("").with_name(path.stem + ".manifest.json"))
    missing = [str(p) for p in found if not p.is_file()]
    if missing:
        raise LeadDataError(f"no scoring manifest at {missing}: pass files written by leadml "
                            "score (with their .manifest.json), or folders holding them")
    if not found:
        raise LeadDataError(f"no scoring manifests (*.manifest.json) in {list(map(str, paths))}")
    return list(dict.fromkeys(found))


def read_scored(paths) -> Scored:
    """Every scored lead of the valid runs behind ``paths``, oldest run first."""
    leads, runs, skipped = [], [], []
    for path in manifests(paths):
        data = json.loads(path.read_text())
        why = _unusable(data)
        if why:
            skipped.append(f"{path}: {why}")
            logger.warning("skipping %s: %s", path, why)
            continue
        frame = read_table(Path(data["output"]))[MONITORED_COLUMNS]
        frame["conversion_probability"] = pd.to_numeric(frame["conversion_probability"],
                                                        errors="coerce")
        scored_at = pd.Timestamp(data["scored_at"])
        scored_at = scored_at.tz_localize("UTC") if scored_at.tzinfo is None else \
            scored_at.tz_convert("UTC")
        run = f"{data['scored_at']} {Path(data['output']).name}"
        model = f"{data['model']['name']} v{data['model']['version']}"
        leads.append(frame.assign(run=run, scored_at=scored_at, model=model,
                                  lead_id=frame["lead_id"].astype(str)))
        runs.append({"run": run, "scored_at": scored_at, "model": model,
                     "model_name": data["model"]["name"],
                     "model_version": str(data["model"]["version"]),
                     "horizon_days": data["model"].get("horizon_days"),
                     "scored": data["scored"], "manifest": str(path),
                     "unseen": data.get("unseen_category_values") or {},
                     "warnings": data.get("warnings") or [],
                     "input": data.get("input") or {}})
    if not leads:
        raise LeadDataError("none of the scoring runs can be used:\n" + "\n".join(skipped))
    order = pd.DataFrame(runs).sort_values("scored_at", kind="stable")
    frame = pd.concat(leads, ignore_index=True)
    frame["run"] = pd.Categorical(frame["run"], categories=order["run"], ordered=True)
    frame = frame.sort_values(["run"], kind="stable").reset_index(drop=True)
    frame["run"] = frame["run"].astype(str)
    return Scored(frame, order.reset_index(drop=True), skipped)


def _unusable(data: dict) -> str | None:
    if data.get("status") != "ok":
        return f"status {data.get('status')!r}: its output is not valid"
    out = Path(data.get("output") or "")
    if "://" in str(data.get("output")):
        return f"its output {data['output']} is on cluster storage: copy it here first"
    if not out.exists():  # a file, or a folder of Parquet parts (Spark)
        return f"its output {out} is gone"
    if data.get("output_sha256") and out.is_file() and \
            file_sha256(out) != data["output_sha256"]:
        return f"its output {out} changed since it was written (sha256 differs)"
    if data.get("model", {}).get("version") in (None, "none"):
        return "scored by the rules alone: no probability to monitor"
    return None


def read_outcomes(path, *, id_column: str = "lead_id", converted_at: str | None = None,
                  converted: str | None = None, positive_values=("1", "true", "yes"),
                  time_format: str = "iso", delimiter: str = ",",
                  missing_values=MISSING_VALUES) -> pd.DataFrame:
    """``lead_id`` and ``converted_at`` (UTC, NaT when not converted) or ``converted``
    (0/1), from a CRM export or an outcomes table. A lead listed twice, or a stated time
    that does not read, stops the job: a lead is never counted lost by mistake."""

    if (converted_at is None) == (converted is None):
        raise ConfigError("say how the outcomes table records a conversion: "
                          "--converted-at-column (a time) or --converted-column (a flag), "
                          "one of them")
    raw = read_table(path, delimiter=delimiter)
    for col in (id_column, converted_at or converted):
        if col not in raw.columns:
            raise LeadDataError(f"'{path}' has no column '{col}'; it has {list(raw.columns)}")
    ids = raw[id_column].astype(str).str.strip()
    dup = ids[ids.duplicated()]
    if len(dup):
        raise LeadDataError(f"'{path}' lists {dup.nunique()} lead id(s) more than once, e.g. "
                            f"{dup.head(3).tolist()}: keep one outcome per lead")
    out = pd.DataFrame({"lead_id": ids})
    if converted_at is not None:
        values = raw[converted_at]
        stated = ~is_missing(values, tuple(missing_values))
        times = parse_times(values.where(stated, None), time_format)
        bad = stated & times.isna()
        if bad.any():
            raise LeadDataError(f"'{path}': {int(bad.sum())} value(s) of '{converted_at}' are "
                                f"not times in format {time_format!r}, e.g. "
                                f"{values[bad].head(3).tolist()}; pass --time-format")
        out["converted_at"] = times
    else:
        flags = raw[converted].astype(str).str.strip().str.lower()
        out["converted"] = np.isin(flags, [v.lower() for v in positive_values]).astype(int)
    return out


def read_input(facts: dict) -> pd.DataFrame | None:
    """The lead file a run scored, as read then, if it is still there unchanged (its
    sha256 as the manifest recorded it); None otherwise (input drift is then not shown)."""
    path = Path(facts.get("path") or "")
    if not path.is_file() or not facts.get("sha256") or file_sha256(path) != facts["sha256"]:
        return None
    try:
        return read_table(path, delimiter=facts.get("delimiter") or ",",
                             encoding=facts.get("encoding") or "utf-8")
    except LeadDataError:
        return None
