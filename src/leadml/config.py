"""Typed, frozen configuration loaded once from YAML.

A wrong key, a bad value or a column named twice is reported with its place in the
file (``sample.yaml:14 dataset.columns.numeric[2]``), so the fix is one edit away.
Relative paths in a config are resolved against the config file's folder.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import typing
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CANDIDATES = ("logistic_regression", "gradient_boosting")


class ConfigError(ValueError):
    """A config file that cannot be read or does not validate."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DECIMAL_MARKS = (".", ",")
THOUSANDS_SEPARATORS = (",", ".", " ", "'")
#: What CRM, SQL, spreadsheet and pandas exports write for "no value" (pandas reads the
#: same spellings as missing), and web forms' unchosen "Select". Compared exactly: "NULL"
#: and "null" are two entries.
MISSING_VALUES = ("", "N/A", "NA", "n/a", "null", "NULL", "None", "NaN", "nan", "<NA>",
                  "#N/A", "-", "Select")


class CsvOptions(_Frozen):
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    # The decimal mark of numbers: "," for exports from spreadsheets in German, French and
    # other locales (1.234,5), whose delimiter is then usually ";".
    decimal: Literal[DECIMAL_MARKS] = "."
    # The thousands separator of numbers written with a decimal point, as a spreadsheet
    # formats them (12,500.00); with decimal "," grouping by ".", spaces or "'" is read anyway.
    thousands: Literal[THOUSANDS_SEPARATORS] | None = None

    @model_validator(mode="after")
    def _marks_differ(self) -> CsvOptions:
        if self.thousands == self.decimal:
            raise ValueError(f"csv.thousands and csv.decimal are both {self.decimal!r}: a "
                             "number cannot use one mark for both")
        return self


def _time_format(value: str, *, sequence: bool) -> str:
    known = ("iso", "epoch_s", "epoch_ms", "excel", *(("sequence",) if sequence else ()))
    if value in known or "%" in value:
        return value
    raise ValueError(f"time format {value!r} is none of {', '.join(known)}, and not a "
                     "strftime pattern (such as '%d/%m/%Y %H:%M')")


class _Conversions(_Frozen):
    """How conversion times are written, and the horizon over which a lead counts as
    converted (shared by the two ways of giving outcomes)."""

    converted_at_format: str | None = Field(
        None, description="how converted_at_column is written (as time_format); default: "
        "time_format, or iso when time_format is sequence")

    @field_validator("converted_at_format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        return None if value is None else _time_format(value, sequence=False)

    horizon_days: float | None = Field(None, gt=0, description=(
        "a lead is converted when it converted within this many days of creation; leads "
        "younger than this at dataset.as_of are unlabelled (left out of training and "
        "evaluation, counted), and the probability means 'converts within N days'"))


class TargetColumn(_Conversions):
    """The outcome is a column of the lead file; ``positive_values`` mark a conversion."""

    column: str
    positive_values: tuple[str, ...] = ("1", "yes", "true")
    negative_values: tuple[str, ...] | None = Field(None, description=(
        "the values that mark a lead lost (closed without converting), for a status column "
        "that also holds open leads ('Open - Not Contacted', 'Working'); given, a lead whose "
        "value is in neither list (or blank) is still open: left out of training and "
        "evaluation, counted. Without it every value not in positive_values counts as lost"))
    converted_at_column: str | None = Field(
        None, description="when converted leads converted: the audit checks no feature "
        "column holds dates after it")


class OutcomesTable(_Conversions):
    """The outcome is a separate table of converted leads: id and conversion time."""

    path: Path
    id_column: str = "lead_id"
    converted_at_column: str = "converted_at"


class Columns(_Frozen):
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    personal: tuple[str, ...] = Field((), description=(
        "personal data (emails, phone numbers, names): never a feature, never audited, "
        "never written to MLflow, the report or logs"))

    @model_validator(mode="after")
    def _each_column_has_one_role(self) -> Columns:
        seen: dict[str, str] = {}
        for role in ("numeric", "categorical", "text", "excluded", "personal"):
            for name in getattr(self, role):
                if name in seen:
                    raise ValueError(
                        f"column '{name}' is listed under both '{seen[name]}' and '{role}'; "
                        "give each column one role"
                    )
                seen[name] = role
        if not (self.numeric or self.categorical or self.text):
            raise ValueError("no feature columns: list at least one numeric, categorical "
                             "or text column")
        return self

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.text]


