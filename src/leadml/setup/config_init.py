"""A first training config for any export, from its header and its values.

``leadml config init EXPORT`` writes the config a person writes after looking at an export:
which column is the lead id, which the creation time and how it is written, where the
outcome is, and the role of every other column. Each choice is a comment with what it was
read from. What the values do not settle is not chosen: a date such as ``03/04/2026`` whose
values never show which part is the day leaves the time column to the person, naming the two
patterns; a status column none of whose values reads as converted asks for
``--positive-value``. Leaks and data health are judged afterwards by ``leadml audit``, on
the outcomes: this module reads names and values only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config import MISSING_VALUES
from leadml.data.audit import PERSONAL_NAME, personal_kind
from leadml.data.column_names import (
    CONVERTED_AT_NAME,
    CREATED_NAME,
    FOLLOW_UP_NAME,
    ID_NAME,
    LATER_DATE_NAME,
    MAX_SEQUENCE_SPREAD,
    ORDERED,
    OUTCOME_NAME,
    SEQUENCE_NAME,
    TEXT_NAME,
)
from leadml.data.values import COMMON_MARKERS, is_missing, parse_numbers, parse_times
from leadml.errors import ConfigError, LeadDataError

SAMPLE = 20_000  # distinct values per column read to tell numbers and times apart
MAX_CATEGORIES = 1_000  # more distinct values than this: not a category (the audit's bound)
MIN_TEXT_VALUES = 50  # fewer distinct values than this: a category, whatever the name says


POSITIVE = {"1", "y", "yes", "true", "won", "closed won", "converted", "customer", "success",
            "subscribed", "closed - converted", "closed-won", "closed/won"}
NEGATIVE = re.compile(r"\b(lost|not converted|unqualified|disqualified|dead|junk|rejected|"
                      r"no|false|0)\b|^closed\b", re.IGNORECASE)
OPEN = re.compile(r"\b(open|working|new|contact\w*|progress|nurtur\w*|attempt\w*|pending|"
                  r"review|engaged|qualifying|qualification|prospect\w*|discovery|demo|"
                  r"proposal|negotiation|evaluation|lead|mql|sql|opportunity|subscriber)\b",
                  re.IGNORECASE)
DAY_MONTH = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})((?:[ T].*)?)")
TIME_PARTS = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", "T%H:%M",
              "T%H:%M:%S")


@dataclass
class Column:
    """What one column of the export holds."""

    name: str
    stated: int  # leads with a value
    distinct: int
    kind: str  # number, time, day-month (ambiguous day and month), dates (several formats), text
    unique: bool  # every lead its own value, none missing
    personal: str | None = None  # leadml.data.audit.personal_kind
    time_format: str | None = None  # for kind time
    patterns: tuple[str, ...] = ()  # for kind day-month: the two readings
    marks: dict | None = None  # for kind number: the csv options it needs, if any
    words: float = 0.0  # mean words per value
    code_like: bool = False  # values such as L86824021 or 00Q5e00000AbCdE: digits, no spaces
    order_corr: float | None = None  # whole numbers: rank correlation with the file's rows
    spread: float | None = None  # whole numbers: (highest - lowest + 1) per distinct value


def _distinct(values: pd.Series) -> pd.Series:
    """The column's distinct stated values (trimmed), the first :data:`SAMPLE` of them."""
    stated = values[~is_missing(values, MISSING_VALUES)].astype(str).str.strip()
    return pd.Series(pd.unique(stated.to_numpy(dtype=object))[:SAMPLE], dtype=object)


def _numbers(text: pd.Series) -> dict | None:
    """The csv options under which every value is a number ({} for plain numbers); None."""
    for marks in ({}, {"decimal": ","}, {"thousands": ","}):
        if not parse_numbers(text, (), **marks)[1].any():
            return marks
    return None


