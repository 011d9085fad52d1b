"""One scoring run, whatever the engine: its paths, its time, its checks and its commit.

The local engine (:mod:`leadml.scoring.chunks`) and the Spark engine
(:mod:`leadml.scoring.spark`) differ only in how they read, score and write rows;
everything around that is here, once.

The commit protocol (``docs/reliability.md``), for ``OUT`` and its side files:

1. **Arguments**: the input exists; ``OUT`` is not a folder (local engine); ``OUT``, the
   rejects, the write-back file and the manifest are different files, none of them the input (links
   followed). A failure here changes nothing.
2. **Lock**: ``.OUT.lock`` beside ``OUT`` is held for the whole run, so two runs writing one
   ``OUT`` take turns; temporaries left beside ``OUT`` by killed runs are removed.
3. **Header**: checked against the model and rules. A failure here changes nothing.
4. **Begin**: the manifest is written with status ``running``; yesterday's ``OUT`` and
   rejects are removed, so a failed run can never leave them under tonight's manifest.
5. **Stream**: rows go to temporaries ``.NAME.<random>.tmp`` beside their targets.
6. **Commit**: rejects, then the write-back file (when asked for), then ``OUT``, are renamed
   into place (each fsynced first); the manifest, with status ``ok``, is written last.

A failure after step 4 (bad data mid-file, too many rejects, a full disk, SIGTERM) removes
the temporaries and writes the manifest with status ``failed: ...`` and no ``OUT`` (the
rejects stay when there were too many of them). A SIGKILL after step 4 leaves status
``running``. So: **``OUT`` is tonight's output exactly when the manifest's status is ``ok``**
(and its ``output.sha256`` matches).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config import Rules
from leadml.data.schema import RECORD_ID, Contract, probability_meaning
from leadml.data.tables import write_json
from leadml.errors import ConfigError, OutputError, TooManyRejects
from leadml.monitoring.statistics import reference_missing_share
from leadml.process import checkpoint
from leadml.rules import bant

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPaths:
    """A run's files: local paths, or URI strings for the Spark engine on cluster storage."""

    input: str | Path
    output: Path | str
    rejects: Path | str
    manifest: Path | str
    writeback: Path | None = None  # the CRM's import file (leadml.scoring.writeback)

    @property
    def side_files(self) -> tuple:
        """The files a run replaces besides ``OUT`` (the manifest aside)."""
        return (self.rejects, *([self.writeback] if self.writeback else []))


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def run_paths(input_path, output, rejects=None, *, rejects_suffix: str = ".rejects.csv",
              output_is_folder: bool = False, writeback: str | None = None) -> RunPaths:
    """Side files beside ``output``, checked so that no file of the run overwrites another.

    Raises :class:`~leadml.config.ConfigError` (exit 2) before anything is touched.
    """
    if is_uri(output):
        return _uri_paths(input_path, str(output), rejects, rejects_suffix)
    output = Path(output)
    stem = output.with_suffix("")
    paths = RunPaths(input=input_path, output=output,
                     rejects=Path(rejects) if rejects else Path(f"{stem}{rejects_suffix}"),
                     manifest=Path(f"{stem}.manifest.json"),
                     writeback=Path(f"{stem}.{writeback}.csv") if writeback else None)
    if output.is_dir() and not output_is_folder:
        raise ConfigError(f"--output '{output}' is a folder: name the file to write, e.g. "
                          f"{output / 'scored.csv'}")
    roles = {"--output": paths.output, "the rejects file (--rejects)": paths.rejects,
             "the manifest": paths.manifest,
             **({"the write-back file": paths.writeback} if writeback else {})}
    local_input = Path(input_path) if not is_uri(input_path) else None
    for role, path in roles.items():
        if local_input is not None and _same(path, local_input):
            raise ConfigError(f"{role} '{path}' is the input file: it would overwrite the "
                              "leads being scored; choose another --output or --rejects")
        for other, second in roles.items():
            if other != role and _same(path, second):
                raise ConfigError(f"{role} and {other} are the same file '{path}'; choose "
                                  "another --rejects or --output")
        folder_ok = output_is_folder and path != paths.manifest  # Spark writes folders
        if path.is_dir() and not folder_ok:
            raise ConfigError(f"{role} '{path}' is a folder: move it or choose another name")
    return paths