class DatasetConfig(_Frozen):
    path: Path | None = Field(None, description=(
        "the lead history (CSV or Parquet); may be left out when the leads are passed as a "
        "DataFrame (leadml.train_model(config, data=frame))"))
    id_column: str | None = Field(
        ..., description="column with each lead's id; null means the record number is the id"
    )
    time_column: str | None = Field(
        None, description="column giving each lead's creation time; null means row order"
    )
    time_format: str = Field("iso", description=(
        "how time_column is written: iso (ISO 8601), epoch_s, epoch_ms, excel (a "
        "spreadsheet's serial dates: days since 1899-12-30), sequence (an "
        "increasing number such as an auto-number id) or a strftime pattern ('%d/%m/%Y'); "
        "nothing is guessed"))
    target: TargetColumn | None = None
    outcomes: OutcomesTable | None = None
    columns: Columns
    missing_values: tuple[str, ...] = Field(MISSING_VALUES, description=(
        "placeholders that mean no value, compared exactly after trimming spaces; a list "
        "given replaces this one"))
    csv: CsvOptions = CsvOptions()
    as_of: datetime | None = Field(None, description=(
        "when the export was taken (ISO 8601); default: the newest lead or conversion time. "
        "With a horizon, leads younger than horizon_days at this time are unlabelled"))

    @field_validator("time_format")
    @classmethod
    def _known_time_format(cls, value: str) -> str:
        return _time_format(value, sequence=True)

    @property
    def source_name(self) -> str:
        """The history's name in messages: its path, or the DataFrame it came as."""
        return str(self.path) if self.path is not None else "the leads DataFrame"

    @property
    def outcome_columns(self) -> set[str]:
        """The lead file's columns that hold the outcome itself: the target column and its
        conversion time, or the outcomes table's conversion time when that table is the
        lead file (a CRM export with a 'Became a Customer Date'). Neither features nor
        unused columns nor leaks to report: the outcome."""
        if self.target is not None:
            return {self.target.column, *filter(None, [self.target.converted_at_column])}
        same = self.outcomes is not None and self.path is not None and \
            Path(self.outcomes.path).resolve() == Path(self.path).resolve()
        return {self.outcomes.converted_at_column} if same else set()

    @property
    def horizon_days(self) -> float | None:
        source = self.target if self.target is not None else self.outcomes
        return source.horizon_days if source is not None else None

    @property
    def converted_at_format(self) -> str:
        """How conversion times are written: as declared, else like the lead times (a
        ``sequence`` orders leads but is no clock: then ISO 8601)."""
        source = self.target if self.target is not None else self.outcomes
        declared = source.converted_at_format if source is not None else None
        if declared:
            return declared
        return "iso" if self.time_format == "sequence" else self.time_format

    @model_validator(mode="after")
    def _one_target(self) -> DatasetConfig:
        if (self.target is None) == (self.outcomes is None):
            raise ValueError("give exactly one of 'target' (a column of the lead file) or "
                             "'outcomes' (a table of converted lead ids)")
        if self.horizon_days is not None:
            if not self.time_column or self.time_format == "sequence":
                raise ValueError("horizon_days counts days from each lead's creation: set "
                                 "time_column to the creation time (a date, not a sequence)")
            if self.target is not None and not self.target.converted_at_column:
                raise ValueError("horizon_days needs when each lead converted: set "
                                 "target.converted_at_column (or use an outcomes table)")
            if self.target is not None and self.target.negative_values is not None:
                raise ValueError(
                    "give target.negative_values or horizon_days, not both: with conversion "
                    "times the horizon decides (an open lead older than it did not convert "
                    "within it, a younger one is left out); without them negative_values "
                    "leaves open leads out")
        reserved = {self.id_column, self.time_column, self.target and self.target.column}
        clash = sorted(reserved.intersection(self.columns.features) - {None})
        if clash:
            raise ValueError(f"columns {clash} are the id, time or target column and cannot "
                             "also be features; remove them from 'columns'")
        return self


