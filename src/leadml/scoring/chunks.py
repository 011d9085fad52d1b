"""Score a lead file: validate each row, predict, apply BANT rules, label, write atomically.

:func:`score_chunk` validates and scores one chunk of raw rows and is the one scoring
function: the local engine here and the Spark engine (:mod:`leadml.scoring.spark`) call it alike.
:func:`score_file` streams a file through it in chunks, so memory stays flat, and accounts
for every input record: each is either a scored row or a rejected row with its reason. The
run around it (paths, lock, commit, manifest) is :mod:`leadml.scoring.run`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config import MISSING_VALUES, Rules
from leadml.config.writeback import WriteBack

# TooManyRejects stays importable from here, where scoring's callers always found it.
from leadml.data.factor_codes import factorize, shared
from leadml.data.reason_text import (
    join_combinations,
    join_slots,
    join_strings,
    join_texts,
    texts_slot,
)
from leadml.data.schema import (
    OUTPUT_COLUMNS,
    RECORD_ID,
    Contract,
    column_difference,
    named_otherwise,
    repeated_header,
    rounded_ids_hint,
)
from leadml.data.tables import (
    CHUNK_BYTES,
    Chunk,
    ChunkWriter,
    NeedsExactReader,
    arrow_csv_chunks,
    csv_chunks,
    input_files,
    is_parquet,
    parquet_chunks,
    raw_record,
    row_estimate,
    rows_holding,
    scan,
    scanning,
    utf8,
)
from leadml.data.values import is_missing, number_looks, parse_numbers, parse_times
from leadml.errors import ConfigError, LeadDataError
from leadml.explain.effects import Explainer, remainder_slot, sentence_slots
from leadml.model import encoded
from leadml.model.sklearn_compat import fitted_transformer, model_parts
from leadml.process import spared
from leadml.rules import axes, bant, capacity
from leadml.rules.display import for_people, with_reasons
from leadml.scoring.read_ahead import Behind, ahead
from leadml.scoring.run import (
    Run,
    ScoringTime,
    build_manifest,
    check_accounted,
    grade_cutoffs,
    reject_kinds,
    reject_status,
    run_paths,
    scored_at_time,
    too_many_rejects,
    with_record_ids,
)
from leadml.scoring.seen_ids import SeenIds
from leadml.scoring.settings import ScoreSettings
from leadml.scoring.writeback import Tee, WriteBackWriter

logger = logging.getLogger(__name__)
DEFAULT_RULES_NAME = "bant_default.yaml"

REJECT_COLUMNS = ["record", "lead_id", "reason", "raw_record"]
#: A number is "far outside" training when it lies beyond the training range by more than
#: this many times the range's width (or the largest magnitude seen, if wider): 1e300 is
#: rejected, a budget twice the largest seen is scored.
RANGE_MARGIN = 10.0
#: Text a person reads in a spreadsheet: escaped there so it cannot start a formula (and
#: the carried columns, see :func:`spreadsheet_columns`).
SPREADSHEET_TEXT = {"output": ("lead_id", "reasons"), "rejects": ("lead_id", "reason",
                                                                  "raw_record")}


FLOAT_COLUMNS = ("expected_value", "fit_points", "engagement_points")

MAX_CHUNK_ROWS = 50_000
MIN_CHUNK_ROWS = 1_000
# CHUNK_BYTES (from leadml.data.tables): about the input a chunk holds; scoring takes ~10x that


def chunk_rows(path: Path, settings: ScoreSettings) -> int:
    """Rows per chunk: as set, else as many as hold about :data:`CHUNK_BYTES` of the
    input, between :data:`MIN_CHUNK_ROWS` and :data:`MAX_CHUNK_ROWS`. A wide export (a
    CRM's hundreds of custom fields) gets smaller chunks: memory stays about flat in the
    file's width as in its length."""
    if settings.chunk_rows is not None:
        return settings.chunk_rows
    return rows_holding(path, CHUNK_BYTES, least=MIN_CHUNK_ROWS, most=MAX_CHUNK_ROWS)


def check_columns(header: list[str], contract: Contract, rules: Rules, *, path: Path,
                  delimiter: str) -> None:
    """Fail fast, before any row, when the file lacks columns the model or rules read."""
    required = list(dict.fromkeys([contract.id_column, *contract.features, *rules.columns,
                                   *rules.output.carry]))
    missing = [c for c in required if c not in header]
    if not missing:
        return
    hint = ""
    if len(header) == 1 and any(d in header[0] for d in ",;\t|" if d != delimiter):
        hint = (f"\nThe header is one column '{header[0][:80]}': is the delimiter not "
                f"{delimiter!r}? Pass --delimiter.")
    elif set(missing) & set(rules.columns) and rules.source is not None and \
            Path(rules.source).name == DEFAULT_RULES_NAME:
        hint = ("\nThose are the columns of the rules shipped with leadml, written for the "
                "sample data. Write rules for your export with `leadml rules init --config "
                "TRAIN_CONFIG --output bant.yaml`, check them, and pass --rules bant.yaml.")
    elif twins := named_otherwise(missing, [c for c in header if c not in required]):
        hint = (f"\n{len(twins)} of them seem to be in the file under another name (shown "
                "beside each): give those columns the names the model was trained with in "
                "the export.")
    raise LeadDataError(
        f"'{path}' lacks {len(missing)} column(s) that model {contract.name} v"
        f"{contract.version} or the rules need: {missing}\n"
        f"{column_difference([*required, *filter(None, [contract.time_column])], header)}\n"
        f"The model expects: id '{contract.id_column}', numeric {list(contract.numeric)}, "
        f"categorical {list(contract.categorical)}, text {list(contract.text)}; the rules "
        f"read {rules.columns}.{hint}"
    )


def _where(mask: np.ndarray, values: pd.Series, template: str) -> np.ndarray:
    """``template`` filled with the value where ``mask``, '' elsewhere."""
    out = np.full(len(values), "", dtype=object)
    for i in np.flatnonzero(mask):
        out[i] = template.format(values.iloc[i])
    return out


_LOOKS = {"spreadsheet error": " (a spreadsheet error value: fix the formula in the export)",
          "placeholder": " (a placeholder for no value? the model reads only the "
                         "dataset.missing_values it was trained with as missing: export an "
                         "empty value, or retrain listing it)",
          "decimal comma": " (a decimal comma? score with --decimal ,)",
          "grouped": " (thousands separators? score with --thousands ,)",
          "formatted": " (a formatted number: export plain numbers)"}


REPEATED_HEADER = "repeated header line: not a lead (files joined with their headers?)"


def validate_rows(frame: pd.DataFrame, contract: Contract, rules: Rules, *,
                  scored_at: ScoringTime, seen: SeenIds) -> tuple[pd.DataFrame, np.ndarray]:
    """Typed leads and a reason per row ('' for rows that can be scored)."""
    markers = contract.missing_values
    reasons = [np.full(len(frame), "", dtype=object)]
    ids = frame[contract.id_column]
    if ids.dtype.kind in "iufb" or isinstance(ids.dtype, pd.api.extensions.ExtensionDtype) \
            and not isinstance(ids.dtype, pd.StringDtype):  # (Int64 with a gap: no "" in it)
        ids = ids.astype(object)
    no_id = is_missing(ids, markers)
    if no_id.any():
        reasons.append(_where(no_id, ids, f"missing lead id in '{contract.id_column}'"))
    text = ids.astype(str)
    padded = ~no_id & (text != text.str.strip()).to_numpy()
    if padded.any():  # 'D6 ' and 'D6' would be two leads, or one lead scored twice
        reasons.append(_where(padded, text.map(repr), "lead id {} has spaces before or after "
                              "it, so it is not the id the CRM matches on: export ids without "
                              "padding"))
    first = seen.first_time(ids.where(~no_id, ""))
    if (~no_id & ~first).any():
        again = ~no_id & ~first
        reasons.append(_where(again, ids, "duplicate lead id: an earlier row has it"
                              + (" (a long number a spreadsheet rounded? export ids as text)"
                                 if rounded_ids_hint(ids[again]) else "")))
    typed = {}
    budget_column = [rules.budget.column] if rules.budget else []
    value_column = [rules.value.column] if rules.value and rules.value.column else []
    for col in dict.fromkeys([*contract.numeric, *budget_column, *value_column]):
        numbers, bad = parse_numbers(frame[col], markers, decimal=contract.decimal,
                                     thousands=contract.thousands)
        if bad.any():
            looks = number_looks(frame[col][bad], contract.decimal).map(_LOOKS).fillna("")
            reason = np.full(len(frame), "", dtype=object)
            reason[bad] = [f"{col} '{value}' is not a finite number{look}" for value, look
                           in zip(frame[col][bad], looks, strict=True)]
            reasons.append(reason)
        typed[col] = numbers
    for col, (lo, hi) in (contract.numeric_ranges or {}).items():
        if col not in typed:
            continue
        span = RANGE_MARGIN * max(hi - lo, abs(lo), abs(hi), 1.0)
        far = ((typed[col] < lo - span) | (typed[col] > hi + span)).to_numpy()
        if far.any():
            reasons.append(_where(far, typed[col], col + " {:g} is far outside what the model "
                                  f"was trained on ({lo:g} to {hi:g}); check the value"))
    if rules.budget is not None:
        budget = typed[rules.budget.column]
        if (budget < 0).any():
            reasons.append(_where((budget < 0).to_numpy(), budget,
                                  f"{rules.budget.column} is negative"))
    for col in value_column:
        if (typed[col] < 0).any():
            reasons.append(_where((typed[col] < 0).to_numpy(), typed[col],
                                  col + " {:g} is a negative deal value"))
    if contract.time_column and contract.time_column in frame.columns:
        raw = frame[contract.time_column]
        fmt = contract.time_format
        stated = ~is_missing(raw, markers)
        times = parse_times(raw.where(stated, None), fmt)
        unreadable = stated & times.isna().to_numpy()
        future = np.zeros(len(raw), bool) if fmt == "sequence" else \
            (times > scored_at.latest_created).fillna(False).to_numpy()
        if unreadable.any():
            what = "not a number (time_format sequence)" if fmt == "sequence" else \
                f"not a time in the model's time_format {fmt!r}"
            what = what.replace("{", "{{").replace("}", "}}")
            reasons.append(_where(unreadable, raw, contract.time_column + " '{}' is " + what))
        if future.any():
            reasons.append(_where(future, raw, scored_at.too_late(contract.time_column)))
    joined = [r for r in reasons if (np.asarray(r) != "").any()]
    reason = join_texts(joined) if len(joined) > 1 else \
        (joined[0] if joined else reasons[0])
    header = repeated_header(frame, [contract.id_column, *contract.features])
    if header.any():  # one reason, not one per column that is not a number
        reason = reason.copy()
        reason[header] = REPEATED_HEADER
    out = frame.copy()
    for col, numbers in typed.items():
        out[col] = numbers
    return out, reason  # (placeholders stay: the model and the rules read them as missing)


def score_rows(leads: pd.DataFrame, model, contract: Contract, rules: Rules, *,
               cutoffs: tuple[float, ...], scored_at: str,
               explainer: Explainer | None = None, judged=None) -> pd.DataFrame:
    """Scored rows for validated leads: probability, score, grade, BANT, label, reasons.

    With an ``explainer``, the reasons start with the fields that raised and lowered each
    lead's probability most (see :mod:`leadml.explain.effects`), then the BANT criteria it failed.
    ``judged``: :func:`leadml.rules.bant.judged` of the leads, when already known.
    """
    if leads.empty:
        return pd.DataFrame({c: pd.Series(dtype=float if c in FLOAT_COLUMNS else object)
                             for c in output_columns(rules)})
    carried = {c: _as_read(leads[c]) for c in rules.output.carry}
    n = len(leads)
    field_reasons = []  # per lead, the fields that raised and lowered the probability most
    on_axes = {}  # fit and engagement (leadml.rules.axes), when the rules name them
    if model is None:  # rules-only: no probability, score or grade; the rules decide
        p = np.full(n, np.nan)
        scores = pd.array([pd.NA] * n, dtype="Int64")
        grades = pd.array([pd.NA] * n, dtype="string")
    else:
        features = leads[contract.features]
        if explainer is not None:  # points that add up to the distance from a typical lead
            shares = explainer.shares(features)
            p, contributions = shares.p, shares.points
            field_reasons = sentence_slots(features, contributions,
                                           missing_values=contract.missing_values,
                                           names=rules.output.fields)
            rest = remainder_slot(contributions)
            field_reasons += [rest] if rest is not None else []
            if rules.axes is not None:
                on_axes = axes.columns(shares, rules.axes)
        else:
            p = model.predict_proba(features)[:, 1]
        scores, grades = bant.score(p), bant.grade(p, cutoffs)
    checks, failed = judged or bant.judged(leads, rules, contract.missing_values)
    value, value_note = {}, None
    if rules.value is not None:
        deal = leads[rules.value.column].to_numpy(dtype=float) if rules.value.column else None
        ev = capacity.expected_value(p, deal, rules.value)
        value = {"expected_value": ev}
        value_note = f"Expected value unknown: {rules.value.column} not stated"
    labels = bant.label(p, checks, rules.label_policy, value.get("expected_value"),
                        on_axes or None)
    floor = rules.label_policy.disqualify_below_probability
    nowhere = np.zeros(n, dtype=bool)
    notes = [_note((p < floor) & ~checks["hard_disqualifier"].to_numpy() if floor is not None
                   else nowhere, f"Probability below the {floor or 0:.0%} floor"),
             _note(np.isnan(ev) & ~np.isnan(p) if value else nowhere, value_note),
             *axes.notes(on_axes, rules.label_policy, labels)]
    if explainer is None:  # a few distinct texts per slot: joined per combination
        reasons = join_strings([*notes, *failed])
    else:  # the notes, the fields that moved the probability most, the failed criteria
        reasons = pd.array(join_slots([
            texts_slot(*join_combinations(notes)), *field_reasons,
            texts_slot(*join_combinations(failed))]), dtype="str")
    ids = leads[contract.id_column]
    same = np.zeros(n, dtype=np.int8)  # the run's constants, as one-category columns
    return pd.DataFrame({
        "lead_id": ids.array if isinstance(ids.dtype, pd.StringDtype)
        else ids.astype(str).to_numpy(),
        **carried,
        "conversion_probability": p,
        **value,
        "score": scores,
        "grade": grades,
        **on_axes,
        **{f"bant_{c}": checks[f"bant_{c}"].array for c in bant.CRITERIA},
        "label": labels,
        "reasons": reasons,
        **{col: pd.Categorical.from_codes(same, [str(text)]) for col, text in (
            ("model_name", contract.name), ("model_version", contract.version),
            ("rules_version", (rules.sha256 or "")[:16]), ("scored_at", scored_at))},
    })


def _note(where: np.ndarray, text: str | None) -> pd.Categorical:
    """``text`` where ``where``, '' elsewhere."""
    return pd.Categorical.from_codes(where.astype(np.int8), ["", text] if where.any() else [""])


def _as_read(values: pd.Series) -> np.ndarray:
    """A carried column as the file stated it: text, missing values as empty text (a
    column the validation typed as numbers, such as the budget, is written as parsed)."""
    if values.dtype.kind == "f":
        return np.array(["" if np.isnan(v) else f"{v:g}" for v in values], dtype=object)
    return values.astype(object).where(values.notna(), "").astype(str).to_numpy(dtype=object)


def output_columns(rules: Rules) -> list[str]:
    """The scored-lead columns: the lead id, the columns the rules carry from the lead
    file, then leadml's; ``expected_value`` follows the probability when the rules give a
    value."""
    carry = list(rules.output.carry)
    value = ["expected_value"] if rules.value is not None else []
    on_axes = axes.COLUMNS if rules.axes is not None else []
    g = OUTPUT_COLUMNS.index("grade")
    return [OUTPUT_COLUMNS[0], *carry, OUTPUT_COLUMNS[1], *value, *OUTPUT_COLUMNS[2:g + 1],
            *on_axes, *OUTPUT_COLUMNS[g + 1:]]


def typed_features(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The model's columns with numbers parsed; unreadable numbers become missing."""
    out = frame[contract.features].copy()
    for col in contract.numeric:
        out[col] = parse_numbers(frame[col], contract.missing_values,
                                 decimal=contract.decimal, thousands=contract.thousands)[0]
    return out


def rules_only_contract(id_column: str, rules: Rules) -> Contract:
    """What scoring without a model expects: an id column and the rules' columns. Rules
    that rank or cut leads by probability or value cannot run without a model."""
    sq = rules.label_policy.sales_qualified
    if sq.by_capacity or sq.min_expected_value is not None:
        raise ConfigError(f"the rules '{rules.source}' rank or cut leads by probability "
                          "or expected value (label_policy.sales_qualified capacity, "
                          "capacity_share or min_expected_value): --rules-only has no "
                          "probability; remove those keys or score with a model")
    return Contract(name="rules-only", version="none", uri="", id_column=id_column,
                    time_column=None, numeric=(), categorical=(), text=(),
                    missing_values=MISSING_VALUES, reference_quantiles=())


def field_counts(leads: pd.DataFrame, contract: Contract, categories: dict[str, set[str]]
                 ) -> dict[str, Counter]:
    """Per model field, among validated leads: ``missing``, the values empty or a
    placeholder (numbers: not stated), and ``unseen``, the stated categories the model
    never saw in training; each distinct value is looked at once.

    >>> from leadml.data.schema import Contract
    >>> c = Contract(name="m", version="1", uri="", id_column="id", time_column=None,
    ...              numeric=("n",), categorical=("c",), text=(), missing_values=("Select",),
    ...              reference_quantiles=())
    >>> leads = pd.DataFrame({"n": [1.0, np.nan, 2.0, 3.0, 4.0],
    ...                       "c": ["a", " b", "c", None, "Select"]})
    >>> {k: dict(v) for k, v in field_counts(leads, c, {"c": {"a", "b"}}).items()}
    {'missing': {'n': 1, 'c': 2}, 'unseen': {'c': 1}}
    """
    missing, unseen = Counter(), Counter()
    markers = contract.missing_values
    for col in contract.numeric:
        missing[col] = int(np.isnan(leads[col].to_numpy(dtype=float)).sum())
    for col in (*contract.categorical, *contract.text):
        found, uniques = factorize(leads[col])
        absent = np.append(is_missing(pd.Series(uniques), markers), True)  # (-1: no value)
        counts = np.bincount(np.where(found < 0, len(uniques), found),
                             minlength=len(uniques) + 1)
        missing[col] = int(counts[absent].sum())
        if col in categories:
            new = np.array([str(u).strip() not in categories[col] for u in uniques] + [False],
                           dtype=bool)
            unseen[col] = int(counts[new & ~absent].sum())
    return {"missing": missing, "unseen": unseen}


def known_categories(model) -> dict[str, set[str]]:
    """Categories each categorical column had in training (for counting unseen ones)."""
    if model is None:
        return {}
    pipeline = model_parts(model)[0]
    encoder = fitted_transformer(pipeline, "categorical")
    if encoder is None or not hasattr(encoder, "categories_"):
        return {}
    names = pipeline.named_steps["clean"].categorical
    return {n: {str(v) for v in cats if isinstance(v, str)}
            for n, cats in zip(names, encoder.categories_, strict=True)}


def _rejects_frame(chunk: Chunk, bad_rows: np.ndarray, reason: np.ndarray,
                   id_column: str, delimiter: str) -> pd.DataFrame:
    frame = chunk.frame.iloc[np.flatnonzero(bad_rows)]
    rows = pd.DataFrame({
        "record": chunk.records[bad_rows],
        "lead_id": frame[id_column].astype(str).to_numpy() if len(frame) else [],
        "reason": reason[bad_rows],
        "raw_record": [raw_record(r, delimiter) for r in frame.itertuples(index=False)],
    })
    malformed = pd.DataFrame([{"record": m.record, "lead_id": "", "reason": m.reason,
                               "raw_record": m.raw} for m in chunk.malformed],
                             columns=REJECT_COLUMNS)
    both = pd.concat([rows, malformed]) if len(malformed) else rows
    return both.sort_values("record", kind="stable")[REJECT_COLUMNS]


@dataclass
class _Tally:
    rows_in: int = 0
    scored: int = 0
    rejected: int = 0
    footer: list[str] = field(default_factory=list)  # a report footer's lines: not leads

    def __post_init__(self) -> None:
        self.counts = {k: Counter() for k in ("label", "grade", "score", "reject_reason",
                                              "unseen", "missing", "cell",
                                              "expected_conversions", "expected_value")}
        self.timings: Counter = Counter()
        self.candidates = capacity.Candidates()

    def add_scored(self, result: pd.DataFrame, rules: Rules) -> None:
        """Count a chunk's scored rows (and collect capacity candidates) before writing."""
        if rules.label_policy.sales_qualified.by_capacity:
            self.candidates.add(result, rules.label_policy.sales_qualified, self.scored)
        self.scored += len(result)
        self.counts["label"].update(result["label"].value_counts().to_dict())
        self.counts["grade"].update(result["grade"].value_counts().to_dict())
        self.counts["score"].update(result["score"].value_counts().to_dict())
        if "fit_grade" in result:  # the fit x engagement matrix (leadml.rules.axes)
            self.counts["cell"].update(axes.cells(result))
        for key, col in (("expected_conversions", "conversion_probability"),
                         ("expected_value", "expected_value")):
            if col in result and len(result):
                sums = result.groupby("label")[col].sum(min_count=1)
                self.counts[key].update(sums.dropna().to_dict())


@dataclass
class Checked:
    """A chunk validated: its typed rows, a reason per row ('' to score), the BANT rules'
    verdicts on the rows to score (:func:`leadml.rules.bant.judged`: they need no probability),
    the column codes validation factorized (for the model to reuse: :mod:`leadml.data.factor_codes`)
    and the seconds it took."""

    chunk: Chunk
    typed: pd.DataFrame
    reason: np.ndarray
    judged: tuple | None
    codes: dict
    seconds: float


def validate_chunk(chunk: Chunk, *, contract: Contract, rules: Rules, scored_at_ts,
                   seen) -> Checked:
    """The first half of :func:`score_chunk`: one chunk's rows checked and typed, and the
    rows to score judged by the BANT rules (in the read-ahead thread, this moves 1M leads
    from 1.87 to 1.73 s in the run: eight alternating runs)."""
    t0 = time.perf_counter()
    kept: dict = {}
    with shared(kept):
        typed, reason = validate_rows(chunk.frame, contract, rules, scored_at=scored_at_ts,
                                      seen=seen)
        bad = reason != ""
        good = typed.loc[~bad] if bad.any() else typed
        judged = bant.judged(good, rules, contract.missing_values) if len(good) else None
    return Checked(chunk, good, reason, judged, kept, time.perf_counter() - t0)


def score_checked(checked: Checked, *, model, contract: Contract, rules: Rules, cutoffs,
                  scored_at: str, delimiter: str, explainer: Explainer | None = None,
                  categories: dict | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Counter],
                             dict[str, float]]:
    """The second half of :func:`score_chunk`: a validated chunk's rows scored, and its
    fields' missing and unseen values counted (:func:`field_counts`)."""
    t1 = time.perf_counter()
    with shared(checked.codes):  # validation, the model and the rules read the same
        result = score_rows(checked.typed, model, contract, rules, cutoffs=cutoffs,
                            scored_at=scored_at, explainer=explainer, judged=checked.judged)
        # (counted here, not in validation: the model has factorized the fields, and
        # validation's thread is the busier one; 1M leads take the time they took without
        # the counts, 1.71 against 1.72 s in eight alternating runs, 6% more counted there)
        fields = field_counts(checked.typed, contract, categories or {})
    t2 = time.perf_counter()
    bad = checked.reason != ""
    chunk = checked.chunk
    rejects = _rejects_frame(chunk, bad, checked.reason, contract.id_column, delimiter) \
        if bad.any() or chunk.malformed else None
    return result, rejects, fields, {"validate_seconds": checked.seconds,
                                     "score_seconds": t2 - t1}


def score_chunk(chunk: Chunk, *, model, contract: Contract, rules: Rules, cutoffs,
                scored_at: str, scored_at_ts, delimiter: str, seen,
                explainer: Explainer | None = None, categories: dict | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Counter],
                           dict[str, float]]:
    """One chunk of raw rows: its scored rows, its rejects (or None), the missing and
    unseen values per field (:func:`field_counts`), and stage timings. The one place a
    row is validated and scored, for the local engine and for each Spark partition alike
    (the local engine runs its two halves, :func:`validate_chunk` and
    :func:`score_checked`, in two threads).

    ``seen`` answers ``first_time(ids)``: :class:`SeenIds` when chunks arrive in file order,
    or a precomputed answer when they do not (Spark)."""
    checked = validate_chunk(chunk, contract=contract, rules=rules, scored_at_ts=scored_at_ts,
                             seen=seen)
    return score_checked(checked, model=model, contract=contract, rules=rules,
                         cutoffs=cutoffs, scored_at=scored_at, delimiter=delimiter,
                         explainer=explainer, categories=categories)