def _uri_paths(input_path, output: str, rejects, rejects_suffix: str) -> RunPaths:
    """Side files of an output URI (``hdfs://``, ``s3a://``, ``file://``, ...), named as
    for paths; the store is asked about folders when the run starts."""
    output = output.rstrip("/")
    name = output.rsplit("/", 1)[-1]
    stem = output[: len(output) - len(name)] + (name.rsplit(".", 1)[0] if "." in name
                                                 else name)
    paths = RunPaths(input=str(input_path), output=output,
                     rejects=str(rejects).rstrip("/") if rejects else stem + rejects_suffix,
                     manifest=stem + ".manifest.json")
    roles = {"--output": paths.output, "the rejects file (--rejects)": paths.rejects,
             "the manifest": paths.manifest, "the input": str(input_path).rstrip("/")}
    if len(set(roles.values())) < len(roles):
        raise ConfigError(f"the input, --output, the rejects file and the manifest must be "
                          f"four different locations, got {roles}; choose another --output "
                          "or --rejects")
    return paths


def is_uri(path) -> bool:
    """``scheme://...`` or ``dbfs:/...``: a location for Spark, not a local path."""
    text = str(path)
    return "://" in text or text.startswith("dbfs:/")


#: How far past the scoring time a lead's creation may read when the time is the clock's:
#: the clocks and time zones of CRM exports differ.
FUTURE_TOLERANCE = pd.Timedelta(days=1)


@dataclass(frozen=True)
class ScoringTime:
    """When a run scores (UTC), and whether ``--scored-at`` pinned it. A pinned time is a
    statement about the export (a scheduler's data interval, a backfill): a lead created
    after it did not exist when it was scored, so none may read later. The clock's own time
    allows :data:`FUTURE_TOLERANCE`."""

    text: str
    stamp: pd.Timestamp
    pinned: bool

    @property
    def latest_created(self) -> pd.Timestamp:
        return self.stamp if self.pinned else self.stamp + FUTURE_TOLERANCE

    def too_late(self, column: str) -> str:
        """A reject reason's template (``{}``: the lead's value) for a time after it."""
        if self.pinned:
            return (f"{column} '{{}}' is after --scored-at {self.text}: the lead did not "
                    "exist when it was scored")
        return column + " '{}' is in the future"

    def hint(self, column: str | None, reasons: Counter) -> str:
        """What to fix when most rejects are leads created after a pinned time."""
        if not self.pinned or column is None or not reasons or \
                reasons.most_common(1)[0][0] != column:
            return ""
        return (f" Most were created after --scored-at {self.text}: the scoring time must "
                "come after the leads it scores (a scheduler passes its data interval's end); "
                "fix --scored-at or drop it to use the clock.")


def scored_at_time(pinned: str | None) -> tuple[str, ScoringTime]:
    """The run's ``scored_at`` text and its time (now, unless pinned)."""
    text = pinned or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stamp = pd.Timestamp(text)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return text, ScoringTime(text, stamp, pinned is not None)


def with_record_ids(contract: Contract) -> Contract:
    """The contract a run uses: a model trained without ids takes the record number as id."""
    return replace(contract, id_column=RECORD_ID) if contract.id_column is None else contract


def grade_cutoffs(model, rules: Rules, contract: Contract) -> tuple[float, float, float]:
    if model is None:
        return (np.nan, np.nan, np.nan)
    return bant.grade_cutoffs(rules.grades, np.asarray(contract.reference_quantiles))


def reject_rate(rows: int, rejected: int, footer: int = 0) -> float:
    """Rejected leads over leads: a report footer's lines (rejects, but not leads) count in
    neither."""
    leads = rows - footer
    return (rejected - footer) / leads if leads else 0.0


def reject_status(rows: int, rejected: int, max_rate: float, footer: int = 0) -> str:
    rate = reject_rate(rows, rejected, footer)
    return "ok" if rate <= max_rate else "failed: too many rejects"


def too_many_rejects(rejected: int, rows: int, max_rate: float, rejects_path,
                     reasons: Counter, footer: int = 0, hint: str = "") -> TooManyRejects:
    rejected, rows = rejected - footer, rows - footer
    return TooManyRejects(
        f"{rejected} of {rows} rows ({rejected / rows:.1%}) were rejected, above "
        f"--max-reject-rate {max_rate:.1%}; no output was written. See {rejects_path} for "
        f"each row's reason (top: {dict(reasons.most_common(3))}).{hint}")