class SplitConfig(_Frozen):
    """Shares of the time-ordered history: oldest for training, newest for testing."""

    train: float = Field(0.6, gt=0, lt=1)
    calibration: float = Field(0.2, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.calibration + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + calibration + test must be 1, got {total:g}")
        return self


class TuneConfig(_Frozen):
    """Try each candidate with drawn settings too (leadml.tuning), judged on the
    calibration window, within a time budget."""

    trials: int = Field(10, ge=1, le=200, description="drawn settings per candidate")
    budget_seconds: float = Field(300.0, gt=0, description=(
        "stop drawing once this much time is spent fitting trials (the configured settings "
        "are always tried)"))
    seed: int = 0


class ModelConfig(_Frozen):
    candidates: tuple[Literal["logistic_regression", "gradient_boosting"], ...] = CANDIDATES
    calibration: Literal["auto", "sigmoid", "isotonic"] = "auto"
    isotonic_min_positives: int = Field(1000, ge=1, description="'auto' picks isotonic from here")
    calibration_window: Literal["auto", "own", "newest", "cross_fitted",
                                "recency_weighted"] = Field("auto", description=(
            "which labelled leads the calibration map is fitted on (leadml.calibration); "
            "'auto' chooses by a backtest on the windows before the test window"))
    calibration_folds: int = Field(4, ge=2, le=10, description=(
        "time-ordered parts of the train window for cross-fitted calibration scores"))
    refit: bool = Field(True, description=(
        "after choosing and calibrating, refit the chosen candidate on the train and "
        "calibration windows together, under the same calibrator"))
    max_fit_leads: int | None = Field(400_000, ge=1000, description=(
        "each fit (candidates, calibration folds, refit) uses at most this many of the "
        "newest labelled leads of its window; null fits on all of them. Choosing, "
        "calibrating and testing still use every lead of their windows "
        "(benchmarks/results/fit_budget.md)"))
    seed: int = 0
    C: float = Field(1.0, gt=0, description="inverse L2 strength of the logistic regression")
    learning_rate: float = Field(0.06, gt=0, le=1)
    max_iter: int = Field(300, ge=1)
    max_leaf_nodes: int = Field(31, ge=2)
    l2_regularization: float = Field(1.0, ge=0)
    text_max_features: int = Field(40, ge=1)
    min_category_count: int = Field(20, ge=1, description="rarer values share one category")
    tune: TuneConfig | None = Field(None, description=(
        "leave out to fit each candidate once with the settings above"))

    @model_validator(mode="after")
    def _some_candidate(self) -> ModelConfig:
        if not self.candidates:
            raise ValueError("list at least one candidate")
        return self


class EvaluationConfig(_Frozen):
    bootstrap: int = Field(200, ge=0, description="resamples for confidence intervals; 0 = off")
    bands: int = Field(10, ge=2, le=100)
    calibration_bins: int = Field(10, ge=2, le=100)


class RegistryConfig(_Frozen):
    model_name: str = Field("leadml", min_length=1)
    experiment: str = Field("leadml", min_length=1)
    tracking_uri: str | None = None


class PromotionConfig(_Frozen):
    """A challenger becomes champion if its log loss is lower on the newest window and
    its ROC AUC is not worse by more than ``auc_tolerance``."""

    auc_tolerance: float = Field(0.005, ge=0, le=1)
    min_log_loss_gain: float = Field(0.0, ge=0)


class AuditConfig(_Frozen):
    """Thresholds of ``leadml audit``, which also runs at the start of training.

    A feature column flagged for leakage stops training unless ``keep`` names it with the
    reason it is known before the outcome (``keep: {meetings: "booked before the demo"}``).
    """

    min_leads: int = Field(1000, ge=1, description="fewer labelled leads: too few to learn from")
    min_conversions: int = Field(120, ge=1, description="fewer conversions: too few to learn from")
    block_single_auc: float = Field(0.9, gt=0.5, le=1, description=(
        "a column that alone separates converted leads this well is a near-certain leak"))
    max_single_auc: float = Field(0.8, gt=0.5, le=1, description=(
        "from here (below block_single_auc) a column goes to review"))
    note_single_auc: float = Field(0.75, gt=0.5, le=1, description=(
        "from here a number with no other sign of a leak is noted, not stopped: strong "
        "engagement fields live here"))
    block_missing_auc: float = Field(0.9, gt=0.5, le=1, description=(
        "a column whose emptiness alone separates converted leads this well blocks"))
    max_missing_auc: float = Field(0.75, gt=0.5, le=1, description=(
        "from here (below block_missing_auc) a column whose emptiness tracks the outcome "
        "goes to review"))
    min_exclusive_filled: int = Field(10, ge=1, description=(
        "a column filled only for converted (or only for lost) leads blocks once this many "
        "rows are filled and chance cannot explain it"))
    state_auc: float = Field(0.6, gt=0.5, le=1, description=(
        "a column whose values read like sales actions or outcome states goes to review "
        "from this AUC"))
    max_order_auc: float = Field(0.6, gt=0.5, le=1, description=(
        "an id-like or time-like feature that tracks the outcome this well is suspect"))
    keep: dict[str, str] = Field(default_factory=dict, description=(
        "flagged columns to keep anyway, each with the reason it is known before the outcome"))

    @model_validator(mode="after")
    def _levels_ordered(self) -> AuditConfig:
        if not self.note_single_auc <= self.max_single_auc <= self.block_single_auc:
            raise ValueError(
                f"AUC levels must rise from note to review to block: note_single_auc "
                f"{self.note_single_auc} <= max_single_auc {self.max_single_auc} <= "
                f"block_single_auc {self.block_single_auc}")
        if self.max_missing_auc > self.block_missing_auc:
            raise ValueError(f"max_missing_auc {self.max_missing_auc} (review) must not exceed "
                             f"block_missing_auc {self.block_missing_auc}")
        return self

    @model_validator(mode="after")
    def _reasons_given(self) -> AuditConfig:
        empty = [c for c, why in self.keep.items() if not str(why).strip()]
        if empty:
            raise ValueError(f"give a reason for keeping {empty}: why is each known before "
                             "the outcome?")
        return self


class DriftConfig(_Frozen):
    """How the calibrated probabilities follow a moving conversion rate (see leadml.drift).

    ``none``: keep the calibration's rate. ``recent_rate``: shift to the rate of the
    newest ``recent_share`` of the labelled leads before the test window. ``known_rate``:
    shift to ``base_rate``, a rate you know from the CRM's recent months. ``auto``: ``none``
    or ``recent_rate`` (measured on the calibration window), whichever the backtest of
    :mod:`leadml.calibration` prefers.
    """

    method: Literal["auto", "none", "recent_rate", "known_rate"] = "auto"
    recent_share: float = Field(0.1, gt=0, le=1)
    base_rate: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="after")
    def _rate_for_known(self) -> DriftConfig:
        if self.method == "known_rate" and self.base_rate is None:
            raise ValueError("method 'known_rate' needs base_rate (e.g. 0.12)")
        return self


