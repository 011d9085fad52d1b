"""Validation where lead data enters, and its error type.

Every check says what is wrong in the user's terms and how to fix it: the missing and
unexpected columns side by side, the rows and values that failed, and the config key
that changes the behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leadml.config import ConfigError, DatasetConfig, TrainConfig, config_line

MAX_SHOWN = 5
RECORD_ID = "_record"  # the id column when the config has none: the record number


class LeadDataError(ValueError):
    """Lead data that does not match what the config or the model expects."""


@dataclass(frozen=True)
class Contract:
    """A registered model and the columns it expects, read back from its metadata."""

    name: str
    version: str
    uri: str
    id_column: str | None
    time_column: str | None
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    text: tuple[str, ...]
    missing_values: tuple[str, ...]
    reference_quantiles: tuple[float, ...]
    reference_lead: dict[str, Any] | None = None
    field_reference: dict[str, Any] | None = None  # each field in the newest window (drift)
    numeric_ranges: dict[str, tuple[float, float]] | None = None  # (min, max) in training
    time_format: str = "iso"  # how the time column was read in training (never guessed)
    horizon_days: float | None = None  # the probability is "converts within N days"
    decimal: str = "."  # the decimal mark of numbers in the export ("," : 1.234,5)
    thousands: str | None = None  # their thousands separator ("," : 12,500.00)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.text]



#: A long number as a spreadsheet shows it (1.23457E+11): its last digits are gone.
ROUNDED_NUMBER = re.compile(r"[+-]?\d(?:[.,]\d+)?E\+?\d+", re.IGNORECASE)


def rounded_ids_hint(ids: pd.Series) -> str:
    r"""What to do when most of ``ids`` (repeated ones) are long numbers a spreadsheet
    rounded, else ''.

    >>> rounded_ids_hint(pd.Series(["1.23457E+11", "1.23457E+11"]))[:36]
    '\nThey are long numbers a spreadsheet'
    """
    text = ids.astype(str).str.strip()
    if not len(text) or text.map(lambda v: bool(ROUNDED_NUMBER.fullmatch(v))).mean() < 0.5:
        return ""
    return ("\nThey are long numbers a spreadsheet rounded to scientific notation (1.23457E+11): "
            "leads that differed in the last digits now share an id. Export the id column as "
            "text (format the cells as text before saving, or export from the CRM directly).")


def repeated_header(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows that repeat the header line (two exports joined with ``cat``): the first of
    ``columns`` holds its own name, and so do most of the others.

    >>> repeated_header(pd.DataFrame({"id": ["a", "id"], "x": ["1", "x"]}), ["id", "x"]).tolist()
    [False, True]
    """
    if not columns:
        return np.zeros(len(frame), bool)
    again = np.array(frame[columns[0]].astype(str).str.strip() == columns[0], dtype=bool)
    if again.any():  # (the other columns, only where the first one repeats its name)
        rows = frame[again]
        named = np.sum([(rows[c].astype(str).str.strip() == c).to_numpy() for c in columns],
                       axis=0)
        again[again] = named * 2 > len(columns)
    return again


def column_difference(expected: list[str], found: list[str]) -> str:
    """Expected and found columns, line by line, marking what is missing or extra; a
    missing column the file seems to name otherwise (case, spaces, punctuation or a typo)
    is shown beside that name.

    >>> print(column_difference(["id", "budget"], ["id", "budgte"]))
      missing    budget  (the file has 'budgte')
      unexpected budgte
    >>> print(column_difference(["lead_id"], ["Lead ID", "Notes"]))
      missing    lead_id  (the file has 'Lead ID')
      unexpected Lead ID
      unexpected Notes
    """
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    twins = named_otherwise(missing, extra)
    lines = [f"  missing    {c}" + (f"  (the file has '{twins[c]}')" if c in twins else "")
             for c in missing] + [f"  unexpected {c}" for c in extra]
    return "\n".join(lines)


def named_otherwise(missing: list[str], extra: list[str]) -> dict[str, str]:
    """Per missing column, the file's column that seems to be it: the same letters and
    digits in another case or spacing ('Lead ID' for 'lead_id'), else a close spelling."""
    import difflib

    def plain(name: str) -> str:
        return re.sub(r"[\W_]+", "", name.casefold())

    by_plain: dict[str, str] = {}
    for c in extra:
        by_plain.setdefault(plain(c), c)
    twins = {}
    for c in missing:
        close = difflib.get_close_matches(c, extra, n=1, cutoff=0.8)
        twin = by_plain.get(plain(c)) or (close[0] if close else None)
        if twin is not None:
            twins[c] = twin
    return twins