def _time_format(name: str, text: pd.Series, numbers: bool) -> tuple[str | None, tuple]:
    """(the time_format that reads every value, or None; the two readings when day and
    month are ambiguous)."""
    if numbers:  # only a column named like a time is read as serial or epoch times
        if not re.search(r"date|time|creat|_at$", name, re.IGNORECASE):
            return None, ()
        x = pd.to_numeric(text)
        if x.between(20_000, 80_000).all() and (x % 1 != 0).any():
            return "excel", ()
        for fmt, lo, hi in (("epoch_s", 9e8, 2.5e9), ("epoch_ms", 9e11, 2.5e12)):
            if x.between(lo, hi).all():
                return fmt, ()
        return None, ()
    if parse_times(text, "iso").notna().all():
        return "iso", ()
    parts = text.str.fullmatch(DAY_MONTH.pattern)
    if not parts.all():
        return None, ()
    found = text.str.extract(DAY_MONTH.pattern)
    first, second = found[0].astype(int), found[2].astype(int)
    sep, year = found[1].iloc[0], "%Y" if len(found[3].iloc[0]) == 4 else "%y"
    readings = []
    for day_first in (True, False):
        day, month = (first, second) if day_first else (second, first)
        if (month > 12).any() or (day > 31).any():
            continue
        order = ("%d", "%m") if day_first else ("%m", "%d")
        for tail in TIME_PARTS:
            fmt = f"{order[0]}{sep}{order[1]}{sep}{year}{tail}"
            if parse_times(text, fmt).notna().all():
                readings.append(fmt)
                break
    if len(readings) == 1:
        return readings[0], ()
    return None, tuple(readings)


def _date_formats(text: pd.Series) -> tuple[str, ...]:
    """The formats that together read every value, when one alone does not: ISO 8601, and
    the day-first or month-first patterns a value's numbers settle; () otherwise.

    >>> _date_formats(pd.Series(["2026-06-30", "30/06/2026", "2026-07-01 10:00"]))
    ('iso', '%d/%m/%Y')
    """
    iso = parse_times(text, "iso").notna().to_numpy()
    rest = text[~iso]
    if iso.all() or rest.empty or not rest.str.fullmatch(DAY_MONTH.pattern).all():
        return ()
    found = rest.str.extract(DAY_MONTH.pattern)
    first, second = found[0].astype(int), found[2].astype(int)
    sep, year = found[1].iloc[0], "%Y" if len(found[3].iloc[0]) == 4 else "%y"
    day_first = bool((first > 12).any() or not (second > 12).any())
    order = ("%d", "%m") if day_first else ("%m", "%d")
    for tail in TIME_PARTS:
        fmt = f"{order[0]}{sep}{order[1]}{sep}{year}{tail}"
        if parse_times(rest, fmt).notna().all():
            return ("iso", fmt) if iso.any() else ()
    return ()


def _ordering(values: pd.Series, missing: np.ndarray) -> tuple[float | None, float | None]:
    """(rank correlation of a column of whole numbers with the file's row order, 1 when it
    rises with the rows and -1 when the file runs from the highest down; its spread: the
    range per distinct value, about 1 for an auto-number); (None, None) for other columns."""
    numbers = pd.to_numeric(values[~missing], errors="coerce")
    if len(numbers) < 10 or numbers.isna().any() or (numbers % 1 != 0).any() \
            or numbers.nunique() < 10:
        return None, None
    rows = np.flatnonzero(~missing)
    corr = float(np.corrcoef(numbers.rank().to_numpy(), rows)[0, 1])
    return corr, float((numbers.max() - numbers.min() + 1) / numbers.nunique())


def profile(frame: pd.DataFrame) -> list[Column]:
    """A :class:`Column` for each column of the export ``frame``."""
    out = []
    for name in frame.columns:
        values = frame[name]
        missing = is_missing(values, MISSING_VALUES)
        text = _distinct(values)
        stated = int((~missing).sum())
        distinct = int(values[~missing].astype(str).str.strip().nunique())
        marks = _numbers(text) if len(text) else None
        fmt, readings = _time_format(str(name), text, marks == {}) if len(text) \
            else (None, ())
        if not fmt and not readings and marks is None and len(text):
            readings = _date_formats(text)  # dates written in several formats
            kind = "dates" if readings else "text"
        else:
            kind = "time" if fmt else "day-month" if readings else \
                "number" if marks is not None else "text"
        dated = kind in ("time", "day-month", "dates")
        out.append(Column(
            name=str(name), stated=stated, distinct=distinct, kind=kind,
            unique=stated == len(values) and distinct == len(values) and len(values) > 1,
            personal=None if dated or ID_NAME.search(str(name)) and not re.search(
                PERSONAL_NAME, str(name).lower()) else  # a date or an id, not a phone
            personal_kind(str(name), values, MISSING_VALUES),
            time_format=fmt, patterns=readings, marks=marks if kind == "number" else None,
            words=float(text.str.split().str.len().mean()) if len(text) else 0.0,
            code_like=bool(len(text)) and not text.str.contains(r"\s").any()
            and bool(text.str.contains(r"\d").all()),
            **dict(zip(("order_corr", "spread"), _ordering(values, missing)
                       if marks == {} and distinct == stated else (None, None),
                       strict=True))))
    return out


