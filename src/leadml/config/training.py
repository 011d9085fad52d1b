"""The training config: the dataset and its columns, the split, the model, the rate shift,
the audit, the evaluation, the registry and promotion, typed and frozen, loaded once.

Relative paths in a config are resolved against the config file's folder.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from leadml.config.loading import Frozen, line_numbers, load_yaml

CANDIDATES = ("logistic_regression", "gradient_boosting")


DECIMAL_MARKS = (".", ",")
THOUSANDS_SEPARATORS = (",", ".", " ", "'")
#: What CRM, SQL, spreadsheet and pandas exports write for "no value" (pandas reads the
#: same spellings as missing), and web forms' unchosen "Select". Compared exactly: "NULL"
#: and "null" are two entries.
def is_uri(value: object) -> bool:
    """A location Spark reads that is not a local path: ``s3a://``, ``hdfs://``,
    ``abfss://``, ``file://``, ``dbfs:/``...

    >>> is_uri("s3a://lake/leads/"), is_uri("dbfs:/leads"), is_uri("data/leads.csv")
    (True, True, False)
    """
    return isinstance(value, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", value) is not None


def _path_or_uri(value: object) -> object:
    return value if is_uri(value) or value is None else Path(value)


#: A local path, or a URI kept as written (a Path would fold its '//'): the Spark engine
#: reads it (leadml train --engine spark), the local engine says it cannot.
PathOrUri = Annotated[Path | str, BeforeValidator(_path_or_uri)]

MISSING_VALUES = ("", "N/A", "NA", "n/a", "null", "NULL", "None", "NaN", "nan", "<NA>",
                  "#N/A", "-", "Select")


class CsvOptions(Frozen):
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


class _Conversions(Frozen):
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

    path: PathOrUri
    id_column: str = "lead_id"
    converted_at_column: str = "converted_at"


class Columns(Frozen):
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

    @property
    def roles(self) -> dict[str, str]:
        """Each feature and its role (``numeric``, ``categorical`` or ``text``), in
        :attr:`features` order."""
        return {**dict.fromkeys(self.numeric, "numeric"),
                **dict.fromkeys(self.categorical, "categorical"),
                **dict.fromkeys(self.text, "text")}


class DatasetConfig(Frozen):
    path: PathOrUri | None = Field(None, description=(
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
    def time_order(self) -> str:
        """What orders the leads in time ("newest" means last by it), in words."""
        if self.time_column is None:
            return "their order in the file (no time_column)"
        if self.time_format == "sequence":
            return f"'{self.time_column}', a sequence: the order leads were created in"
        return f"'{self.time_column}', when each lead was created"

    @property
    def outcome_columns(self) -> set[str]:
        """The lead file's columns that hold the outcome itself: the target column and its
        conversion time, or the outcomes table's conversion time when that table is the
        lead file (a CRM export with a 'Became a Customer Date'). Neither features nor
        unused columns nor leaks to report: the outcome."""
        if self.target is not None:
            return {self.target.column, *filter(None, [self.target.converted_at_column])}
        same = self.outcomes is not None and self.path is not None and (
            str(self.outcomes.path) == str(self.path) if is_uri(self.path) else
            Path(self.outcomes.path).resolve() == Path(self.path).resolve())
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


class SplitConfig(Frozen):
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


class TuneConfig(Frozen):
    """Try each candidate with drawn settings too (leadml.training.tuning), judged on the
    calibration window, within a time budget."""

    trials: int = Field(10, ge=1, le=200, description="drawn settings per candidate")
    budget_seconds: float = Field(300.0, gt=0, description=(
        "stop drawing once this much time is spent fitting trials (the configured settings "
        "are always tried)"))
    seed: int = 0


class ModelConfig(Frozen):
    candidates: tuple[Literal["logistic_regression", "gradient_boosting"], ...] = CANDIDATES
    calibration: Literal["auto", "sigmoid", "isotonic"] = "auto"
    isotonic_min_positives: int = Field(1000, ge=1, description="'auto' picks isotonic from here")
    calibration_window: Literal["auto", "own", "newest", "cross_fitted",
                                "recency_weighted"] = Field("auto", description=(
            "which labelled leads the calibration map is fitted on (leadml.training.calibration); "
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
    calibration_fold_max_leads: int | None = Field(100_000, ge=1000, description=(
        "each calibration fold's model (which only scores the next part, for choosing the "
        "calibration) is fitted on at most this many of the newest leads before its part; "
        "null: max_fit_leads. Binds only on histories over about 200,000 leads "
        "(docs/performance.md)"))
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


class EvaluationConfig(Frozen):
    bootstrap: int = Field(200, ge=0, description="resamples for confidence intervals; 0 = off")
    bands: int = Field(10, ge=2, le=100)
    calibration_bins: int = Field(10, ge=2, le=100)


class RegistryConfig(Frozen):
    model_name: str = Field("leadml", min_length=1)
    experiment: str = Field("leadml", min_length=1)
    tracking_uri: str | None = None


class PromotionConfig(Frozen):
    """A challenger becomes champion if its log loss is lower on the newest window and
    its ROC AUC is not worse by more than ``auc_tolerance``."""

    auc_tolerance: float = Field(0.005, ge=0, le=1)
    min_log_loss_gain: float = Field(0.0, ge=0)
    min_held_out_leads: int = Field(200, ge=1, description=(
        "fewer leads to compare on (training's test window, recalibration's held-out "
        "leads) and a new version is not promoted: the comparison would be noise"))
    min_held_out_conversions: int = Field(20, ge=1, description=(
        "fewer conversions among them, likewise"))


class AuditConfig(Frozen):
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


class DriftConfig(Frozen):
    """How the calibrated probabilities follow a moving conversion rate
    (:mod:`leadml.training.rate_shift`).

    ``none``: keep the calibration's rate. ``recent_rate``: shift to the rate of the
    newest ``recent_share`` of the labelled leads before the test window. ``known_rate``:
    shift to ``base_rate``, a rate you know from the CRM's recent months. ``auto``: ``none``,
    ``labelled_rate`` (the rate of every labelled window) or ``recent_rate`` (measured on
    the calibration window), whichever the backtest of :mod:`leadml.training.calibration`
    prefers.
    """

    method: Literal["auto", "none", "recent_rate", "known_rate"] = "auto"
    recent_share: float = Field(0.1, gt=0, le=1)
    base_rate: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="after")
    def _rate_for_known(self) -> DriftConfig:
        if self.method == "known_rate" and self.base_rate is None:
            raise ValueError("method 'known_rate' needs base_rate (e.g. 0.12)")
        return self


class TrainConfig(Frozen):
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


def _resolve_paths(raw: dict, base: Path) -> dict:
    ds = raw.get("dataset")
    if isinstance(ds, dict):
        if isinstance(ds.get("path"), str) and not is_uri(ds["path"]):
            ds["path"] = str((base / ds["path"]).resolve())
        outcomes = ds.get("outcomes")
        if isinstance(outcomes, dict) and isinstance(outcomes.get("path"), str) and \
                not is_uri(outcomes["path"]):
            outcomes["path"] = str((base / outcomes["path"]).resolve())
    return raw


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read and validate a training config; every problem is listed with its line."""
    path = Path(path)
    return load_yaml(path, TrainConfig, "config file",
                      lambda raw: _resolve_paths(raw, path.parent.resolve()))


def config_line(cfg: TrainConfig, *keys: str | int) -> str:
    """``file:line`` of a key in the config's own file, for error messages."""
    if cfg.source is None:
        return "the config"
    text = Path(cfg.source).read_text(encoding="utf-8")
    lines = line_numbers(text)
    key = tuple(keys)
    while key and key not in lines:
        key = key[:-1]
    dotted = ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in keys)
    return f"{Path(cfg.source).name}:{lines.get(key, 1)} ({dotted.replace('.[', '[')})"