def _checked(chunks, **how):
    """Each chunk validated, in file order (the read-ahead thread runs this)."""
    try:
        for chunk in chunks:
            yield validate_chunk(chunk, **how)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()


def _stream(chunks, out: ChunkWriter, rej: ChunkWriter, *, model, contract: Contract,
            rules: Rules, cutoffs, scored_at: str, scored_at_ts, delimiter: str,
            on_progress, explainer: Explainer | None = None, total: int | None = None
            ) -> _Tally:
    categories = known_categories(model)
    seen = SeenIds(expected=total or 0)
    tally = _Tally()
    # The next chunk is read and validated in a thread of its own, and the last one written
    # in another, while this one is scored (see leadml.scoring.read_ahead): the three share Python's
    # lock, but Arrow's reading and writing and much of numpy's work run outside it (1M
    # leads: 1.79 -> 1.56 s in the run, five alternating runs). Read and write seconds are
    # the time spent waiting; validation's seconds are spent beside the scoring.
    checked = _checked(iter(chunks), contract=contract, rules=rules, scored_at_ts=scored_at_ts,
                       seen=seen)
    with encoded.memo(), ahead(checked) as checked, Behind() as writes:
        while True:
            t = time.perf_counter()
            one = next(checked, None)
            tally.timings["read_seconds"] += time.perf_counter() - t
            if one is None:
                break
            chunk = one.chunk
            result, rejects, fields, timings = score_checked(
                one, model=model, contract=contract, rules=rules, cutoffs=cutoffs,
                scored_at=scored_at, delimiter=delimiter, explainer=explainer,
                categories=categories)
            tally.timings.update(timings)
            for kind, counted in fields.items():
                tally.counts[kind].update(counted)
            tally.rows_in += len(chunk.frame) + len(chunk.malformed)
            if chunk.footer:
                tally.footer = chunk.footer
                logger.warning("the input ends with a report footer of %d lines, not leads: "
                               "rejected as such, outside the reject rate: %s",
                               len(chunk.footer), chunk.footer[:3])
            tally.add_scored(result, rules)
            if rejects is not None:
                tally.rejected += len(rejects)
                tally.counts["reject_reason"].update(reject_kinds(rejects["reason"]))
            t = time.perf_counter()
            writes.submit(_write, out, result, rej, rejects)  # (neither is touched again)
            tally.timings["write_seconds"] += time.perf_counter() - t
            if on_progress:
                on_progress(tally.rows_in, total)
        t = time.perf_counter()
        writes.wait()
        tally.timings["write_seconds"] += time.perf_counter() - t
    return tally