def _relative(path, output) -> str:
    """``path`` as the config at ``output`` names it: relative to the config's folder when
    inside it, else absolute."""
    path, folder = Path(path).resolve(), Path(output).resolve().parent
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def _counts(values: pd.Series) -> pd.Series:
    stated = values[~is_missing(values, MISSING_VALUES)].astype(str).str.strip()
    return stated.value_counts()


@dataclass
class Outcome:
    """Where the outcome is: a flag column, or the conversion time of each lead."""

    lines: list[str]  # the config's target or outcomes section
    columns: set[str]  # the export's columns it uses
    summary: str


def _flag_outcome(frame: pd.DataFrame, column: str, positive: tuple[str, ...]) -> Outcome:
    counts = _counts(frame[column])
    shown = ", ".join(f"{_q(v)} ({n:,})" for v, n in counts.head(12).items())
    given = {p.casefold() for p in positive}
    yes = [v for v in counts.index if v.casefold() in (given or POSITIVE)]
    if not yes:
        raise ConfigError(
            f"none of the values of '{column}' reads as converted ({shown}): name them "
            "with --positive-value (repeat it for several)")
    rest = [v for v in counts.index if v not in yes]
    still_open = [v for v in rest if OPEN.search(v) and not NEGATIVE.search(v)]
    lines = ["  target:", f"    column: {_q(column)}",
             f"    positive_values: [{', '.join(map(_q, yes))}]"
             + ("  # named by --positive-value" if positive else "  # read as converted"),
             f"    # its values: {shown}"]
    summary = f"outcome '{column}' = {' / '.join(yes)}"
    lost = [v for v in rest if v not in still_open]
    if still_open and not lost:
        lines.append(f"    # {', '.join(map(_q, still_open))} read like leads still being worked, "
                     "but no value reads as lost: all count as lost until you list the lost "
                     "ones under negative_values")
    elif still_open:
        lines += [f"    negative_values: [{', '.join(map(_q, lost))}]  # read as lost",
                  f"    # {', '.join(map(_q, still_open))}: still being worked, so left out "
                  "of training (neither won nor lost yet); move a value that means lost to "
                  "negative_values"]
        summary += f", open leads ({', '.join(still_open)}) left out"
    return Outcome(lines, {column}, summary)


def _time_outcome(when: pd.Series, created: pd.Series, *, path: str, id_column: str,
                  column: Column) -> Outcome:
    """The outcomes section for conversion times ``when`` (of the leads created at
    ``created``, row for row) in ``column`` of the table at ``path``."""
    lag = ((when - created).dt.total_seconds() / 86_400).to_numpy(dtype=float, na_value=np.nan)
    lag = lag[np.isfinite(lag) & (lag >= 0)]
    p90 = float(np.quantile(lag, 0.9)) if len(lag) >= 20 else None
    horizon = max(7, int(np.ceil(p90 / 7) * 7)) if p90 is not None else None
    lines = ["  outcomes:  # a lead with a conversion time converted",
             f"    path: {_q(path)}", f"    id_column: {_q(id_column)}",
             f"    converted_at_column: {_q(column.name)}"]
    if column.time_format != "iso":
        lines.append(f"    converted_at_format: {_q(column.time_format)}  # reads every value")
    if horizon:
        lines.append(f"    horizon_days: {horizon}  # 90% of the {len(lag):,} conversions came "
                     f"within {p90:.0f} days of creation: the probability means 'converts "
                     "within this many days', and younger leads wait until they are this old. "
                     "Set it to your sales cycle")
    summary = f"outcome: conversion times in '{column.name}'" + (
        f", within {horizon} days" if horizon else "")
    return Outcome(lines, {column.name}, summary)


def _times(frame: pd.DataFrame, column: Column) -> pd.Series:
    values = frame[column.name]
    return parse_times(values.where(~is_missing(values, MISSING_VALUES), None),
                       column.time_format)