def check_accounted(rows: int, scored: int, rejected: int) -> None:
    if scored + rejected != rows:
        raise RuntimeError(f"{rows} rows read but {scored} scored and {rejected} rejected: "
                           "refusing to write output (a bug: please report it)")


def reject_kinds(reasons: pd.Series) -> list[str]:
    """The kind of each reject reason, for the manifest ('duplicate lead id', ...)."""
    return [r.split(":")[0].split(" '")[0] for r in reasons]


EMPTY_SHARE = 0.98  # a field missing for this share of a run's leads or more is "empty"...
FILLED_SHARE = 0.5  # ...a warning when at most this share missed it in training
EMPTY_MIN_LEADS = 20


def empty_fields(missing: Counter, scored: int, contract: Contract) -> list[str]:
    """Warnings for the model's fields empty in a run's leads although filled in training:
    an export that dropped or renamed a field (its header kept, or a column left blank)
    scores every lead as if none stated it, silently."""
    if scored < EMPTY_MIN_LEADS:
        return []

    reference = contract.field_reference or {}
    out = []
    for col in contract.features:
        share = missing.get(col, 0) / scored
        before = reference_missing_share(reference[col]) if col in reference else None
        if share >= (EMPTY_SHARE if before is not None else 1.0) and \
                (before is None or before <= FILLED_SHARE):
            known = f"{before:.0%} in the model's newest training leads" if before is not None \
                else "a field the model uses"
            out.append(f"'{col}' is empty for {share:.0%} of the {scored:,} leads scored "
                       f"({known}): the export may have dropped or renamed the field, and "
                       "these leads are scored as if none stated it; check the export's "
                       "columns")
    return out


def build_manifest(*, status: str, paths: RunPaths, sha256: str | None, rows_in: int,
                   lines: int | None, scored: int, rejected: int, settings, counts,
                   has_model: bool, contract: Contract, rules: Rules, cutoffs,
                   scored_at: str, field_reasons: bool, timings: dict[str, float],
                   engine: str = "local", output_sha256: str | None = None,
                   checksum: str | None = None, capacity: dict | None = None,
                   footer: list[str] = (), typical: float | None = None) -> dict:
    """The run manifest, the same for every engine; written last, it marks a finished run.
    ``input.rows`` counts records (scored + rejected); a report footer's lines (see
    :data:`leadml.data.tables.FOOTER_LINES`) are rejects named in ``input.footer``, left out of the
    reject rate; ``input.line_breaks`` is counted from the bytes, for a reader to
    cross-check. ``typical``: the typical lead's probability, from which the reasons' points
    add up to each lead's."""
    rate = reject_rate(rows_in, rejected, len(footer))
    ok = status == "ok"
    return {
        "status": status,
        "engine": engine,
        "input": {"path": location(paths.input), "sha256": sha256, "rows": rows_in,
                  "line_breaks": lines, "delimiter": settings.delimiter,
                  "encoding": settings.encoding, "decimal": contract.decimal,
                  "thousands": contract.thousands,
                  "footer": [line[:200] for line in footer],
                  **({"checksum": checksum} if checksum else {})},
        "output": location(paths.output) if ok else None,
        "output_sha256": output_sha256 if ok else None,
        "rejects": location(paths.rejects),
        "scored": scored, "rejected": rejected, "reject_rate": round(rate, 6),
        "max_reject_rate": settings.max_reject_rate,
        "labels": {k: int(counts["label"].get(k, 0)) for k in bant.LABELS},
        "qualification_rate": round(counts["label"].get("sales_qualified", 0) / scored, 6)
        if scored else None,
        "by_label": by_label(counts, has_model=has_model, value=rules.value is not None),
        "capacity": capacity,
        "grades": {k: int(counts["grade"].get(k, 0)) for k in "ABCD"} if has_model else {},
        "axes": axes_manifest(rules.axes, counts) if rules.axes is not None and has_model
        else None,
        "score_distribution": score_distribution(counts.get("score", {})) if has_model
        else None,
        "reject_reasons": dict(Counter(counts["reject_reason"]).most_common()),
        "unseen_category_values": {k: int(v) for k, v in counts["unseen"].items() if v},
        "missing_values": {k: int(counts["missing"].get(k, 0)) for k in contract.features},
        "warnings": empty_fields(counts["missing"], scored, contract),
        "model": {"name": contract.name, "version": contract.version, "uri": contract.uri,
                  "horizon_days": contract.horizon_days,
                  "probability_means": probability_meaning(contract.horizon_days)
                  if has_model else None},
        "rules": {"path": str(rules.source), "sha256": rules.sha256,
                  "criteria": rules.configured,
                  # said once here, not in every lead's reasons
                  "not_configured": [c for c in bant.CRITERIA if c not in rules.configured],
                  "grade_cutoffs": dict(zip("ABC", cutoffs, strict=True))
                  if has_model else None,
                  # how a scored CSV reads (rules.display.as_machine reads it back)
                  "output": {"carry": list(rules.output.carry), "style": rules.output.style,
                             "words": rules.output.people_words
                             if rules.output.style == "people" else {},
                             "reasons_length": rules.output.reasons_cut}},
        "scored_at": scored_at,
        "field_reasons": field_reasons,
        # the typical lead's probability: each lead's reasons' points add up from it
        "typical_probability": round(typical, 6) if typical is not None else None,
        "timings": {k: round(float(v), 3) for k, v in timings.items()},
    }