def require_columns(found: list[str], required: list[str], *, what: str, fix: str) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        raise LeadDataError(
            f"{what} is missing {len(missing)} column(s) {missing}.\n"
            f"{column_difference(required, found)}\n{fix}"
        )


def _examples(frame: pd.DataFrame, mask: np.ndarray, column: str, id_column: str) -> str:
    rows = np.flatnonzero(mask)[:MAX_SHOWN]
    shown = [
        f"row {r + 2} (id {frame[id_column].iloc[r]!r}): {column}={frame[column].iloc[r]!r}"
        if id_column in frame.columns
        else f"row {r + 2}: {column}={frame[column].iloc[r]!r}"
        for r in rows
    ]
    more = int(mask.sum()) - len(rows)
    return "\n".join(f"  {s}" for s in shown) + (f"\n  ... and {more} more" if more else "")


def is_missing(values: pd.Series, markers: tuple[str, ...]) -> np.ndarray:
    """True where a raw value is empty or a configured placeholder.

    >>> is_missing(pd.Series(["a", " Select ", None, ""]), ("", "Select")).tolist()
    [False, True, True, True]
    """
    if values.dtype.kind in "iufbM":
        return values.isna().to_numpy()
    if isinstance(values.dtype, pd.StringDtype):  # Arrow strings: stay in Arrow
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(values)
        hit = pc.is_in(pc.utf8_trim_whitespace(arr), value_set=pa.array(list(markers), pa.string()))
        return pc.or_kleene(pc.is_null(arr), hit).fill_null(True).to_numpy(zero_copy_only=False)
    text = values.astype("object")
    absent = text.isna().to_numpy()
    stripped = text.where(~absent, "").astype(str).str.strip()
    return absent | stripped.isin(set(markers)).to_numpy()


NAN_SPELLINGS = ("nan", "+nan", "-nan")  # compared in lower case: NaN, -NaN, nAn, ...


def _nan_spelled(values: pd.Series) -> np.ndarray:
    """True where a text value spells NaN in any case or sign: a missing number."""
    if isinstance(values.dtype, pd.StringDtype):
        import pyarrow as pa
        import pyarrow.compute as pc

        lower = pc.utf8_lower(pc.utf8_trim_whitespace(pa.array(values)))
        return pc.is_in(lower, value_set=pa.array(NAN_SPELLINGS)).fill_null(False) \
            .to_numpy(zero_copy_only=False)
    text = values.astype("object")
    return text.map(lambda v: isinstance(v, str) and v.strip().lower() in NAN_SPELLINGS) \
        .to_numpy(dtype=bool)


_SPACES = "\u00a0\u202f "  # (no-break spaces too)
_COMMA_GROUPS = "." + _SPACES + "'"  # how numbers with a decimal comma group thousands


def _number(groups: str, point: str) -> re.Pattern:
    """A number whose thousands are grouped by one of ``groups`` (or not at all) and whose
    decimal mark is ``point``."""
    g, p = re.escape(groups), re.escape(point)
    return re.compile(rf"[+-]?(?:\d{{1,3}}(?:[{g}]\d{{3}})+|\d+)(?:{p}\d+)?")


# A number written with a decimal comma: 13.300,50  1 234,5  -0,25  1.500  12
COMMA_NUMBER = _number(_COMMA_GROUPS, ",")


# A number as a spreadsheet or a CRM report formats it: a currency sign or code, thousands
# grouped by commas: $12,500.00  USD 12,500  12,500.00 EUR  1,234,567
FORMATTED_NUMBER = re.compile(r"(?:[$€£¥]|[A-Z]{3})?\s*[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"
                              r"\s*(?:[$€£¥]|[A-Z]{3})?|(?:[$€£¥]|[A-Z]{3})\s*[+-]?[\d.,]+"
                              r"|[+-]?[\d.,]+\s*(?:[$€£¥]|[A-Z]{3})"
                              r"|\(\s*(?:[$€£¥]|[A-Z]{3})?\s*\d[\d.,]*\s*\)"  # (1,234): -1234
                              r"|[+-]?\d[\d.,]*\s?%")  # 45%


_GROUPED_POINT = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


#: Values that mean "no value" in CRM exports, in lower case; found but not listed in
#: dataset.missing_values (in the same spelling), they are a category of their own.
COMMON_MARKERS = frozenset({
    "unknown", "n/a", "na", "none", "null", "nan", "select", "-", "--", "?", "not provided",
    "not specified", "(blank)", "blank", "missing", "undefined", "tbd", "#n/a", "<na>",
})