def _outcome_column(cols: list[Column], path, id_col, time_col) -> Column:
    """The export's one column named like the outcome: a conversion time (with an id and a
    creation time), else a flag or status column (the binary one among several)."""
    dated = [c for c in cols if c.kind == "time" and CONVERTED_AT_NAME.search(c.name)
             and c is not time_col]
    if len(dated) == 1 and id_col is not None and time_col is not None \
            and time_col.kind == "time":
        return dated[0]
    flags = [c for c in cols if c.kind != "time" and OUTCOME_NAME.search(c.name)
             and 2 <= c.distinct <= 20 and c is not id_col]
    binary = [c for c in flags if c.distinct == 2]
    if len(flags) == 1 or len(binary) == 1:
        return flags[0] if len(flags) == 1 else binary[0]
    named = [c.name for c in (*dated, *flags)]
    raise ConfigError(
        f"cannot tell which column of '{path}' is the outcome ("
        + (f"candidates: {named}" if named else "no column is named like one: converted, "
           "won, status, stage, Became a Customer Date")
        + "): name it with --target, or pass a table of conversions with --outcomes")


def _table_outcome(frame: pd.DataFrame, table: pd.DataFrame, table_path, output, id_col,
                   time_col, target: str | None) -> Outcome:
    """The outcomes section for a separate table of conversions (lead id, conversion time)."""
    if id_col is None or id_col.name not in table.columns:
        raise ConfigError(
            f"the outcomes table '{table_path}' must name leads by the export's id column"
            + (f" '{id_col.name}'" if id_col else " (the export has none: no column holds a "
               "different value for every lead)") + f"; it has {list(table.columns)}")
    found = [c for c in profile(table) if c.kind == "time" and c.name != id_col.name]
    chosen = [c for c in found if c.name == target] if target else found
    if len(chosen) != 1:
        raise ConfigError(
            f"the outcomes table '{table_path}' has {len(found)} column(s) of times "
            f"{[c.name for c in found]}: name the conversion time with --target")
    when = pd.Series(_times(table, chosen[0]).to_numpy(),
                     index=table[id_col.name].astype(str).str.strip())
    ids = frame[id_col.name].astype(str).str.strip()
    created = _times(frame, time_col) if time_col is not None and time_col.kind == "time" \
        else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    matched = pd.Series(when[~when.index.duplicated()].reindex(ids).to_numpy(),
                        index=frame.index)
    rel = _relative(table_path, output)
    return _time_outcome(matched, created, path=rel, id_column=id_col.name, column=chosen[0])


def _role(c: Column, rows: int) -> tuple[str, str]:
    """(role, why) of a column that is neither the id, the time nor the outcome."""
    if c.personal:
        return "personal", f"personal data: {c.personal}"
    if c.stated == 0:
        return "excluded", "always empty"
    if c.distinct <= 1:
        return "excluded", "one value: it carries no information"
    if c.kind == "dates":
        return "excluded", (f"dates in several formats ({', '.join(c.patterns)}): one set "
                            "after creation can leak the outcome")
    if c.kind in ("time", "day-month"):
        return "excluded", "a date: one set after creation can leak the outcome"
    if OUTCOME_NAME.search(c.name):
        return "excluded", ("named like an outcome or a stage reached later; a feature "
                            "only if it is known when the lead is created")
    if FOLLOW_UP_NAME.search(c.name):
        return "excluded", ("named like a field sales fills in during follow-up; a feature "
                            "only if it is known when the lead is created")
    if c.kind != "number" and c.distinct >= 0.95 * rows or c.unique and ID_NAME.search(c.name):
        return "excluded", "a different value for nearly every lead: an id"
    if c.kind == "number":
        return "numeric", f"numbers ({c.distinct:,} distinct)"
    if c.distinct >= MIN_TEXT_VALUES and (TEXT_NAME.search(c.name)
                                          or c.distinct > MAX_CATEGORIES and c.words >= 2):
        return "text", f"words ({c.distinct:,} distinct values): each word a feature"
    if c.distinct > MAX_CATEGORIES:
        return "excluded", (f"{c.distinct:,} distinct values: too many for categories; "
                            "under text if it is words")
    return "categorical", f"{c.distinct:,} values"