def _write(out: ChunkWriter, result: pd.DataFrame, rej: ChunkWriter,
           rejects: pd.DataFrame | None) -> None:
    out.write(result)
    if rejects is not None:
        rej.write(rejects)


def _apply_capacity(stage: Path, final: ChunkWriter, tally: _Tally, rules: Rules,
                    empty: pd.DataFrame) -> dict:
    """Copy the staged rows to ``final``, turning the sales-qualified leads beyond the
    capacity into nurture (with the reason), and move them in the tally. Returns the
    capacity section of the manifest."""
    import pyarrow.parquet as pq

    policy = rules.label_policy.sales_qualified
    keys, ids, rows, probability, expected = tally.candidates.arrays()
    k = capacity.limit(policy, tally.scored)
    cut = capacity.cutoff(keys, ids, k)
    beyond = ~capacity.inside(keys, ids, cut)
    bumped = np.sort(rows[beyond])
    text = capacity.note(k, policy)
    start = 0
    for part in pq.ParquetFile(stage).iter_batches(batch_size=100_000):
        frame = part.to_pandas()
        hit = np.isin(np.arange(start, start + len(frame)), bumped, assume_unique=True)
        if hit.any():
            frame.loc[hit, "label"] = "nurture"
            frame.loc[hit, "reasons"] = join_texts(
                [np.full(int(hit.sum()), text, dtype=object),
                 frame.loc[hit, "reasons"].to_numpy(dtype=object)])
        final.write(frame)
        start += len(frame)
    final.finish(empty)
    moved = int(beyond.sum())
    tally.counts["label"].subtract({"sales_qualified": moved})
    tally.counts["label"].update({"nurture": moved})
    for key, values in (("expected_conversions", probability), ("expected_value", expected)):
        if key == "expected_value" and rules.value is None:
            continue
        total = float(values[beyond].sum())
        tally.counts[key].subtract({"sales_qualified": total})
        tally.counts[key].update({"nurture": total})
    return capacity_section(policy, cut, tally.scored)


