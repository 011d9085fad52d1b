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

from leadml.config import DatasetConfig, TrainConfig, config_line
from leadml.data.values import (
    is_missing,
    number_looks,
    parse_numbers,
    parse_times,
    time_format_hint,
)
from leadml.errors import ConfigError, LeadDataError

MAX_SHOWN = 5
#: The scored-lead file's columns, in order: the contract of docs/DESIGN (the leads' own
#: columns are not copied).
OUTPUT_COLUMNS = [
    "lead_id", "conversion_probability", "score", "grade",
    "bant_budget", "bant_authority", "bant_need", "bant_timeline",
    "label", "reasons", "model_name", "model_version", "rules_version", "scored_at",
]
#: What monitoring reads back from a scored file, and what the report's table of tonight's
#: leads needs of it.
MONITORED_COLUMNS = ["lead_id", "conversion_probability", "grade", "label"]
REPORTED_COLUMNS = [*MONITORED_COLUMNS, "reasons"]
RECORD_ID = "_record"  # the id column when the config has none: the record number


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
    score_reference: dict[str, Any] | None = None  # its probabilities' bins (score drift)
    unseen_reference: dict[str, float] | None = None  # share of values unseen in training
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


@dataclass(frozen=True)
class Counted:
    """What a reader counted over the whole history when it hands validation only part of
    it (the Spark engine over a history larger than the fit budget: the open leads and the
    leads too young for the horizon stay on the cluster). :func:`validate_history` reports
    these counts instead of its own."""

    open_leads: int = 0
    unlabelled: int = 0
    outcome_values: dict[str, int] | None = None
    #: the labelled leads, their conversions and the audit's rate by tenth of the history
    #: (:func:`leadml.data.audit.audit_history`), when counted over every lead
    leads: int | None = None
    conversions: int | None = None
    drift: list[dict] | None = None
    maturity: dict | None = None  # (:func:`leadml.data.audit.time_to_convert`)
    #: each feature's counts for the field insights (:func:`leadml.data.spark_counts.
    #: field_counts`), when counted over every lead
    fields: dict | None = None


def all_open(ds: DatasetConfig) -> LeadDataError:
    return LeadDataError(f"every lead is still open: none has an outcome in "
                         f"positive_values or negative_values of '{ds.target.column}'")


def all_young(ds: DatasetConfig, as_of: pd.Timestamp) -> LeadDataError:
    return LeadDataError(
        f"every lead is younger than horizon_days ({ds.horizon_days:g}) at "
        f"{as_of:%Y-%m-%d %H:%M} UTC: none can be labelled yet. Use a shorter "
        "horizon or an export covering a longer period.")


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
        text = outcome_text(values)
        positives = outcome_keys(ds.target.positive_values)
        y = text.isin(positives).to_numpy().astype(int)
        decided = None
        if declared:
            negatives = outcome_keys(ds.target.negative_values)
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


def outcome_text(values: pd.Series) -> pd.Series:
    """Outcome values as compared with :func:`outcome_keys`: trimmed, lower case;
    integer-like floats read from Parquet ("1.0") count as their integer."""
    values = values.astype("object")
    codes, uniques = pd.factorize(values)  # each distinct value read once; missing: -1
    text = pd.Series([str(v).strip().lower() for v in uniques], dtype=object)
    text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True).to_numpy(dtype=object)
    out = pd.Series(text[codes] if len(text) else np.full(len(codes), "", dtype=object),
                    index=values.index, dtype=object)
    missing = codes < 0  # None reads "none", NaN "nan", as str() says
    out[missing] = [str(v).lower() for v in values[missing]]
    return out


def outcome_keys(values) -> set[str]:
    """``positive_values`` or ``negative_values`` as outcomes are compared with them."""
    return {str(v).strip().lower() for v in values}


def required_columns(raw: pd.DataFrame, cfg: TrainConfig) -> list[str]:
    """The columns the config names, each found in the file (else the error names where the
    config names it)."""
    ds = cfg.dataset
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
    return required


def _checked_ids(raw: pd.DataFrame, cfg: TrainConfig, required: list[str],
                 id_column: str) -> pd.Series:
    """The leads' ids, each present and once; no header line repeated among the rows."""
    ds = cfg.dataset
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
    return ids


def _read_numbers(raw: pd.DataFrame, cfg: TrainConfig, id_column: str) -> pd.DataFrame:
    """``raw`` with its numeric columns read in the config's number format; a value that is
    not a number stops training."""
    ds = cfg.dataset
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
    return raw


def _read_times(raw: pd.DataFrame, cfg: TrainConfig, id_column: str) -> pd.Series:
    """Each lead's creation time in the config's time format, or its row order without a
    time column."""
    ds = cfg.dataset
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
    return time


def validate_history(raw: pd.DataFrame, cfg: TrainConfig,
                     outcomes: pd.DataFrame | None = None, *,
                     counted: Counted | None = None) -> History:
    """Check a lead history against its config and return it in time order. ``counted``:
    the whole history's open and young leads and outcome values, when ``raw`` is the part
    of it a reader kept (:class:`Counted`).

    Raises
    ------
    LeadDataError
        With every problem that stops training and the fix for each.
    """
    ds = cfg.dataset
    if raw.empty:
        raise LeadDataError(f"lead file '{ds.source_name}' has no rows")
    required = required_columns(raw, cfg)
    if ds.id_column is None:  # the record number (1 = first data row) is the id
        raw = raw.assign(**{RECORD_ID: np.arange(1, len(raw) + 1).astype(str)})
    id_column = ds.id_column or RECORD_ID
    ids = _checked_ids(raw, cfg, required, id_column)
    raw = _read_numbers(raw, cfg, id_column)
    time = _read_times(raw, cfg, id_column)
    y, decided = _target(raw, ds, cfg, outcomes)
    outcome_values = None
    if ds.target is not None:
        counts = outcome_text(raw[ds.target.column]).value_counts(sort=False)
        outcome_values = {str(k): int(v) for k, v in counts.items()}
    open_leads = 0
    if decided is not None:
        open_leads = int((~decided).sum())
        if not decided.any():
            raise all_open(ds)
        raw, time, ids, y = raw[decided], time[decided], ids[decided], y[decided]
    as_of, unlabelled = None, 0
    if ds.horizon_days is not None:
        y, mature, as_of = _within_horizon(raw, y, time, ds, cfg, outcomes, id_column)
        unlabelled = int((~mature).sum())
        if not mature.any():
            raise all_young(ds, as_of)
        raw, time, ids, y = raw[mature], time[mature], ids[mature], y[mature]
    # (a time as its integer, not as a million Timestamp objects: the same order, 1 s less)
    order = np.argsort(time.astype("int64").to_numpy() if
                       pd.api.types.is_datetime64_any_dtype(time) else time.to_numpy(),
                       kind="stable")
    target_column = [ds.target.column] if ds.target else []
    features = raw.drop(columns=target_column).iloc[order].reset_index(drop=True)
    return History(
        features=features,
        target=y[order],
        time=time.iloc[order].reset_index(drop=True),
        ids=ids.iloc[order].reset_index(drop=True),
        horizon_days=ds.horizon_days,
        as_of=as_of,
        unlabelled=unlabelled if counted is None else counted.unlabelled,
        open_leads=open_leads if counted is None else counted.open_leads,
        outcome_values=outcome_values if counted is None else counted.outcome_values,
    )