SCORE_BANDS = [(lo, min(lo + 9, 99)) for lo in range(1, 100, 10)]


def score_distribution(scores) -> dict:
    """The scores (1 to 99) of a run: leads per band of ten and the 10th, 50th and 90th
    percentile score, for a run's view of its score mix (and drift between runs).

    >>> d = score_distribution({5: 3, 42: 1, 97: 6})
    >>> d["bands"]["1-10"], d["bands"]["91-99"], d["p10"], d["p50"], d["p90"]
    (3, 6, 5, 97, 97)
    """
    counts = {int(k): int(v) for k, v in dict(scores).items() if v}
    total = sum(counts.values())
    bands = {f"{lo}-{hi}": sum(n for s, n in counts.items() if lo <= s <= hi)
             for lo, hi in SCORE_BANDS}
    if not total:
        return {"bands": bands, "p10": None, "p50": None, "p90": None}
    ordered = sorted(counts.items())
    cumulative = np.cumsum([n for _, n in ordered])

    def percentile(q: float) -> int:
        return int(ordered[int(np.searchsorted(cumulative, q * total))][0])

    return {"bands": bands, "p10": percentile(0.1), "p50": percentile(0.5),
            "p90": percentile(0.9)}


def by_label(counts, *, has_model: bool, value: bool) -> dict:
    """Per label: leads, the conversions the model expects among them (the sum of their
    probabilities), their expected conversion rate and, with a value, their expected
    value."""
    out = {}
    for label in bant.LABELS:
        leads = int(counts["label"].get(label, 0))
        row: dict = {"leads": leads}
        if has_model:
            expected = float(counts.get("expected_conversions", {}).get(label, 0.0))
            row["expected_conversions"] = round(expected, 3)
            row["expected_conversion_rate"] = round(expected / leads, 6) if leads else None
        if value:
            row["expected_value"] = round(float(counts.get("expected_value", {})
                                                .get(label, 0.0)), 2)
        out[label] = row
    return out


def location(path) -> str:
    """A URI as given; a path made absolute."""
    return str(path) if is_uri(path) else str(Path(path).resolve())


class LocalStore:
    """Files on this machine's disks: a lock per ``OUT`` (``flock``), fsync before rename,
    ``os.replace`` as the commit. :class:`leadml.scoring.hadoop.HadoopStore` is the same for
    URIs."""

    def lock(self, out: Path):
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            handle = open(out.parent / f".{out.name}.lock", "a")  # noqa: SIM115
        except OSError as exc:
            raise _output_error(exc, out) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another run is writing %s: waiting for it to finish", out)
            fcntl.flock(handle, fcntl.LOCK_EX)
        return handle  # closing it releases the lock

    def leftovers(self, target: Path) -> list[Path]:
        return list(target.parent.glob(f".{target.name}.*.tmp"))

    def temp(self, target: Path) -> Path:
        return target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"

    def remove(self, path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def publish(self, tmp: Path, target: Path) -> None:
        """fsync a finished temporary (file or folder of parts) and rename it onto
        ``target``."""
        files = [tmp] if tmp.is_file() else [p for p in tmp.rglob("*") if p.is_file()]
        for path in files:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~umask)  # outputs are shared like any file
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(tmp, target)

    def write_json(self, data: dict, path: Path) -> None:
        write_json(data, path)


