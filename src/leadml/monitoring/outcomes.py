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
from leadml.data.tables import file_sha256, is_parquet, read_table, spreadsheet_text
from leadml.data.values import id_text, is_missing, parse_times
from leadml.errors import ConfigError, LeadDataError
from leadml.rules.display import as_machine

logger = logging.getLogger(__name__)

#: The scored file's BANT columns, read back for recalibration's label check.
BANT_COLUMNS = ("bant_budget", "bant_authority", "bant_need", "bant_timeline")
AXIS_COLUMNS = ("fit_grade", "engagement_level")  # when the rules named the axes


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
    return list(dict.fromkeys(p.resolve() for p in found))  # one run, however it was spelt


def period_words(period) -> str:
    """A period's label on a chart, whole: ``week of 2026-04-06``, or a run's date and
    file (``2026-07-01 nightly.csv``)."""
    text = str(period)
    if text.startswith("week of") or " " not in text:
        return text
    when, rest = text.split(" ", 1)
    rest = rest.split(" in ", 1)[0]  # (the folder, when runs share a name: in the table)
    return f"{when[:10]} {rest if len(rest) <= 24 else rest[:23] + chr(8230)}"


def read_scored(paths) -> Scored:
    """Every scored lead of the valid runs behind ``paths``, oldest run first. Runs that
    share an output name and time (two regions each writing ``scored.csv``) are told apart
    by their folder."""
    leads, runs, skipped = [], [], []
    for path in manifests(paths):
        data = json.loads(path.read_text())
        output = output_of(data, path)
        why = _unusable(data, output)
        if why:
            skipped.append(f"{path}: {why}")
            logger.warning("skipping %s: %s", path, why)
            continue
        table = read_table(output)
        frame = table[[*MONITORED_COLUMNS, *(c for c in (*BANT_COLUMNS, *AXIS_COLUMNS)
                                             if c in table)]]
        if not is_parquet(output):  # a CSV in people's words reads back as the contract's
            frame = as_machine(frame, (data.get("rules") or {}).get("output", {}).get("words"))
        ids = frame["lead_id"] if is_parquet(output) else spreadsheet_text(frame["lead_id"])
        frame["conversion_probability"] = pd.to_numeric(frame["conversion_probability"],
                                                        errors="coerce")
        scored_at = pd.Timestamp(data["scored_at"])
        scored_at = scored_at.tz_localize("UTC") if scored_at.tzinfo is None else \
            scored_at.tz_convert("UTC")
        run = f"{data['scored_at']} {output.name}"
        if any(r["run"] == run for r in runs):
            run = f"{run} in {output.parent}"
        model = f"{data['model']['name']} v{data['model']['version']}"
        leads.append(frame.assign(run=run, scored_at=scored_at, model=model,
                                  lead_id=id_text(ids)))
        runs.append({"run": run, "scored_at": scored_at, "model": model,
                     "model_name": data["model"]["name"],
                     "model_version": str(data["model"]["version"]),
                     "horizon_days": data["model"].get("horizon_days"),
                     "scored": data["scored"], "manifest": str(path),
                     "unseen": data.get("unseen_category_values") or {},
                     "warnings": data.get("warnings") or [],
                     "rules": data.get("rules") or {},
                     "input": data.get("input") or {}})
    if not leads:
        raise LeadDataError("none of the scoring runs can be used:\n" + "\n".join(skipped))
    order = pd.DataFrame(runs).sort_values("scored_at", kind="stable")
    rank = {run: i for i, run in enumerate(order["run"])}
    frame = pd.concat(leads, ignore_index=True)
    frame = frame.iloc[np.argsort(frame["run"].map(rank).to_numpy(), kind="stable")]
    return Scored(frame.reset_index(drop=True), order.reset_index(drop=True), skipped)


