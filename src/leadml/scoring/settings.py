"""What a scoring run is asked to do, checked when it is made: the request (input, output,
model, rules, engine) and the settings of reading and writing (delimiter, number format,
chunk size, reject rate, time, reasons).

Both name the ``leadml score`` flag that sets each field, so a bad value reads the same from
the command line, a scheduler calling :func:`leadml.jobs.score` or the Python API.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from leadml.config import DECIMAL_MARKS, THOUSANDS_SEPARATORS
from leadml.config.writeback import load_writeback
from leadml.errors import ConfigError
from leadml.scoring.run import is_uri

ENGINES = ("local", "spark")


@dataclass(frozen=True)
class ScoreSettings:
    """How the lead file is read and the scored file written."""

    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str | None = None  # the decimal mark of numbers; None: the model's
    thousands: str | None = None  # their thousands separator; None: the model's
    chunk_rows: int | None = None  # None: see leadml.scoring.chunks.chunk_rows
    max_reject_rate: float = 0.05
    scored_at: str | None = None
    rejects: Path | None = None  # default: OUT stem + .rejects.csv
    reasons: bool = True  # per-lead field reasons (leadml.explain.effects); off with --no-reasons

    def __post_init__(self) -> None:
        if self.decimal not in (None, *DECIMAL_MARKS):
            raise ConfigError(f"--decimal must be . or , (the decimal mark of the numbers), "
                              f"got {self.decimal!r}")
        if self.thousands not in (None, *THOUSANDS_SEPARATORS):
            raise ConfigError("--thousands must be one of , . ' or a space (the thousands "
                              f"separator of the numbers), got {self.thousands!r}")
        if len(self.delimiter) != 1:
            raise ConfigError(f"--delimiter must be one character, got {self.delimiter!r}")
        if self.scored_at is not None:
            try:
                pd.Timestamp(self.scored_at)
            except ValueError:
                raise ConfigError(f"--scored-at {self.scored_at!r} is not an ISO 8601 "
                                  "time") from None

    def number_format(self, contract):
        """``contract`` with this run's decimal mark and thousands separator, where set."""
        if self.decimal is None and self.thousands is None:
            return contract
        contract = replace(contract, decimal=self.decimal or contract.decimal,
                           thousands=self.thousands or contract.thousands)
        if contract.thousands == contract.decimal:
            raise ConfigError(f"the decimal mark and the thousands separator are both "
                              f"{contract.decimal!r}: pass --decimal and --thousands that "
                              "differ")
        return contract


@dataclass(frozen=True)
class ScoreRequest:
    """One nightly scoring run, as a scheduler asks for it."""

    input: str | Path
    output: str | Path
    model: str | None = None  # a model URI; default models:/<model_name>@champion
    model_name: str = "leadml"
    rules: str | Path | None = None  # default: the shipped rules
    rules_only: bool = False
    id_column: str = "lead_id"  # with rules_only (a model knows its own)
    engine: str = "local"
    spark_master: str | None = None
    spark_conf: tuple[str, ...] = ()
    log_to_mlflow: bool = False
    writeback: str | Path | None = None  # a preset name or a write-back YAML

    @property
    def writeback_spec(self):
        """The write-back file asked for, loaded (None when not)."""
        return load_writeback(self.writeback) if self.writeback else None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be local or spark, got {self.engine!r}")
        bad = [c for c in self.spark_conf if "=" not in c]
        if bad:
            raise ConfigError(f"--spark-conf takes KEY=VALUE, got {bad}")
        if self.rules_only and self.model is not None:
            raise ConfigError("--rules-only scores without a model: drop --model")
        if self.writeback and self.engine == "spark":
            raise ConfigError("--writeback is not written by the Spark engine yet: score "
                              "with --engine local to get the CRM's import file")

    @property
    def spark(self) -> bool:
        return self.engine == "spark"

    def check_locations(self, settings: ScoreSettings) -> None:
        """URIs (cluster storage) only with the Spark engine."""
        uris = [p for p in (self.input, self.output, settings.rejects) if p and is_uri(p)]
        if uris and not self.spark:
            raise ConfigError(f"{uris[0]} is a URI: the local engine reads and writes files "
                              "on this machine; add --engine spark for cluster storage")