def capacity_section(policy, cut: capacity.Cutoff, scored: int) -> dict:
    """The manifest's account of the capacity: the limit, the candidates, the cut-off."""
    return {"limit": cut.limit, "capacity": policy.capacity,
            "capacity_share": policy.capacity_share, "rank_by": policy.rank_by,
            "candidates": cut.candidates, "sales_qualified": cut.filled,
            "beyond_capacity": max(cut.candidates - cut.limit, 0),
            "filled": cut.candidates >= cut.limit,
            "cutoff": None if cut.key is None or cut.limit == 0 else
            {"key": cut.key, "lead_id": cut.lead_id},
            "scored": scored}


def _chunks(path: Path, settings: ScoreSettings, *, fast: bool, clean_bytes: bool,
            contract: Contract):
    """The header and chunks of the input, with record numbers as ids when the model has
    no id column. Nothing is opened beyond the header until the chunks are iterated."""
    rows = chunk_rows(path, settings)
    if is_parquet(path):
        header, chunks = parquet_chunks(path, chunk_rows=rows)
    elif fast:
        header, chunks = arrow_csv_chunks(path, delimiter=settings.delimiter,
                                             chunk_rows=rows)
    else:
        header, chunks = csv_chunks(path, delimiter=settings.delimiter,
                                       encoding=settings.encoding, chunk_rows=rows,
                                       check_bytes=not clean_bytes)
    if contract.id_column is None:
        chunks = (replace(c, frame=c.frame.assign(**{RECORD_ID: c.records.astype(str)}))
                  for c in chunks)
        header = [*header, RECORD_ID]
    return header, chunks