class TrainConfig(_Frozen):
    dataset: DatasetConfig
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    drift: DriftConfig = DriftConfig()
    audit: AuditConfig = AuditConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    registry: RegistryConfig = RegistryConfig()
    promotion: PromotionConfig = PromotionConfig()
    source: Path | None = Field(None, exclude=True)
    sha256: str | None = Field(None, exclude=True)


MAX_YAML_NODES = 20_000  # far above any real config; a YAML bomb expands to billions


def _expanded_size(root: yaml.Node, what: str) -> int:
    """How many nodes the document holds once every alias is expanded, counted without
    expanding (each node once, memoised). Refuses recursive aliases and YAML bombs, which
    load fast but stall anything that walks them (pydantic, the line-number walk)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(f"{what} uses a recursive YAML alias (an anchor that contains "
                              f"itself) at line {node.start_mark.line + 1}; write the value "
                              "out instead")
        open_nodes.add(key)
        children = [n for pair in node.value for n in pair] \
            if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                break
        open_nodes.discard(key)
        sizes[key] = total
        return total

    total = size(root)
    if total > MAX_YAML_NODES:
        raise ConfigError(f"{what} expands to more than {MAX_YAML_NODES:,} values through its "
                          "YAML aliases (a 'YAML bomb'?); write the values out instead")
    return total


def _line_numbers(text: str, what: str = "the file") -> dict[tuple, int]:
    """Map each key path of a YAML document to its 1-based line."""
    lines: dict[tuple, int] = {}

    def walk(node: Any, path: tuple) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, (*path, key.value))
                lines[(*path, key.value)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        _expanded_size(root, what)  # bounds the walk below
        walk(root, ())
    return lines


def _models_in(annotation) -> list[type[BaseModel]]:
    """The config sections an annotation holds (``X``, ``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _section(model: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    """The section (config model) at key ``path`` of ``model``; None if not one."""
    for key in path:
        if isinstance(key, int):  # an item of a list of sections
            continue
        field = model.model_fields.get(key)
        found = _models_in(field.annotation) if field is not None else []
        if len(found) != 1:
            return None
        model = found[0]
    return model


def _homes(model: type[BaseModel], key: str, path: tuple = ()) -> list[str]:
    """Every place (dotted path) in ``model``'s sections where ``key`` is a key."""
    out = [".".join(path) or "the top level"] if key in model.model_fields else []
    for name, field in model.model_fields.items():
        for inner in _models_in(field.annotation):
            out += _homes(inner, key, (*path, name))
    return out


def _unknown_key(model: type[BaseModel], loc: tuple) -> str:
    """What to say of the unknown key at ``loc``: a near spelling of a key of its section,
    or the sections the key belongs to (it was indented under the wrong one).

    >>> _unknown_key(TrainConfig, ("model", "max_fit_lead"))
    "unknown key: did you mean 'max_fit_leads'?"
    >>> _unknown_key(Rules, ("budget", "minimum"))
    "unknown key: did you mean 'min'?"
    >>> print(_unknown_key(TrainConfig, ("dataset", "horizon_days")))  # doctest: +ELLIPSIS
    unknown key here: 'horizon_days' belongs under dataset.target or dataset.outcomes (...)
    """
    key, section = loc[-1], _section(model, loc[:-1])
    if isinstance(key, str) and section is not None:
        near = difflib.get_close_matches(key, list(section.model_fields), n=1, cutoff=0.75) \
            or [f for f in section.model_fields if len(f) >= 3 and key.startswith(f)][-1:]
        if near:
            return f"unknown key: did you mean '{near[0]}'?"
        homes = [h for h in _homes(model, key) if h != ".".join(map(str, loc[:-1]))]
        if homes:
            return (f"unknown key here: '{key}' belongs under {' or '.join(homes)} (check "
                    "the indentation)")
    return "unknown key (check its spelling and indentation)"


def _describe(error: ValidationError, lines: dict[tuple, int], where: str,
              model: type[BaseModel]) -> str:
    out = []
    for e in error.errors():
        loc = tuple(e["loc"])
        known = loc
        while known and known not in lines:
            known = known[:-1]
        line = lines.get(known, 1)
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)
        dotted = dotted.replace(".[", "[") or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = _unknown_key(model, loc)
        elif e["type"] == "missing":
            parent = ".".join(str(p) for p in known) or "the top level"
            msg = (f"required key is missing: add '{loc[-1]}' under '{parent}' (which starts "
                   f"at line {line})" if known else f"required key is missing: add "
                   f"'{loc[-1]}' at the top level")
        out.append(f"  {where}:{line} {dotted}: {msg}")
    return "\n".join(out)


def _resolve_paths(raw: dict, base: Path) -> dict:
    ds = raw.get("dataset")
    if isinstance(ds, dict):
        if isinstance(ds.get("path"), str):
            ds["path"] = str((base / ds["path"]).resolve())
        outcomes = ds.get("outcomes")
        if isinstance(outcomes, dict) and isinstance(outcomes.get("path"), str):
            outcomes["path"] = str((base / outcomes["path"]).resolve())
    return raw


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read and validate a training config; every problem is listed with its line."""
    path = Path(path)
    return _load_yaml(path, TrainConfig, "config file",
                      lambda raw: _resolve_paths(raw, path.parent.resolve()))


def config_line(cfg: TrainConfig, *keys: str | int) -> str:
    """``file:line`` of a key in the config's own file, for error messages."""
    if cfg.source is None:
        return "the config"
    text = Path(cfg.source).read_text(encoding="utf-8")
    lines = _line_numbers(text)
    key = tuple(keys)
    while key and key not in lines:
        key = key[:-1]
    dotted = ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in keys)
    return f"{Path(cfg.source).name}:{lines.get(key, 1)} ({dotted.replace('.[', '[')})"


