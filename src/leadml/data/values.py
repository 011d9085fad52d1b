"""How exports write values, read as the config declares, never guessed: placeholders
for no value, numbers (decimal marks, thousands separators), times (ISO 8601, a pattern,
epoch seconds, spreadsheet serial dates); and what a value that does not read looks like
(a decimal comma, a formatted number, a spreadsheet error), for the message that says how
to fix it. Training, audit, scoring, serving and monitoring read values only through here.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_WHOLE = re.compile(r"^[+-]?\d+(?:\.0*)?$")


def id_text(values: pd.Series) -> pd.Series:
    """Lead ids as text, the same id however a file typed it: stripped, and a column of
    whole numbers written as floats (a Parquet id column with a gap, a CSV written from
    one: ``1001.0``) as the whole numbers. Missing ids are ``""``.

    >>> id_text(pd.Series([1001.0, None, 7.0])).tolist()
    ['1001', '', '7']
    >>> id_text(pd.Series([" L1 ", "1001.0"])).tolist()  # not all numbers: kept as written
    ['L1', '1001.0']
    >>> id_text(pd.Series(["1001.0", "12"])).tolist()
    ['1001', '12']
    """
    if values.dtype.kind == "f":
        known = values.notna()
        x = values.to_numpy(float)
        if np.all(np.isfinite(x[known.to_numpy()]) & (np.mod(x[known.to_numpy()], 1) == 0)):
            return pd.Series(np.where(known, [f"{v:.0f}" if k else "" for v, k in
                                              zip(x, known, strict=True)], ""),
                             index=values.index, dtype=object)
    text = values.astype("object").where(values.notna(), "").astype(str).str.strip()
    stated = text[text != ""]
    if len(stated) and stated.str.fullmatch(_WHOLE).all() and \
            stated.str.contains(".", regex=False).any():
        text = text.str.replace(r"\.0*$", "", regex=True)
    return text


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


#: Day 0 of spreadsheet serial dates (Excel's 1900 date system, LibreOffice, Google Sheets):
#: 45123.5 is 2023-07-16 12:00.
SERIAL_EPOCH = pd.Timestamp("1899-12-30", tz="UTC")
# The zone may follow a space and be spelled UTC or GMT, as databases write times
# (BigQuery: '2026-03-05 10:00:00 UTC'; Snowflake: '2026-03-05 10:00:00.000 -0800').
_ISO = (r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
        r"(?: ?(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?$")
_UTC_WORD = r" ?(?:UTC|GMT)$"


def field_values(values: pd.Series, role: str, markers: tuple[str, ...]) -> np.ndarray:
    """A field's values as the field insights group them: a number as a float (NaN where
    missing or not a finite number); a text trimmed, free text (``role`` ``text``)
    lower-cased, None where missing. Each distinct value read once.

    >>> field_values(pd.Series([" Web", "", "web"]), "categorical", ("",)).tolist()
    ['Web', None, 'web']
    >>> field_values(pd.Series(["12", "n/a", "x"]), "numeric", ("n/a",)).tolist()
    [12.0, nan, nan]
    """
    missing = np.asarray(is_missing(values, markers), dtype=bool)
    if role == "numeric":
        numbers = parse_numbers(values, markers)[0].to_numpy(dtype=float)
        return np.where(~missing & np.isfinite(numbers), numbers, np.nan)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    text = pd.Series(uniques, dtype=object).astype(str).str.strip()
    text = (text.str.lower() if role == "text" else text).to_numpy(dtype=object)
    return np.where(missing, None, text[codes])


def bin_of(numbers: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The quantile bin each number falls in (the last bin closed), for ``edges`` of two or
    more; 0 for one edge.

    >>> bin_of(np.array([0, 5, 10, 20]), np.array([0.0, 10.0, 20.0])).tolist()
    [0, 0, 1, 1]
    """
    return np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, max(len(edges) - 2, 0))


def parse_times(values: pd.Series, time_format: str = "iso") -> pd.Series:
    """The lead times as ``time_format`` declares them, never guessed; a value not in that
    format is NaT (NaN for ``sequence``), for the caller to report or reject.

    ``iso``: ISO 8601 dates or times (``2026-06-01``, ``2026-06-01T10:00:00+02:00``, also
    with the zone after a space or as ``UTC``, as databases write it), as UTC; a
    ``strftime`` pattern (``%d/%m/%Y``): exactly that; ``epoch_s``, ``epoch_ms``: seconds
    or milliseconds since 1970 (UTC); ``excel``: a spreadsheet's serial date, days since
    1899-12-30 with the time as the fraction (to the second); ``sequence``: an increasing
    number such as an auto-number lead id, returned as floats.

    >>> parse_times(pd.Series(["2026-04-03", "660728", "03/04/2026"])).dt.day.tolist()
    [3.0, nan, nan]
    >>> parse_times(pd.Series(["2026-03-05 10:00:00 UTC", "2026-03-05 10:00:00.000 -0800"])
    ...             ).dt.hour.tolist()
    [10, 18]
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
        text = text.str.replace(_UTC_WORD, "+00:00", regex=True)
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