#: What a spreadsheet writes in a cell whose formula failed (Excel, LibreOffice, Sheets).
SPREADSHEET_ERROR = re.compile(r"#(?:N/A|VALUE!|DIV/0!|REF!|NAME\?|NUM!|NULL!|SPILL!|CALC!|"
                               r"FIELD!|BLOCKED!|CONNECT!|BUSY!|UNKNOWN!|GETTING_DATA|ERROR!?)",
                               re.IGNORECASE)


def number_looks(bad: pd.Series, decimal: str) -> pd.Series:
    """What each value that is not a number looks like: ``"spreadsheet error"`` (#VALUE!,
    #DIV/0!: a formula failed), ``"placeholder"`` (NULL, unknown: "no value" in a spelling
    not listed in dataset.missing_values), else what most of the other values look like:
    ``"decimal comma"`` (1.234,5 while the decimal mark is '.'), ``"grouped"`` (12,500.00
    while no thousands separator is set), ``"formatted"`` ($12,500.00, USD 900), or None.

    >>> number_looks(pd.Series(["13.300,50", "0,5", "NULL", "#DIV/0!"]), ".").tolist()
    ['decimal comma', 'decimal comma', 'placeholder', 'spreadsheet error']
    >>> number_looks(pd.Series(["0,5"]), ",").tolist(), number_looks(pd.Series(["x"]), ".").tolist()
    ([None], [None])
    >>> number_looks(pd.Series(["USD 12,500.00", "$900", "x"]), ".").tolist()
    ['formatted', 'formatted', 'formatted']
    >>> number_looks(pd.Series(["12,500.00", "1,234,567"]), ".").tolist()
    ['grouped', 'grouped']
    >>> number_looks(pd.Series(["(1,234.00)", "45%"]), ".").tolist()
    ['formatted', 'formatted']
    """
    text = bad.astype(str).str.strip()
    error = text.map(lambda v: bool(SPREADSHEET_ERROR.fullmatch(v))).to_numpy(dtype=bool)
    marker = text.str.lower().isin(COMMON_MARKERS).to_numpy() & ~error
    looks = np.full(len(text), _number_look(text[~error & ~marker], decimal), dtype=object)
    looks[error], looks[marker] = "spreadsheet error", "placeholder"
    return pd.Series(looks, index=bad.index, dtype=object)


def _number_look(text: pd.Series, decimal: str) -> str | None:
    """What most of ``text`` (values that are not numbers) looks like, see :func:`number_looks`."""
    if not len(text):
        return None
    if decimal != "," and text.map(
            lambda v: "," in v and bool(COMMA_NUMBER.fullmatch(v))).mean() >= 0.5:
        return "decimal comma"
    if decimal == "." and text.map(lambda v: bool(_GROUPED_POINT.fullmatch(v))).mean() >= 0.5:
        return "grouped"
    if text.map(lambda v: bool(FORMATTED_NUMBER.fullmatch(v))).mean() >= 0.5:
        return "formatted"
    return None


_LOOKS = {"spreadsheet error": "\nThey are spreadsheet error values (#VALUE!, #DIV/0!): a "
                               "formula failed where the export was made; fix it there, or "
                               "list them in dataset.missing_values to read them as missing.",
          "placeholder": "\nThey look like placeholders for no value: list them in "
                         "dataset.missing_values as the file spells them (compared exactly: "
                         "'NULL' and 'null' are two entries).",
          "decimal comma": "\nThey look like numbers written with a decimal comma (1.234,5): "
                           "set dataset.csv.decimal: ','.",
          "grouped": "\nThey look like numbers with thousands separators (12,500.00): set "
                     "dataset.csv.thousands: ','.",
          "formatted": "\nThey look like formatted numbers (a currency, thousands "
                       "separators, a percent sign, (1,234) for a negative): export the column "
                       "as plain numbers (a CRM report's unformatted or 'details only' "
                       "export)."}