# --- BANT rules file -----------------------------------------------------------------------
# Sales ops edit this file without retraining; scoring outputs name its hash.


class BudgetRule(_Frozen):
    """Met when the stated budget is at least ``min``; below ``disqualify_below`` is a hard
    disqualifier; missing is unknown."""

    column: str
    min: float = Field(ge=0)
    disqualify_below: float | None = Field(None, ge=0)


class AuthorityRule(_Frozen):
    """Regular expressions (case-insensitive) on any text or categorical column (a job
    title, an occupation, a seniority field), after dots are removed so that "V.P." reads
    as "VP"; ``met_values`` and ``disqualify_values`` list exact values (case-insensitive)
    beside them. Disqualifying wins over met."""

    column: str
    met: tuple[str, ...] = ()
    disqualify: tuple[str, ...] = ()
    met_values: tuple[str, ...] = ()
    disqualify_values: tuple[str, ...] = ()


class NeedRule(_Frozen):
    """Value lists on any categorical column that says what the lead needs (compared
    case-insensitively), and regular expressions (``met_patterns``,
    ``disqualify_patterns``) beside them; other stated values count as ``otherwise``."""

    column: str
    met: tuple[str, ...] = ()
    disqualify: tuple[str, ...] = ()
    met_patterns: tuple[str, ...] = ()
    disqualify_patterns: tuple[str, ...] = ()
    otherwise: Literal["not_met", "unknown"] = "not_met"