def draft(frame: pd.DataFrame, path: Path, output: Path, *, target: str | None = None,
          positive: tuple[str, ...] = (), outcomes: pd.DataFrame | None = None,
          outcomes_path: Path | None = None, delimiter: str = ",",
          encoding: str = "utf-8") -> tuple[str, list[str]]:
    """The YAML text of a first training config for the export ``frame`` read from ``path``,
    to be written at ``output``, and a summary line per choice.

    ``target``: the outcome column (a flag or status column, or the conversion time); by
    default the one column named like an outcome (``converted``, ``won``, ``status``,
    ``stage``, ``Became a Customer Date``). ``outcomes``: a table of converted leads (read
    from ``outcomes_path``) with the export's id column and a conversion time (``target``
    names it when it has several)."""
    if len(frame) < 2:
        raise LeadDataError(f"'{path}' has {len(frame)} lead(s): a config needs an export "
                            "of past leads and their outcomes")
    if target is not None and outcomes is None and target not in frame.columns:
        raise ConfigError(f"--target '{target}' is not a column of '{path}'; it has "
                          f"{list(frame.columns)}")
    cols = profile(frame)
    rel = _relative(path, output)
    id_col, time_col = _id_and_time(cols)
    outcome = _outcome(frame, cols, path, rel, output, id_col, time_col, target=target,
                       positive=positive, outcomes=outcomes, outcomes_path=outcomes_path)
    lines = [f"# Training config written by `leadml config init` from {Path(path).name} "
             f"({len(frame):,} leads).",
             "# Every choice below was read from column names and values: check each one, "
             "then run",
             f"# `leadml audit --config {Path(output).name}`, which judges leaks and data "
             "health on the outcomes.", "", "dataset:", f"  path: {_q(rel)}"]
    more, notes = _id_and_time_lines(id_col, time_col)
    notes = [outcome.summary, *notes]
    lines += more + outcome.lines
    # (an ambiguous date, not the time column, is listed as an excluded date)
    taken = {c.name for c in (id_col, time_col)
             if c is not None and c.kind not in ("day-month", "dates")} | outcome.columns
    more, note, marks = _column_lines(cols, taken, len(frame), path)
    lines += more
    notes += note
    lines += _reading_lines(frame, path, delimiter=delimiter, encoding=encoding, marks=marks)
    return "\n".join(lines), notes


def _id_and_time(cols: list) -> tuple:
    """The id column (unique, named like an id or holding codes) and the creation time: a
    date the values settle, else an auto-number (a sequence), else a date they do not."""
    ids = [c for c in cols if c.unique and c.kind != "time" and not c.personal]
    id_col = next((c for c in ids if ID_NAME.search(c.name)),
                  next((c for c in ids if c.kind == "text" and c.code_like), None))
    times = [c for c in cols if c.kind in ("time", "day-month", "dates") and c is not id_col
             and not CONVERTED_AT_NAME.search(c.name) and not LATER_DATE_NAME.search(c.name)]
    time_col = next((c for c in times if CREATED_NAME.search(c.name)),
                    times[0] if len(times) == 1 else None)
    if time_col is None or time_col.kind != "time":
        time_col = _sequence(cols) or time_col
    return id_col, time_col


def _sequence(cols: list) -> Column | None:
    """A unique column of whole numbers ordered with the rows (rising or falling), or named
    like an auto-number and counting like one (a few numbers per lead, not random ids): the
    order leads were created in."""
    found = [c for c in cols if c.unique and c.order_corr is not None and not c.personal
             and (abs(c.order_corr) >= ORDERED
                  or SEQUENCE_NAME.search(c.name) and c.spread <= MAX_SEQUENCE_SPREAD)]
    return max(found, key=lambda c: (bool(SEQUENCE_NAME.search(c.name)), abs(c.order_corr)),
               default=None)


def _outcome(frame: pd.DataFrame, cols: list, path: Path, rel: str, output: Path, id_col,
             time_col, *, target: str | None, positive: tuple[str, ...],
             outcomes: pd.DataFrame | None, outcomes_path: Path | None):
    """Where the outcome is: a flag or status column, conversion times, or a table."""
    by_name = {c.name: c for c in cols}
    if outcomes is not None:
        outcome = _table_outcome(frame, outcomes, outcomes_path, output, id_col, time_col,
                                 target)
    else:
        chosen = by_name[target] if target is not None else \
            _outcome_column(cols, path, id_col, time_col)
        if chosen.kind == "time":
            if id_col is None or time_col is None or time_col.kind != "time":
                raise ConfigError(
                    f"'{chosen.name}' holds times: conversion times need a lead id and a "
                    "creation time the values settle; give the outcome as a flag column "
                    "with --target, or add them to the export")
            outcome = _time_outcome(_times(frame, chosen), _times(frame, time_col), path=rel,
                                    id_column=id_col.name, column=chosen)
        else:
            outcome = _flag_outcome(frame, chosen.name, positive)
    return outcome