def score_file(
    input_path: Path, output: Path, *, model, contract: Contract, rules: Rules,
    settings: ScoreSettings | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    writeback: WriteBack | None = None,
) -> dict:
    """Score ``input_path`` (a CSV or Parquet file, or a folder of Parquet parts) into
    ``output`` (CSV or Parquet by extension); returns the manifest. ``on_progress(rows,
    total)`` is called after each chunk (``total``: the rows expected, about, or None).

    Follows the commit protocol of :mod:`leadml.scoring.run`. Raises :class:`TooManyRejects`
    (after writing rejects and manifest, but no output) when the reject rate is above
    ``settings.max_reject_rate``. ``writeback``: a CRM's import file to write beside
    ``output`` (:mod:`leadml.scoring.writeback`); the rules must carry its lead columns."""
    settings = settings or ScoreSettings()
    with spared():  # (the model and MLflow's modules: 1.87 -> 1.75 s for 1M leads)
        return _score_file(input_path, output, model=model, contract=contract, rules=rules,
                           settings=settings, on_progress=on_progress, writeback=writeback)


def _score_file(input_path, output, *, model, contract: Contract, rules: Rules,
                settings: ScoreSettings, on_progress, writeback: WriteBack | None) -> dict:
    started = time.perf_counter()
    input_path, output = Path(input_path), Path(output)
    input_files(input_path)  # it exists
    paths = run_paths(input_path, output, settings.rejects,
                      writeback=writeback.preset if writeback else None)
    missing = [c for c in (writeback.lead_columns if writeback else ())
               if c not in rules.output.carry]
    if missing:
        raise ConfigError(f"the write-back file reads {missing}, which the rules do not "
                          "carry: add them to output.carry (leadml.jobs.score does)")
    scored_at, scored_at_ts = scored_at_time(settings.scored_at)
    run_contract = with_record_ids(contract)
    cutoffs = grade_cutoffs(model, rules, contract)
    explainer = _explainer(model, contract, settings)
    axes.check(rules.axes, contract.features, reasons=explainer is not None,
               source=rules.source)
    csv_out = not is_parquet(output)
    # The input's SHA-256 and line count are taken beside the scoring (hashing releases the
    # GIL). A UTF-8 file's bytes are checked by the fast reader itself, which hands an
    # undecodable file to the exact reader; another encoding is checked before any row.
    fast = utf8(settings.encoding) and not is_parquet(input_path)
    early = not fast and not is_parquet(input_path)
    with Run(paths, engine="local") as run, \
            scanning(input_path, settings.encoding, check_encoding=early) as scanned:
        t = time.perf_counter()
        clean_bytes = scanned.result()[1] if early else None
        scan_seconds = time.perf_counter() - t if early else 0.0
        header, chunks = _chunks(input_path, settings, clean_bytes=bool(clean_bytes),
                                 fast=fast, contract=contract)
        check_columns(header, run_contract, rules, path=input_path,
                      delimiter=settings.delimiter)
        run.begin(input_path=str(input_path.resolve()))
        capped = rules.label_policy.sales_qualified.by_capacity
        # With a capacity, rows go to a Parquet stage first: who is inside it is known only
        # once every row is scored (see _apply_capacity).
        stage = Path(f"{paths.output}.stage")
        while True:
            out = ChunkWriter(run.temp(stage), parquet=True) if capped else \
                _output_writer(run, paths, csv_out, rules, writeback)
            rej = ChunkWriter(run.temp(paths.rejects), parquet=is_parquet(paths.rejects),
                              spreadsheet_safe=SPREADSHEET_TEXT["rejects"])
            try:
                tally = _stream(chunks, out, rej, model=model, contract=run_contract,
                                rules=rules, cutoffs=cutoffs, scored_at=scored_at,
                                scored_at_ts=scored_at_ts, delimiter=settings.delimiter,
                                on_progress=on_progress, explainer=explainer,
                                total=row_estimate(input_path))
                break
            except NeedsExactReader as why:
                logger.info("restarting with the exact CSV reader: %s", why)
                out.close_handles()
                rej.close_handles()
                # The exact reader checks each record's bytes unless the whole file decodes.
                if clean_bytes is None:
                    clean_bytes = scan(input_path, settings.encoding)[1]
                _, chunks = _chunks(input_path, settings, fast=False, clean_bytes=clean_bytes,
                                    contract=contract)
            except BaseException:
                out.close_handles()
                rej.close_handles()
                raise
        t = time.perf_counter()
        sha256, _, lines = scanned.result()
        scan_seconds += time.perf_counter() - t  # (the part not hidden behind the scoring)
        check_accounted(tally.rows_in, tally.scored, tally.rejected)
        status = reject_status(tally.rows_in, tally.rejected, settings.max_reject_rate,
                               len(tally.footer))
        empty = score_rows(pd.DataFrame(), model, run_contract, rules, cutoffs=cutoffs,
                           scored_at=scored_at)
        out.finish(empty)
        cap = None
        if capped:
            final = _output_writer(run, paths, csv_out, rules, writeback)
            cap = _apply_capacity(out.path, final, tally, rules, empty)
            out = final
        rej.finish(pd.DataFrame({c: pd.Series(dtype=object) for c in REJECT_COLUMNS}))
        manifest = build_manifest(
            status=status, paths=paths, sha256=sha256, rows_in=tally.rows_in, lines=lines,
            scored=tally.scored, rejected=tally.rejected, settings=settings,
            counts=tally.counts, has_model=model is not None, contract=contract, rules=rules,
            cutoffs=cutoffs, scored_at=scored_at, field_reasons=explainer is not None,
            typical=explainer.typical_probability() if explainer is not None else None,
            capacity=cap, footer=tally.footer,
            timings={"scan_seconds": scan_seconds, **tally.timings,
                     "total_seconds": time.perf_counter() - started},
            output_sha256=out.sha256() if status == "ok" else None)
        if writeback is not None and status == "ok":
            manifest["writeback"] = {**out.writeback.rows.section(paths.writeback),
                                     "file_sha256": out.writeback.sha256()}
        run.commit(manifest, output=status == "ok")
    if status != "ok":
        raise too_many_rejects(tally.rejected, tally.rows_in, settings.max_reject_rate,
                               paths.rejects, tally.counts["reject_reason"],
                               footer=len(tally.footer),
                               hint=scored_at_ts.hint(contract.time_column,
                                                      tally.counts["reject_reason"]))
    return manifest