class Run:
    """The commit protocol of one run writing ``paths`` (see the module docstring).

    Use as a context manager; call :meth:`begin` once the header is checked, write rows to
    :meth:`temp` paths, then :meth:`commit`. Leaving the block any other way after
    :meth:`begin` records the failure in the manifest and leaves no ``OUT``. ``store``
    does the file operations: :class:`LocalStore` for paths, a Hadoop store for URIs.
    """

    def __init__(self, paths: RunPaths, *, engine: str, store=None):
        self.paths = paths
        self.engine = engine
        self.store = store or LocalStore()
        self._temps: dict = {}  # target -> temporary
        self._lock = None
        self.begun = False
        self.committed = False

    # -- the lock and leftovers ----------------------------------------------------------
    def __enter__(self) -> Run:
        self._lock = self.store.lock(self.paths.output)
        for target in (self.paths.output, *self.paths.side_files, self.paths.manifest):
            for stale in self.store.leftovers(target):
                logger.info("removing %s, left by a run that was killed", stale)
                self.store.remove(stale)
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            for tmp in self._temps.values():
                self.store.remove(tmp)
            if exc is not None and self.begun and not self.committed:
                try:
                    self._write_manifest({**self._stub, "status": _failure(exc)})
                except OSError as why:  # a full disk may refuse this too
                    logger.error("could not record the failure in %s: %s",
                                 self.paths.manifest, why)
        finally:
            if self._lock is not None:
                self._lock.close()  # releases the lock
        if isinstance(exc, OSError):
            raise _output_error(exc, self.paths.output) from exc

    # -- the steps -----------------------------------------------------------------------
    def begin(self, *, input_path: str) -> None:
        """Mark the run as started and take yesterday's outputs away (step 4)."""
        self._stub = {"status": "running", "engine": self.engine,
                      "input": {"path": input_path}, "output": None,
                      "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "pid": os.getpid()}
        self._write_manifest(self._stub)
        self.begun = True
        checkpoint("begun")
        for old in (self.paths.output, *self.paths.side_files):
            self.store.remove(old)

    def temp(self, target):
        """A temporary path beside ``target``, removed unless committed."""
        if target in self._temps:  # a restart: the earlier attempt's rows go
            self.store.remove(self._temps[target])
        self._temps[target] = self.store.temp(target)
        return self._temps[target]

    def commit(self, manifest: dict, *, output: bool) -> None:
        """Rename rejects, then ``OUT`` (when ``output``), into place; manifest last."""
        checkpoint("before_commit")
        rejects = self._temps.pop(self.paths.rejects, None)
        if rejects is not None:
            self.store.publish(rejects, self.paths.rejects)
        checkpoint("rejects_committed")
        for target in (self.paths.writeback, self.paths.output):
            produced = self._temps.pop(target, None) if target else None
            if output and produced is not None:
                self.store.publish(produced, target)
            elif produced is not None:  # (too many rejects: the scored rows are not published)
                self.store.remove(produced)
        checkpoint("output_committed")
        self.committed = True
        self._write_manifest(manifest)
        checkpoint("manifest_committed")

    def _write_manifest(self, data: dict) -> None:
        self.store.write_json(data, self.paths.manifest)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TooManyRejects):
        return "failed: too many rejects"
    if isinstance(exc, SystemExit | KeyboardInterrupt):
        return "failed: interrupted"
    return f"failed: {type(exc).__name__}: {str(exc)[:300]}"


def _output_error(exc: OSError, target: Path) -> OutputError:
    where = exc.filename or target
    return OutputError(f"cannot write '{where}': {exc.strerror or exc}. Nothing was left at "
                       f"'{target}'; free disk space, fix the folder's permissions, or choose "
                       "another --output")


def axes_manifest(axes, counts) -> dict:
    """The manifest's axes: the fields, the cut-offs in points (and the test-window shares
    they came from, with ``method: share``) and the leads per cell of the 4x4 matrix."""
    fit, engagement = axes.cutoffs()
    return {"fit": axes.fit, "engagement": axes.engagement, "method": axes.method,
            "fit_grades": dict(zip("ABC", fit, strict=True)),
            "engagement_levels": dict(zip("123", engagement, strict=True)),
            **({"shares": {"fit_grades": axes.fit_grades,
                           "engagement_levels": {str(k): v for k, v in
                                                 axes.engagement_levels.items()}}}
               if axes.method == "share" else {}),
            "cells": {c: int(counts.get("cell", {}).get(c, 0)) for c in
                      (f"{g}{e}" for g in "ABCD" for e in "1234")}}
