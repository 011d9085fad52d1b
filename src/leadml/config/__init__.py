"""Typed, frozen configuration loaded once from YAML: the training config
(:mod:`~leadml.config.training`) and the BANT rules file (:mod:`~leadml.config.rules`), both
read by :mod:`~leadml.config.loading`, which reports every problem at its line."""

from leadml.config.rules import (
    AuthorityRule,
    Axes,
    BudgetRule,
    Grades,
    LabelPolicy,
    NeedRule,
    Rules,
    SalesQualified,
    TimelineRule,
    Value,
    carrying,
    default_rules,
    load_rules,
)
from leadml.config.training import (
    CANDIDATES,
    DECIMAL_MARKS,
    MISSING_VALUES,
    THOUSANDS_SEPARATORS,
    AuditConfig,
    Columns,
    CsvOptions,
    DatasetConfig,
    DriftConfig,
    EvaluationConfig,
    ModelConfig,
    OutcomesTable,
    PromotionConfig,
    RegistryConfig,
    SplitConfig,
    TargetColumn,
    TrainConfig,
    TuneConfig,
    config_line,
    is_uri,
    load_config,
)

__all__ = [
    "CANDIDATES", "DECIMAL_MARKS", "MISSING_VALUES", "THOUSANDS_SEPARATORS", "AuditConfig",
    "AuthorityRule", "BudgetRule", "Columns", "CsvOptions", "DatasetConfig", "DriftConfig",
    "EvaluationConfig", "Grades", "LabelPolicy", "ModelConfig", "NeedRule", "OutcomesTable",
    "PromotionConfig", "carrying", "Axes", "RegistryConfig", "Rules", "SalesQualified",
    "SplitConfig",
    "TargetColumn", "TimelineRule", "TrainConfig", "TuneConfig", "Value", "config_line",
    "default_rules", "is_uri", "load_config", "load_rules",
]