def _explainer(model, contract: Contract, settings: ScoreSettings) -> Explainer | None:
    """Per-lead reasons' explainer, when asked for and the model has a reference lead."""
    if not settings.reasons or model is None:
        return None
    if contract.reference_lead is None:
        logger.warning("model %s v%s was trained before per-lead reasons existed (no "
                       "reference lead): scoring without them; retrain to get them",
                       contract.name, contract.version)
        return None
    return Explainer(model, contract.reference_lead)


def csv_text(frame: pd.DataFrame, output) -> pd.DataFrame:
    """A scored CSV's rows as the rules' ``output`` says: in people's words, or with the
    machine style only the reasons ordered and cut (when ``reasons_length`` is set)."""
    return for_people(frame, output) if output.style == "people" else \
        with_reasons(frame, output)


def spreadsheet_columns(rules: Rules) -> tuple[str, ...]:
    """The scored CSV's columns escaped for spreadsheets: the lead id, the reasons and the
    carried lead columns (a name or company can start with ``=`` as well as a reason)."""
    full = ("reasons_full",) if rules.output.full_reasons else ()
    return (*SPREADSHEET_TEXT["output"], *full, *rules.output.carry)


def _output_writer(run: Run, paths, csv_out: bool, rules: Rules,
                   writeback: WriteBack | None) -> ChunkWriter | Tee:
    """The scored file's writer: a spreadsheet-safe CSV or Parquet, into the run's
    temporary; with the write-back file's writer beside it when asked for."""
    people = csv_out and (rules.output.style == "people" or rules.output.reasons_cut
                          or rules.output.full_reasons)
    out = ChunkWriter(run.temp(paths.output), parquet=not csv_out,
                      spreadsheet_safe=spreadsheet_columns(rules) if csv_out else (),
                      transform=partial(csv_text, output=rules.output) if people else None)
    if writeback is None:
        return out
    return Tee(out, WriteBackWriter(run.temp(paths.writeback), writeback))