class TimelineRule(_Frozen):
    """Met when the parsed timeline is within ``max_months``; "no plans" and the like are
    hard disqualifiers when ``disqualify_no_plans`` is set; unparseable text is unknown."""

    column: str
    max_months: float = Field(gt=0)
    disqualify_no_plans: bool = True


class SalesQualified(_Frozen):
    """Who is handed to sales: leads meeting ``min_criteria_met`` BANT criteria and every
    cut-off given (``min_probability``, ``min_expected_value``), then, when a capacity is
    set, only the best ``capacity`` leads of the run (or ``capacity_share`` of its scored
    leads) by ``rank_by``, ties broken by lead id; the rest are nurture."""

    min_probability: float | None = Field(None, ge=0, le=1)
    min_criteria_met: int = Field(0, ge=0, le=4)
    min_expected_value: float | None = None
    capacity: int | None = Field(None, ge=0)
    capacity_share: float | None = Field(None, gt=0, le=1)
    rank_by: Literal["probability", "expected_value"] = "probability"

    @model_validator(mode="after")
    def _one_way_in(self) -> SalesQualified:
        if self.capacity is not None and self.capacity_share is not None:
            raise ValueError("give capacity (leads per scoring run) or capacity_share (a "
                             "share of the run's scored leads), not both")
        if all(getattr(self, k) is None for k in ("min_probability", "min_expected_value",
                                                  "capacity", "capacity_share")):
            raise ValueError("say how a lead becomes sales-qualified: set min_probability, "
                             "min_expected_value, capacity or capacity_share")
        return self

    @property
    def by_capacity(self) -> bool:
        return self.capacity is not None or self.capacity_share is not None


class LabelPolicy(_Frozen):
    """Precedence: (1) any hard disqualifier -> disqualified; (2) probability below
    ``disqualify_below_probability`` -> disqualified; (3) at least ``min_criteria_met``
    BANT criteria met and every cut-off of ``sales_qualified`` passed -> sales_qualified,
    as far as the capacity allows; (4) otherwise nurture."""

    sales_qualified: SalesQualified
    disqualify_below_probability: float | None = Field(None, ge=0, le=1)


class Value(_Frozen):
    """What a converted lead is worth, for expected value = probability x value - cost:
    a deal-value ``column`` of the lead file, a ``default`` (the value of every lead, or
    of a lead whose column is blank), and the ``cost_per_contact`` of working a lead."""

    column: str | None = None
    default: float | None = Field(None, ge=0)
    cost_per_contact: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _some_value(self) -> Value:
        if self.column is None and self.default is None:
            raise ValueError("value needs a column (the deal value of each lead) or a "
                             "default (one value for every lead), or both")
        return self