def plain_numbers(values: pd.Series, decimal: str = ".", thousands: str | None = None
                  ) -> pd.Series:
    r"""``values`` with their numbers as Python reads them, given the export's marks: a
    decimal comma (thousands grouped by points, spaces or apostrophes), or ``thousands``
    between groups of three digits of numbers with a decimal point. A value holding a mark
    any other way is made unreadable: it is refused, never guessed ('1.5' in an export with
    decimal commas, '1,5' with thousands commas). Anything else (plain numbers, NaN
    spellings, placeholders, missing) is left as it is, and so is every value when the
    marks are the default ones.

    >>> plain_numbers(pd.Series(["13.300,50", "1 234,5", "-0,25", "1.500", "12", "1.5",
    ...                          "NaN", None]), decimal=",").tolist()
    ['13300.50', '1234.5', '-0.25', '1500', '12', '\x001.5', 'NaN', nan]
    >>> plain_numbers(pd.Series(["12,500.00", "1,234,567", "-1,000", "12.5", "1,5", "12,50"]),
    ...               thousands=",").tolist()
    ['12500.00', '1234567', '-1000', '12.5', '\x001,5', '\x0012,50']
    """
    if decimal == ",":
        groups, point, pattern = _COMMA_GROUPS, ",", COMMA_NUMBER
    elif thousands:
        groups, point = _SPACES if thousands == " " else thousands, "."
        pattern = _number(groups, point)
    else:
        return values
    marks = set(groups) | ({point} - {"."})  # a value holding none is left alone
    out = values.astype(object)
    for i, v in enumerate(out.to_numpy()):
        if not isinstance(v, str) or marks.isdisjoint(v):
            continue
        t = v.strip()
        out.iat[i] = t.translate({ord(c): None for c in groups}).replace(point, ".") \
            if pattern.fullmatch(t) else "\x00" + v
    return out


def parse_numbers(values: pd.Series, markers: tuple[str, ...], *, decimal: str = ".",
                  thousands: str | None = None) -> tuple[pd.Series, np.ndarray]:
    """Numbers from raw values, and a mask of values that are neither numbers nor missing.

    One reading of every value, whichever path a chunk takes: a value is a number when
    Python's ``float`` reads it (after trimming spaces); NaN in any spelling is missing (how
    pandas and spreadsheets write a missing number); infinite values are bad (no lead has
    an infinite budget). Each distinct value is read once; the Arrow cast is only a faster
    way to the same answer, used when it reads every distinct value of the chunk.

    >>> numbers, bad = parse_numbers(pd.Series(["1.5", " -nan", "NaN", "inf", "x", ""]), ("",))
    >>> numbers.tolist()[:1], bad.tolist()
    ([1.5], [False, False, False, True, True, False])

    With ``decimal=","`` (an export from a spreadsheet in a German or French locale),
    numbers are read as :func:`plain_numbers` writes them:

    >>> parse_numbers(pd.Series(["13.300,50", "0,5", "1.5"]), ("",), decimal=",")[0].tolist()
    [13300.5, 0.5, nan]

    With ``thousands=","`` (a spreadsheet's formatted numbers): ``12,500.00`` is 12500.
    """
    if values.dtype.kind in "iufb":
        numbers = values.astype("float64")
        return numbers, ~np.isfinite(numbers.to_numpy()) & numbers.notna().to_numpy()
    # Each distinct value read once (a column of counts repeats a few dozen), code -1
    # (a missing value) reading as missing.
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    numbers, bad = _parse_distinct(pd.Series(uniques, dtype=values.dtype), markers, decimal,
                                   thousands)
    return (pd.Series(np.append(numbers.to_numpy(), np.nan)[codes], index=values.index),
            np.append(bad, False)[codes])


def _parse_distinct(values: pd.Series, markers: tuple[str, ...], decimal: str = ".",
                    thousands: str | None = None) -> tuple[pd.Series, np.ndarray]:
    """:func:`parse_numbers` of distinct values."""
    missing = is_missing(values, markers) | _nan_spelled(values)
    if decimal != "." or thousands:
        values = pd.Series(plain_numbers(values, decimal, thousands), dtype=values.dtype,
                           index=values.index)
    if isinstance(values.dtype, pd.StringDtype):  # fast path: one Arrow cast if all parse
        import pyarrow as pa
        import pyarrow.compute as pc

        trimmed = pc.utf8_trim_whitespace(pa.array(values))
        try:
            cast = pc.cast(pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), trimmed),
                           pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # some value is not a number: the pandas path below finds which
        else:
            numbers = pd.Series(cast.to_numpy(zero_copy_only=False), index=values.index)
            return numbers, np.isinf(numbers.to_numpy())
    numbers = pd.to_numeric(values.astype("object").where(~missing, np.nan), errors="coerce")
    bad = (~missing & numbers.isna().to_numpy()) | np.isinf(numbers.to_numpy(dtype="float64"))
    return numbers.astype("float64"), bad


TIME_FORMATS = ("iso", "epoch_s", "epoch_ms", "excel", "sequence")  # or a strftime pattern
#: Day 0 of spreadsheet serial dates (Excel's 1900 date system, LibreOffice, Google Sheets):
#: 45123.5 is 2023-07-16 12:00.
SERIAL_EPOCH = pd.Timestamp("1899-12-30", tz="UTC")
_ISO = (r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
        r"(?:Z|[+-]\d{2}(?::?\d{2})?)?$")


