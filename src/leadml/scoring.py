"""Score a lead file: validate each row, predict, apply BANT rules, label, write atomically.

:func:`score_rows` turns validated leads into scored rows and is the one scoring function
(a future Spark engine runs it per partition). :func:`score_file` streams a file through
it in chunks, so memory stays flat, and accounts for every input record: each is either a
scored row or a rejected row with its reason. Output, rejects and manifest are written to
temporary files and renamed into place; the manifest comes last and marks a finished run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from leadml import bant, io
from leadml.config import Rules
from leadml.registry import Contract
from leadml.schema import (
    RECORD_ID,
    LeadDataError,
    column_difference,
    is_missing,
    parse_numbers,
    parse_times,
)

logger = logging.getLogger(__name__)

OUTPUT_COLUMNS = [
    "lead_id", "conversion_probability", "score", "grade",
    "bant_budget", "bant_authority", "bant_need", "bant_timeline",
    "label", "reasons", "model_name", "model_version", "rules_version", "scored_at",
]
REJECT_COLUMNS = ["record", "lead_id", "reason", "raw_record"]
FUTURE_TOLERANCE = pd.Timedelta(days=1)  # clocks and time zones of CRM exports differ


class TooManyRejects(LeadDataError):
    """More rows were rejected than ``max_reject_rate`` allows."""


@dataclass(frozen=True)
class ScoreSettings:
    delimiter: str = ","
    encoding: str = "utf-8"
    chunk_rows: int = 50_000
    max_reject_rate: float = 0.05
    scored_at: str | None = None
    rejects: Path | None = None  # default: OUT stem + .rejects.csv


def side_paths(output: Path, rejects: Path | None = None) -> tuple[Path, Path]:
    """Rejects and manifest paths beside ``output``."""
    stem = output.with_suffix("")
    return rejects or Path(f"{stem}.rejects.csv"), Path(f"{stem}.manifest.json")


def check_columns(header: list[str], contract: Contract, rules: Rules, *, path: Path,
                  delimiter: str) -> None:
    """Fail fast, before any row, when the file lacks columns the model or rules read."""
    required = list(dict.fromkeys([contract.id_column, *contract.features, *rules.columns]))
    missing = [c for c in required if c not in header]
    if not missing:
        return
    hint = ""
    if len(header) == 1 and any(d in header[0] for d in ",;\t|" if d != delimiter):
        hint = (f"\nThe header is one column '{header[0][:80]}': is the delimiter not "
                f"{delimiter!r}? Pass --delimiter.")
    raise LeadDataError(
        f"'{path}' lacks {len(missing)} column(s) that model {contract.name} v"
        f"{contract.version} or the rules need: {missing}\n"
        f"{column_difference(required, header)}\n"
        f"The model expects: id '{contract.id_column}', numeric {list(contract.numeric)}, "
        f"categorical {list(contract.categorical)}, text {list(contract.text)}; the rules "
        f"read {rules.columns}.{hint}"
    )


class SeenIds:
    """Lead ids already scored in this file, as sorted 64-bit hashes (8 bytes a lead)."""

    def __init__(self) -> None:
        self._seen = np.empty(0, dtype=np.uint64)

    def first_time(self, ids: pd.Series) -> np.ndarray:
        """True for ids not seen before (in earlier chunks or earlier in this one); records
        them as seen."""
        hashes = pd.util.hash_array(ids.astype(str).to_numpy(dtype=object))
        pos = np.searchsorted(self._seen, hashes)
        before = (pos < len(self._seen)) & (self._seen[np.minimum(pos, len(self._seen) - 1)]
                                            == hashes) if len(self._seen) else \
            np.zeros(len(hashes), bool)
        first = ~before & ~pd.Series(hashes).duplicated().to_numpy()
        self._seen = np.sort(np.concatenate([self._seen, hashes[first]]), kind="stable")
        return first


def validate_rows(frame: pd.DataFrame, contract: Contract, rules: Rules, *,
                  scored_at: pd.Timestamp, seen: SeenIds) -> tuple[pd.DataFrame, np.ndarray]:
    """Typed leads and a reason per row ('' for rows that can be scored)."""
    markers = contract.missing_values
    reasons = [np.full(len(frame), "", dtype=object)]
    ids = frame[contract.id_column]
    no_id = is_missing(ids, markers)
    reasons.append(np.where(no_id, f"missing lead id in '{contract.id_column}'", ""))
    first = seen.first_time(ids.where(~no_id, ""))
    reasons.append(np.where(~no_id & ~first, "duplicate lead id: an earlier row has it", ""))
    typed = {}
    for col in dict.fromkeys([*contract.numeric, rules.budget.column]):
        numbers, bad = parse_numbers(frame[col], markers)
        values = frame[col].astype(str)
        reasons.append(np.where(bad, col + " '" + values + "' is not a finite number", ""))
        typed[col] = numbers
    budget = typed[rules.budget.column]
    reasons.append(np.where(budget < 0, f"{rules.budget.column} is negative", ""))
    if contract.time_column and contract.time_column in frame.columns:
        raw = frame[contract.time_column]
        times = parse_times(raw.where(~is_missing(raw, markers), None))
        stated = ~is_missing(raw, markers)
        unreadable = stated & times.isna().to_numpy()
        future = (times > scored_at + FUTURE_TOLERANCE).fillna(False).to_numpy()
        text = raw.astype(str)
        reasons.append(np.where(unreadable, contract.time_column + " '" + text
                                + "' is not a date", ""))
        reasons.append(np.where(future, contract.time_column + " '" + text
                                + "' is in the future", ""))
    joined = [r for r in reasons if (r != "").any()]
    reason = np.array(["; ".join(x for x in row if x) for row in zip(*joined, strict=True)],
                      dtype=object) if len(joined) > 1 else (joined[0] if joined else reasons[0])
    out = frame.copy()
    for col, numbers in typed.items():
        out[col] = numbers
    for col in dict.fromkeys([*contract.categorical, *contract.text, rules.authority.column,
                              rules.need.column, rules.timeline.column]):
        if col not in typed:
            values = out[col].astype(object)
            out[col] = values.where(~is_missing(values, markers), None)
    return out, reason


def score_rows(leads: pd.DataFrame, model, contract: Contract, rules: Rules, *,
               cutoffs: tuple[float, ...], scored_at: str) -> pd.DataFrame:
    """Scored rows for validated leads: probability, score, grade, BANT, label, reasons."""
    if leads.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS})
    p = model.predict_proba(leads[contract.features])[:, 1]
    checks = bant.evaluate(leads, rules)
    labels = bant.label(p, checks, rules.label_policy)
    floor = rules.label_policy.disqualify_below_probability
    reasons = checks["bant_reasons"].to_numpy(dtype=object)
    if floor is not None:
        low = (p < floor) & ~checks["hard_disqualifier"].to_numpy()
        note = f"Probability below the {floor:.0%} floor"
        reasons = np.where(low, np.where(reasons == "", note, note + "; " + reasons), reasons)
    return pd.DataFrame({
        "lead_id": leads[contract.id_column].astype(str).to_numpy(),
        "conversion_probability": p,
        "score": bant.score(p),
        "grade": bant.grade(p, cutoffs),
        **{f"bant_{c}": checks[f"bant_{c}"].to_numpy() for c in bant.CRITERIA},
        "label": labels,
        "reasons": reasons,
        "model_name": contract.name,
        "model_version": contract.version,
        "rules_version": (rules.sha256 or "")[:16],
        "scored_at": scored_at,
    })


def known_categories(model) -> dict[str, set[str]]:
    """Categories each categorical column had in training (for counting unseen ones)."""
    pipeline = model.calibrated_classifiers_[0].estimator
    pipeline = getattr(pipeline, "estimator", pipeline)  # FrozenEstimator
    encoder = pipeline.named_steps["encode"].named_transformers_.get("categorical")
    if encoder is None or not hasattr(encoder, "categories_"):
        return {}
    names = pipeline.named_steps["clean"].categorical
    return {n: {str(v) for v in cats if isinstance(v, str)}
            for n, cats in zip(names, encoder.categories_, strict=True)}


def _rejects_frame(chunk: io.Chunk, bad_rows: np.ndarray, reason: np.ndarray,
                   id_column: str, delimiter: str) -> pd.DataFrame:
    frame = chunk.frame.iloc[np.flatnonzero(bad_rows)]
    rows = pd.DataFrame({
        "record": chunk.records[bad_rows],
        "lead_id": frame[id_column].astype(str).to_numpy() if len(frame) else [],
        "reason": reason[bad_rows],
        "raw_record": [delimiter.join("" if v is None else str(v) for v in r)
                       for r in frame.itertuples(index=False)],
    })
    malformed = pd.DataFrame([{"record": m.record, "lead_id": "", "reason": m.reason,
                               "raw_record": m.raw} for m in chunk.malformed],
                             columns=REJECT_COLUMNS)
    both = pd.concat([rows, malformed]) if len(malformed) else rows
    return both.sort_values("record", kind="stable")[REJECT_COLUMNS]


def score_file(
    input_path: Path, output: Path, *, model, contract: Contract, rules: Rules,
    settings: ScoreSettings = ScoreSettings(),
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Score ``input_path`` into ``output`` (CSV or Parquet by extension); returns the
    manifest. Raises :class:`TooManyRejects` (after writing rejects and manifest, but no
    output) when the reject rate is above ``settings.max_reject_rate``."""
    started = time.perf_counter()
    input_path, output = Path(input_path), Path(output)
    if input_path.resolve() == output.resolve():
        raise LeadDataError("--output must differ from the input file")
    rejects_path, manifest_path = side_paths(output, settings.rejects)
    scored_at = settings.scored_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    scored_at_ts = pd.Timestamp(scored_at)
    scored_at_ts = scored_at_ts.tz_localize("UTC") if scored_at_ts.tzinfo is None else \
        scored_at_ts.tz_convert("UTC")
    sha256, clean_bytes = io.scan(input_path, settings.encoding)
    if input_path.suffix.lower() in {".parquet", ".pq"}:
        header, chunks = io.parquet_chunks(input_path, chunk_rows=settings.chunk_rows)
    else:
        header, chunks = io.csv_chunks(input_path, delimiter=settings.delimiter,
                                       encoding=settings.encoding,
                                       chunk_rows=settings.chunk_rows,
                                       check_bytes=not clean_bytes)
    if contract.id_column is None:  # the model's data had no ids: the record number is one
        contract = replace(contract, id_column=RECORD_ID)
        chunks = (replace(c, frame=c.frame.assign(**{RECORD_ID: c.records.astype(str)}))
                  for c in chunks)
        header = [*header, RECORD_ID]
    check_columns(header, contract, rules, path=input_path, delimiter=settings.delimiter)
    cutoffs = bant.grade_cutoffs(rules.grades, np.asarray(contract.reference_quantiles))
    categories = known_categories(model)
    seen = SeenIds()
    out = io.ChunkWriter(output)
    rej = io.ChunkWriter(rejects_path)
    counts = {"label": Counter(), "grade": Counter(), "reject_reason": Counter(),
              "unseen": Counter()}
    rows_in = scored = rejected = 0
    timings = Counter()
    try:
        for chunk in chunks:
            t0 = time.perf_counter()
            typed, reason = validate_rows(chunk.frame, contract, rules, scored_at=scored_at_ts,
                                          seen=seen)
            bad = reason != ""
            good = typed.loc[~bad]
            for col, known in categories.items():
                values = good[col].dropna().astype(str).str.strip()
                counts["unseen"][col] += int((~values.isin(known)).sum())
            t1 = time.perf_counter()
            result = score_rows(good, model, contract, rules, cutoffs=cutoffs,
                                scored_at=scored_at)
            t2 = time.perf_counter()
            out.write(result)
            rejects = _rejects_frame(chunk, bad, reason, contract.id_column, settings.delimiter)
            if len(rejects):
                rej.write(rejects)
            timings["validate_seconds"] += t1 - t0
            timings["score_seconds"] += t2 - t1
            timings["write_seconds"] += time.perf_counter() - t2
            rows_in += len(chunk.frame) + len(chunk.malformed)
            scored += len(result)
            rejected += len(rejects)
            counts["label"].update(result["label"].tolist())
            counts["grade"].update(result["grade"].tolist())
            counts["reject_reason"].update(r.split(":")[0].split(" '")[0]
                                           for r in rejects["reason"])
            if on_progress:
                on_progress(rows_in)
        assert scored + rejected == rows_in, "every input row is scored or rejected"
        rate = rejected / rows_in if rows_in else 0.0
        status = "ok" if rate <= settings.max_reject_rate else "failed: too many rejects"
        manifest = {
            "status": status,
            "input": {"path": str(input_path.resolve()), "sha256": sha256, "rows": rows_in},
            "output": str(output.resolve()) if status == "ok" else None,
            "rejects": str(rejects_path.resolve()),
            "scored": scored, "rejected": rejected, "reject_rate": round(rate, 6),
            "max_reject_rate": settings.max_reject_rate,
            "labels": {k: counts["label"].get(k, 0) for k in bant.LABELS},
            "grades": {k: counts["grade"].get(k, 0) for k in "ABCD"},
            "reject_reasons": dict(counts["reject_reason"].most_common()),
            "unseen_category_values": {k: v for k, v in counts["unseen"].items() if v},
            "model": {"name": contract.name, "version": contract.version, "uri": contract.uri},
            "rules": {"path": str(rules.source), "sha256": rules.sha256,
                      "grade_cutoffs": dict(zip("ABC", cutoffs, strict=True))},
            "scored_at": scored_at,
            "timings": {**{k: round(v, 3) for k, v in timings.items()},
                        "total_seconds": round(time.perf_counter() - started, 3)},
        }
        empty_rejects = pd.DataFrame({c: pd.Series(dtype=object) for c in REJECT_COLUMNS})
        if status == "ok":
            out.commit(score_rows(pd.DataFrame(), model, contract, rules, cutoffs=cutoffs,
                                  scored_at=scored_at))
        else:
            out.discard()
        rej.commit(empty_rejects)
        io.write_json(manifest, manifest_path)  # last: its presence marks a finished run
    except BaseException:
        out.discard()
        rej.discard()
        raise
    if status != "ok":
        raise TooManyRejects(
            f"{rejected} of {rows_in} rows ({rate:.1%}) were rejected, above "
            f"--max-reject-rate {settings.max_reject_rate:.1%}; no output was written. See "
            f"{rejects_path} for each row's reason (top: "
            f"{dict(counts['reject_reason'].most_common(3))})."
        )
    return manifest