class Grades(_Frozen):
    """A to D. ``probability``: lower bounds on the probability. ``share``: the shares of
    leads graded A, B and C in the model's newest (test) window, turned into fixed
    probability cut-offs when the model is loaded, so a grade means the same every night."""

    method: Literal["probability", "share"] = "probability"
    A: float = Field(0.40, gt=0, lt=1)
    B: float = Field(0.20, gt=0, lt=1)
    C: float = Field(0.08, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Grades:
        if self.method == "probability" and not self.A > self.B > self.C:
            raise ValueError(f"probability cut-offs must fall from A to C, got A={self.A}, "
                             f"B={self.B}, C={self.C}")
        if self.method == "share" and self.A + self.B + self.C >= 1:
            raise ValueError("shares of A, B and C must leave some leads for D")
        return self


class Rules(_Frozen):
    """BANT criteria, each optional (a criterion the export cannot support is left out and
    is ``unknown`` for every lead), the label policy and the grades."""

    budget: BudgetRule | None = None
    authority: AuthorityRule | None = None
    need: NeedRule | None = None
    timeline: TimelineRule | None = None
    label_policy: LabelPolicy
    value: Value | None = None
    grades: Grades = Grades()
    source: Path | None = Field(None, exclude=True)
    sha256: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _patterns_compile(self) -> Rules:
        import re

        checks = [("authority", k) for k in ("met", "disqualify")] + \
            [("need", k) for k in ("met_patterns", "disqualify_patterns")]
        for criterion, kind in checks:
            rule = getattr(self, criterion)
            for i, pattern in enumerate(getattr(rule, kind) if rule else ()):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{criterion}.{kind}[{i}] {pattern!r} is not a valid "
                                     f"regular expression: {exc}") from None
        for criterion in ("authority", "need"):
            rule = getattr(self, criterion)
            if rule is not None and not any(getattr(rule, k) for k in type(rule).model_fields
                                            if k.startswith("met")):
                raise ValueError(f"{criterion} names no value or pattern that meets it: add "
                                 f"{criterion}.met (or leave {criterion} out: unknown)")
        need = self.label_policy.sales_qualified.min_criteria_met
        if need > len(self.configured):
            raise ValueError(
                f"label_policy.sales_qualified.min_criteria_met is {need} but only "
                f"{len(self.configured)} criteria are configured ({self.configured}): no lead "
                "could be sales-qualified; lower it")
        sq = self.label_policy.sales_qualified
        if self.value is None and (sq.rank_by == "expected_value"
                                   or sq.min_expected_value is not None):
            raise ValueError("label_policy.sales_qualified uses expected value (rank_by or "
                             "min_expected_value) but the file has no value section: add "
                             "value.column or value.default, and value.cost_per_contact")
        return self

    @property
    def configured(self) -> list[str]:
        """The BANT criteria this file defines, in B-A-N-T order."""
        return [c for c in ("budget", "authority", "need", "timeline")
                if getattr(self, c) is not None]

    @property
    def columns(self) -> list[str]:
        """The lead columns the configured criteria (and the deal value) read."""
        value = [self.value.column] if self.value and self.value.column else []
        return list(dict.fromkeys([*(getattr(self, c).column for c in self.configured),
                                   *value]))


def _load_yaml(path: Path, model: type[BaseModel], what: str, base_fix=None) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} '{path}' does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} '{path}' cannot be read as UTF-8 text: {exc}") from None
    try:
        lines = _line_numbers(text, f"{what} '{path}'")  # first: it refuses bombs
        raw = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{what} '{path}' is nested too deeply to be a leadml config") \
            from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} '{path}' is not valid YAML:\n{exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} '{path}' must be a YAML mapping")
    if base_fix:
        raw = base_fix(raw)
    raw["source"] = str(path.resolve())
    raw["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{what} '{path}' has {exc.error_count()} problem(s):\n"
                          + _describe(exc, lines, path.name, model)) from None


def load_rules(path: str | os.PathLike) -> Rules:
    """Read and validate a BANT rules file; every problem is listed with its line."""
    return _load_yaml(Path(path), Rules, "rules file")


def default_rules() -> Rules:
    """The BANT rules shipped inside the package (``leadml/bant_default.yaml``, the same
    text as ``pipelines/configs/bant.yaml``; a test keeps them equal)."""
    from importlib.resources import files

    return load_rules(Path(str(files("leadml") / "bant_default.yaml")))