def parse_times(values: pd.Series, time_format: str = "iso") -> pd.Series:
    """The lead times as ``time_format`` declares them, never guessed; a value not in that
    format is NaT (NaN for ``sequence``), for the caller to report or reject.

    ``iso``: ISO 8601 dates or times (``2026-06-01``, ``2026-06-01T10:00:00+02:00``), as
    UTC; a ``strftime`` pattern (``%d/%m/%Y``): exactly that; ``epoch_s``, ``epoch_ms``:
    seconds or milliseconds since 1970 (UTC); ``excel``: a spreadsheet's serial date, days
    since 1899-12-30 with the time as the fraction (to the second); ``sequence``: an
    increasing number such as an auto-number lead id, returned as floats.

    >>> parse_times(pd.Series(["2026-04-03", "660728", "03/04/2026"])).dt.day.tolist()
    [3.0, nan, nan]
    >>> parse_times(pd.Series(["03/04/2026"]), "%d/%m/%Y").dt.month.tolist()
    [4]
    >>> parse_times(pd.Series(["1751234567"]), "epoch_s").dt.year.tolist()
    [2025]
    >>> parse_times(pd.Series(["45123.520833333", "45123"]), "excel").astype(str).tolist()
    ['2023-07-16 12:30:00+00:00', '2023-07-16 00:00:00+00:00']
    """
    if time_format == "sequence":
        return pd.Series(parse_numbers(values, ())[0].to_numpy(), index=values.index)
    if time_format in ("epoch_s", "epoch_ms"):
        numbers = parse_numbers(values, ())[0]
        unit = 1 if time_format == "epoch_s" else 1000
        sane = numbers.abs() < 1e11 * unit  # about year 5000: beyond is not a time
        return pd.to_datetime(numbers.where(sane), unit="s" if unit == 1 else "ms",
                              utc=True, errors="coerce")
    if time_format == "excel":
        numbers = parse_numbers(values, ())[0]
        days = numbers.where((numbers > 0) & (numbers < 2958466))  # to 9999-12-31
        return (SERIAL_EPOCH + pd.to_timedelta(days, unit="D")).dt.round("s")
    if pd.api.types.is_datetime64_any_dtype(values):  # Parquet timestamps: already times
        return pd.to_datetime(values, utc=True)
    if time_format == "iso" and isinstance(values.dtype, pd.StringDtype) \
            and (fast := _naive_iso_in_arrow(values)) is not None:
        return fast
    text = values.astype("string").str.strip()
    if time_format == "iso":
        text = text.where(text.str.match(_ISO).fillna(False).astype(bool))
        return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    return pd.to_datetime(text, format=time_format, errors="coerce", utc=True)