def _id_and_time_lines(id_col, time_col) -> tuple[list[str], list[str]]:
    """The config lines and summary notes of the id and time columns."""
    lines: list[str] = []
    notes: list[str] = []
    if id_col is not None:
        lines.append(f"  id_column: {_q(id_col.name)}  # a different value for every lead")
        notes.append(f"id '{id_col.name}'")
    else:
        lines.append("  id_column: null  # no column holds a different value for every "
                     "lead: the record number is the id")
        notes.append("no id column (the record number)")
    if time_col is not None and time_col.kind == "number":
        runs = "rises with the rows" if time_col.order_corr >= ORDERED else \
            "falls with the rows: the export runs newest first" \
            if time_col.order_corr <= -ORDERED else "is named like an auto-number"
        lines += [f"  time_column: {_q(time_col.name)}  # no creation date: this auto-number "
                  f"orders the leads (it {runs})",
                  "  time_format: sequence     # the order leads were created in, not a clock"]
        notes.append(f"time order '{time_col.name}' (a sequence: it {runs})")
    elif time_col is not None and time_col.kind == "time":
        lines.append(f"  time_column: {_q(time_col.name)}  # when each lead was created")
        if time_col.time_format != "iso":
            lines.append(f"  time_format: {_q(time_col.time_format)}  # reads every value")
        notes.append(f"time '{time_col.name}' ({time_col.time_format})")
    else:
        lines.append("  time_column: null  # rows are taken in file order as time order: "
                     "check the export is sorted by creation")
        if time_col is not None and time_col.kind == "dates":
            lines.append(f"  # '{time_col.name}' holds dates in several formats "
                         f"({', '.join(map(_q, time_col.patterns))}): export them in one "
                         "format, then set time_column to it")
            notes.append(f"no time column: '{time_col.name}' mixes date formats "
                         f"({', '.join(time_col.patterns)})")
        elif time_col is not None:  # day and month ambiguous
            lines.append(f"  # '{time_col.name}' holds dates whose values never show which "
                         f"part is the day: set time_column to it and time_format to "
                         f"{' or '.join(map(_q, time_col.patterns))}")
            notes.append(f"no time column: day and month of '{time_col.name}' are ambiguous")
        else:
            notes.append("no time column (file order)")
    return lines, notes


def _column_lines(cols: list, taken: set[str], rows: int, path: Path
                  ) -> tuple[list[str], list[str], dict]:
    """Every other column's role with its reason; the number format the numbers share."""
    notes: list[str] = []
    lines: list[str] = []
    roles: dict[str, list[tuple[str, str]]] = {}
    marks: dict = {}
    for c in cols:
        if c.name in taken:
            continue
        role, why = _role(c, rows)
        if role == "numeric" and c.marks:
            if marks and c.marks != marks:
                role, why = "excluded", (f"numbers written with {c.marks}, unlike the other "
                                         f"columns' {marks}: export them alike")
            else:
                marks = c.marks
        roles.setdefault(role, []).append((c.name, why))
    if not any(roles.get(r) for r in ("numeric", "categorical", "text")):
        raise LeadDataError(f"no column of '{path}' can be a feature: every one is an id, a "
                            "date, the outcome, personal data or constant")
    lines.append("  columns:")
    for role in ("numeric", "categorical", "text", "excluded", "personal"):
        if roles.get(role):
            lines.append(f"    {role}:")
            lines += [f"      - {_q(name)}  # {why}" for name, why in roles[role]]
    notes.append(", ".join(f"{len(roles[r])} {r}" for r in
                           ("numeric", "categorical", "text", "excluded", "personal")
                           if roles.get(r)))
    return lines, notes, marks


def _reading_lines(frame: pd.DataFrame, path: Path, *, delimiter: str, encoding: str,
                   marks: dict) -> list[str]:
    """missing_values with the placeholders found, the CSV options and the registry."""
    lines: list[str] = []
    found = sorted({v for c in frame.columns for v in _counts(frame[c]).index[:50]
                    if v.casefold() in COMMON_MARKERS and v not in MISSING_VALUES})
    lines.append(f"  missing_values: [{', '.join(map(_q, (*MISSING_VALUES, *found)))}]"
                 + (f"  # {', '.join(map(_q, found))} found in the export" if found else ""))
    csv = {**({"delimiter": delimiter} if delimiter != "," else {}),
           **({"encoding": encoding} if encoding != "utf-8" else {}), **marks}
    if csv:
        lines.append("  csv:")
        lines += [f"    {k}: {_q(v)}" for k, v in csv.items()]
    stem = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-") or "export"
    lines += ["", "registry:", f"  model_name: leadml-{stem}",
              f"  experiment: leadml-{stem}", ""]
    return lines