def output_of(data: dict, manifest: Path) -> Path:
    """A run's output: where its manifest says, else beside the manifest (a runs folder
    moved or archived whole)."""
    out = Path(data.get("output") or "")
    beside = manifest.parent / out.name
    if not out.exists() and out.name and beside.exists():
        return beside
    return out


def _unusable(data: dict, out: Path) -> str | None:
    if data.get("status") != "ok":
        return f"status {data.get('status')!r}: its output is not valid"
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


#: Flag values that mean "not converted" unless the user says otherwise (an empty flag is
#: one too).
NEGATIVE_VALUES = ("0", "false", "no", "n", "f", "0.0")
POSITIVE_VALUES = ("1", "true", "yes", "y", "t", "1.0")


def read_outcomes(path, *, id_column: str = "lead_id", converted_at: str | None = None,
                  converted: str | None = None, positive_values=POSITIVE_VALUES,
                  negative_values=NEGATIVE_VALUES, time_format: str = "iso",
                  delimiter: str = ",", missing_values=MISSING_VALUES) -> pd.DataFrame:
    """``lead_id`` and ``converted_at`` (UTC, NaT when not converted) or ``converted``
    (0/1), from a CRM export or an outcomes table. A lead listed twice, a stated time that
    does not read, a flag that is neither a positive nor a negative value, or a table with
    no rows stops the job: a lead is never counted lost by mistake. Ids are read as
    :func:`~leadml.data.values.id_text` reads them (``1001.0`` from a float column is 1001).
    """

    if (converted_at is None) == (converted is None):
        raise ConfigError("say how the outcomes table records a conversion: "
                          "--converted-at-column (a time) or --converted-column (a flag), "
                          "one of them")
    raw = read_table(path, delimiter=delimiter)
    for col in (id_column, converted_at or converted):
        if col not in raw.columns:
            raise LeadDataError(f"'{path}' has no column '{col}'; it has {list(raw.columns)}")
    if len(raw) == 0:
        raise LeadDataError(f"'{path}' has a header but no outcome rows: export the outcomes "
                            "of the scored leads (every lead, converted or not)")
    ids = id_text(raw[id_column])
    if (ids == "").any():
        logger.warning("'%s': %d row(s) without a lead id, left out", path, int((ids == "").sum()))
        raw, ids = raw[ids != ""], ids[ids != ""]
    dup = ids[ids.duplicated()]
    if len(dup):
        raise LeadDataError(f"'{path}' lists {dup.nunique()} lead id(s) more than once, e.g. "
                            f"{dup.head(3).tolist()}: keep one outcome per lead")
    out = pd.DataFrame({"lead_id": ids.to_numpy()})
    if converted_at is not None:
        values = raw[converted_at]
        stated = ~is_missing(values, tuple(missing_values))
        times = parse_times(values.where(stated, None), time_format)
        bad = stated & times.isna()
        if bad.any():
            raise LeadDataError(f"'{path}': {int(bad.sum())} value(s) of '{converted_at}' are "
                                f"not times in format {time_format!r}, e.g. "
                                f"{values[bad].head(3).tolist()}; pass --time-format")
        out["converted_at"] = times.reset_index(drop=True)
    else:
        flags = raw[converted].astype("object").where(raw[converted].notna(), "") \
            .astype(str).str.strip().str.lower()
        yes = flags.isin([v.lower() for v in positive_values])
        no = flags.isin([v.lower() for v in negative_values]) | \
            is_missing(raw[converted], tuple(missing_values))
        odd = ~yes & ~no
        if odd.any():
            seen = flags[odd].value_counts()
            raise LeadDataError(
                f"'{path}': {int(odd.sum())} value(s) of '{converted}' mean neither converted "
                f"({', '.join(positive_values)}) nor not converted "
                f"({', '.join(negative_values)}, or empty), e.g. "
                f"{dict(seen.head(5))}: say which mean converted with --positive-value "
                "and which do not with --negative-value (repeat each)")
        out["converted"] = yes.to_numpy().astype(int)
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