def _naive_iso_in_arrow(values: pd.Series) -> pd.Series | None:
    """``parse_times(values, "iso")`` in Arrow when every stated value is an ISO 8601 time
    without a zone, to the microsecond (what most exports write), else None: the same
    times and unit as pandas gives them, for a fraction of the time. Anything else (zones,
    finer fractions, unreadable values) goes the pandas way."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pa.array(values))
    if text.null_count == len(text) or not pc.all(pc.match_substring_regex(text, _ISO)).as_py():
        return None
    try:
        times = pc.cast(text, pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.Series(times.to_numpy(zero_copy_only=False), index=values.index) \
        .dt.tz_localize("UTC")


def time_format_hint(values: pd.Series, time_format: str) -> str:
    """What the unreadable time values look like, and the ``time_format`` that reads them.

    >>> time_format_hint(pd.Series(["660728", "660729"]), "iso")[:40]
    'they are whole numbers: if they are seco'
    """
    text = values.dropna().astype(str).str.strip()
    text = text[text != ""]
    if not len(text):
        return ""
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all() and numbers.between(20_000, 80_000).all() and \
            (numbers % 1 != 0).any():
        return ("they look like a spreadsheet's serial dates (days since 1899-12-30, the "
                "time as the fraction: 45123.5 is 2023-07-16 12:00): set time_format: excel")
    if text.str.fullmatch(r"-?\d+(?:\.\d+)?").all():
        return ("they are whole numbers: if they are seconds or milliseconds since 1970 set "
                "time_format: epoch_s or epoch_ms; if they only order the leads (an "
                "auto-number id) set time_format: sequence")
    if text.str.fullmatch(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?:[ T].*)?").all():
        return ("day and month are ambiguous here (03/04/2025 is 3 April or March 4), and "
                "leadml does not guess: set time_format to the export's pattern, e.g. "
                "'%d/%m/%Y' or '%m/%d/%Y'")
    return (f"they are not in time_format {time_format!r}: set it to iso, epoch_s, epoch_ms, "
            "sequence or the export's strftime pattern (e.g. '%Y/%m/%d %H:%M')")


def probability_meaning(horizon_days: float | None) -> str:
    """What a leadml probability means, for the model card, the report and the manifest.

    >>> probability_meaning(90)
    'the probability that a lead converts within 90 days of its creation'
    """
    if horizon_days is None:
        return "the probability that a lead converts (as the history records conversions)"
    return f"the probability that a lead converts within {horizon_days:g} days of its creation"


@dataclass(frozen=True)
class History:
    """Validated lead history in time order, ready to split."""

    features: pd.DataFrame  # every input column as read, but the target; models pick theirs
    target: np.ndarray  # 0/1 (converted within horizon_days, when the config sets one)
    time: pd.Series  # creation time, or row number when the config says row order
    ids: pd.Series
    horizon_days: float | None = None
    as_of: pd.Timestamp | None = None  # the export's time, when a horizon is set
    unlabelled: int = 0  # leads younger than the horizon at as_of: left out, counted
    open_leads: int = 0  # outcome neither a positive nor a negative value: left out, counted
    #: each value of the target column as written (lower case, trimmed) and its leads
    outcome_values: dict[str, int] | None = None


def read_conversion_times(when: pd.Series, ds: DatasetConfig, where: str) -> pd.Series:
    """Conversion times as ``converted_at_format`` declares them (NaT where none is
    stated). A stated time that does not read stops training: a lead is never counted lost,
    or late, because its date could not be read."""
    stated = ~is_missing(when, ds.missing_values)
    times = parse_times(when.where(stated, None), ds.converted_at_format)
    bad = (stated & times.isna()).to_numpy()
    if bad.any():
        source = "target" if ds.target is not None else "outcomes"
        raise LeadDataError(
            f"{where}: {int(bad.sum())} conversion time(s) are not times in format "
            f"{ds.converted_at_format!r}, e.g. {when[bad].astype(str).head(3).tolist()}; "
            f"{time_format_hint(when[bad], ds.converted_at_format)} (set "
            f"dataset.{source}.converted_at_format). A lead is never counted lost because "
            "its date could not be read.")
    return times


def _conversion_times(raw: pd.DataFrame, ds: DatasetConfig, cfg: TrainConfig,
                      outcomes: pd.DataFrame | None, id_column: str) -> pd.Series:
    """When each lead converted (NaT: not converted, or not said), aligned with ``raw``."""
    if ds.target is not None:
        column = ds.target.converted_at_column
        if column not in raw.columns:
            raise LeadDataError(f"lead file '{ds.source_name}' has no column '{column}' "
                                f"({config_line(cfg, 'dataset', 'target', 'converted_at_column')})")
        times = read_conversion_times(raw[column], ds, f"lead file '{ds.source_name}', column "
                                      f"'{column}'")
        return pd.Series(times.to_numpy(), index=raw.index)
    when = read_conversion_times(outcomes[ds.outcomes.converted_at_column], ds, "")
    by_id = pd.Series(when.to_numpy(), index=outcomes[ds.outcomes.id_column].astype(str))
    by_id = by_id[by_id.notna()]
    by_id = by_id[~by_id.index.duplicated()]
    return pd.Series(raw[id_column].astype(str).map(by_id).to_numpy(), index=raw.index)


def _within_horizon(raw: pd.DataFrame, y: np.ndarray, time: pd.Series, ds: DatasetConfig,
                    cfg: TrainConfig, outcomes: pd.DataFrame | None, id_column: str
                    ) -> tuple[np.ndarray, np.ndarray, pd.Timestamp]:
    """(converted within horizon_days, old enough to know it, the as-of time)."""
    converted_at = _conversion_times(raw, ds, cfg, outcomes, id_column)
    unknown = (y == 1) & converted_at.isna().to_numpy()
    if unknown.any():
        raise LeadDataError(
            f"{int(unknown.sum())} converted lead(s) have no conversion time, so whether they "
            f"converted within horizon_days ({ds.horizon_days:g}) is unknown, e.g. ids "
            f"{raw[id_column][unknown].astype(str).head(5).tolist()}. Fill the conversion "
            "times or drop the horizon.")
    seen = [time.max(), converted_at.max()]
    as_of = pd.Timestamp(ds.as_of) if ds.as_of is not None else max(t for t in seen
                                                                     if pd.notna(t))
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    horizon = pd.Timedelta(days=ds.horizon_days)
    lag = (converted_at - time).to_numpy()
    within = (y == 1) & (lag <= horizon.to_timedelta64())
    mature = (time <= as_of - horizon).to_numpy()
    return within.astype(int), mature, as_of


def _target(raw: pd.DataFrame, ds: DatasetConfig, cfg: TrainConfig,
            outcomes: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray | None]:
    """0/1 per lead, and where ``target.negative_values`` is given, which leads are
    decided (None: all are)."""
    if ds.target is not None:
        values = raw[ds.target.column]
        missing = is_missing(values, ds.missing_values)
        declared = ds.target.negative_values is not None
        if missing.any() and not declared:
            raise LeadDataError(
                f"{int(missing.sum())} lead(s) have no outcome in '{ds.target.column}':\n"
                f"{_examples(raw, missing, ds.target.column, ds.id_column)}\n"
                "Remove leads whose outcome is not known yet before training, or list the "
                f"values that mark a lead lost in "
                f"{config_line(cfg, 'dataset', 'target', 'negative_values')} to leave the "
                "others out."
            )
        text = _outcome_text(values)
        positives = {str(v).strip().lower() for v in ds.target.positive_values}
        y = text.isin(positives).to_numpy().astype(int)
        decided = None
        if declared:
            negatives = {str(v).strip().lower() for v in ds.target.negative_values}
            both = sorted(positives & negatives)
            if both:
                raise ConfigError(f"{both} are in both positive_values and negative_values "
                                  f"({config_line(cfg, 'dataset', 'target')})")
            decided = ~missing & (y.astype(bool) | text.isin(negatives).to_numpy())
        if y.sum() == 0:
            seen = sorted(text.unique().tolist())[:10]
            raise LeadDataError(
                f"no lead counts as converted: '{ds.target.column}' has values {seen}, none "
                f"of them in positive_values {sorted(positives)}; set "
                f"{config_line(cfg, 'dataset', 'target', 'positive_values')}"
            )
        if decided is not None and not (decided & (y == 0)).any():
            raise LeadDataError(
                f"no lead counts as lost: none of '{ds.target.column}' is in negative_values "
                f"{sorted(negatives)}; it has {sorted(text.unique().tolist())[:10]}. Set "
                f"{config_line(cfg, 'dataset', 'target', 'negative_values')}")
        return y, decided
    if outcomes is None or ds.outcomes is None:
        raise ConfigError("the config names neither dataset.target nor dataset.outcomes: "
                          "say which column, or which table, holds the outcome")
    if ds.id_column is None:
        raise LeadDataError("an outcomes table is joined on the lead id: set dataset.id_column")
    require_columns(
        list(outcomes.columns), [ds.outcomes.id_column, ds.outcomes.converted_at_column],
        what=f"outcomes table '{ds.outcomes.path}'",
        fix=f"Name its columns in {config_line(cfg, 'dataset', 'outcomes')}.",
    )
    converted_at = read_conversion_times(
        outcomes[ds.outcomes.converted_at_column], ds,
        f"outcomes table '{ds.outcomes.path}', column '{ds.outcomes.converted_at_column}'")
    converted_ids = set(outcomes.loc[converted_at.notna(), ds.outcomes.id_column].astype(str))
    return raw[ds.id_column].astype(str).isin(converted_ids).to_numpy().astype(int), None


def _outcome_text(values: pd.Series) -> pd.Series:
    """Outcome values as compared with positive_values: trimmed, lower case; integer-like
    floats read from Parquet ("1.0") count as their integer."""
    text = values.astype("object").map(lambda v: str(v).strip().lower())
    return text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)


def validate_history(raw: pd.DataFrame, cfg: TrainConfig,
                     outcomes: pd.DataFrame | None = None) -> History:
    """Check a lead history against its config and return it in time order.

    Raises
    ------
    LeadDataError
        With every problem that stops training and the fix for each.
    """
    ds = cfg.dataset
    if raw.empty:
        raise LeadDataError(f"lead file '{ds.source_name}' has no rows")
    required = [*([ds.id_column] if ds.id_column else []),
                *([ds.time_column] if ds.time_column else []),
                *([ds.target.column] if ds.target else []), *ds.columns.features]
    named_at = []
    for col in [c for c in required if c not in raw.columns]:
        for role in ("numeric", "categorical", "text"):
            names = getattr(ds.columns, role)
            if col in names:
                named_at.append(f"'{col}' is named at "
                                f"{config_line(cfg, 'dataset', 'columns', role, names.index(col))}")
    require_columns(
        list(raw.columns), required, what=f"lead file '{ds.source_name}'",
        fix="".join(f"{n}\n" for n in named_at)
        + f"Rename the columns in the file or in the config. Found: {list(raw.columns)}",
    )
    if ds.id_column is None:  # the record number (1 = first data row) is the id
        raw = raw.assign(**{RECORD_ID: np.arange(1, len(raw) + 1).astype(str)})
    id_column = ds.id_column or RECORD_ID
    ids = raw[id_column]
    header = repeated_header(raw, required)
    if header.any():
        rows = [int(r) + 2 for r in np.flatnonzero(header)[:MAX_SHOWN]]
        raise LeadDataError(
            f"lead file '{ds.source_name}' repeats its header line at row(s) {rows}"
            f"{' and more' if header.sum() > MAX_SHOWN else ''}: files joined with their "
            "headers? Remove the repeated header lines (each file's leads once) and train "
            "again.")
    no_id = is_missing(ids, ds.missing_values)
    if no_id.any():
        raise LeadDataError(f"{int(no_id.sum())} lead(s) have no id in '{id_column}':\n"
                            f"{_examples(raw, no_id, id_column, id_column)}")
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise LeadDataError(
            f"{int(ids[dup].nunique())} lead id(s) occur more than once in '{id_column}':\n"
            f"{_examples(raw, dup, id_column, id_column)}\n"
            "Each lead must appear once; deduplicate the export or pick another id column "
            f"in {config_line(cfg, 'dataset', 'id_column')}.{rounded_ids_hint(ids[dup])}"
        )
    decimal, thousands = ds.csv.decimal, ds.csv.thousands
    numbers = {}
    for col in ds.columns.numeric:
        numbers[col], bad = parse_numbers(raw[col], ds.missing_values, decimal=decimal,
                                          thousands=thousands)
        if bad.any():
            looks = number_looks(raw[col][bad], decimal).value_counts()
            raise LeadDataError(
                f"numeric column '{col}' has {int(bad.sum())} value(s) that are not numbers:\n"
                f"{_examples(raw, bad, col, id_column)}\n"
                f"Fix the rows, add the placeholder to "
                f"{config_line(cfg, 'dataset', 'missing_values')}, or list '{col}' under "
                f"columns.categorical.{''.join(_LOOKS[look] for look in looks.index)}"
            )
    if decimal != "." or thousands:  # every reader of the history gets the numbers
        raw = raw.assign(**numbers)
    if ds.time_column:
        time = parse_times(raw[ds.time_column], ds.time_format)
        bad = time.isna().to_numpy()
        if bad.any():
            values = raw[ds.time_column][bad]
            raise LeadDataError(
                f"time column '{ds.time_column}' has {int(bad.sum())} of {len(raw)} value(s) "
                f"that are not times in time_format {ds.time_format!r} "
                f"({config_line(cfg, 'dataset', 'time_format')}):\n"
                f"{_examples(raw, bad, ds.time_column, id_column)}\n"
                f"{time_format_hint(values, ds.time_format)}. Fix the rows, or set "
                f"{config_line(cfg, 'dataset', 'time_column')} to null to use row order."
            )
    else:
        time = pd.Series(np.arange(len(raw)), index=raw.index, name="row_order")
    y, decided = _target(raw, ds, cfg, outcomes)
    outcome_values = None
    if ds.target is not None:
        counts = _outcome_text(raw[ds.target.column]).value_counts(sort=False)
        outcome_values = {str(k): int(v) for k, v in counts.items()}
    open_leads = 0
    if decided is not None:
        open_leads = int((~decided).sum())
        if not decided.any():
            raise LeadDataError(f"every lead is still open: none has an outcome in "
                                f"positive_values or negative_values of '{ds.target.column}'")
        raw, time, ids, y = raw[decided], time[decided], ids[decided], y[decided]
    as_of, unlabelled = None, 0
    if ds.horizon_days is not None:
        y, mature, as_of = _within_horizon(raw, y, time, ds, cfg, outcomes, id_column)
        unlabelled = int((~mature).sum())
        if not mature.any():
            raise LeadDataError(
                f"every lead is younger than horizon_days ({ds.horizon_days:g}) at "
                f"{as_of:%Y-%m-%d %H:%M} UTC: none can be labelled yet. Use a shorter "
                "horizon or an export covering a longer period.")
        raw, time, ids, y = raw[mature], time[mature], ids[mature], y[mature]
    order = np.argsort(time.to_numpy(), kind="stable")
    target_column = [ds.target.column] if ds.target else []
    features = raw.drop(columns=target_column).iloc[order].reset_index(drop=True)
    return History(
        features=features,
        target=y[order],
        time=time.iloc[order].reset_index(drop=True),
        ids=ids.iloc[order].reset_index(drop=True),
        horizon_days=ds.horizon_days,
        as_of=as_of,
        unlabelled=unlabelled,
        open_leads=open_leads,
        outcome_values=outcome_values,
    )
