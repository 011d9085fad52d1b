"""Setup jobs: a first training config and a first rules file drafted from an export, and
the generated sample data."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import yaml

from leadml.config import (
    Rules,
    TrainConfig,
    load_config,
)
from leadml.data.tables import read_table, write_table, write_text
from leadml.errors import ConfigError, LeadDataError, ModelUnavailableError
from leadml.jobs.planning import plan
from leadml.jobs.training import audited_history
from leadml.setup.config_init import draft
from leadml.setup.rules_init import ranked_newest, rules_text
from leadml.setup.synthetic import make_sample
from leadml.setup.synthetic_crm import write_crm_export

logger = logging.getLogger(__name__)


def rules_init(cfg: TrainConfig, output: Path) -> str:
    """Write a starting BANT rules file for the config's history (every guess commented);
    refuses to overwrite an existing file. Returns its text."""

    if output.exists():
        raise ConfigError(f"'{output}' exists: leadml rules init never overwrites a rules "
                          "file; choose another --output or remove it")
    _, history = audited_history(cfg, refuse=False)
    text = with_matrix(rules_text(history, cfg, ranked_newest(history, cfg)), cfg, history)
    write_text(text, output)
    return text


def with_matrix(text: str, cfg: TrainConfig, history) -> str:
    """The rules file ``text`` with, below its axes, the fit x engagement matrix of the
    champion's test window as comments (or how to see it, when no model was trained on
    ``history``, the config's, already read and validated, yet)."""
    drafted = yaml.safe_load(text) or {}
    if "axes" not in drafted:
        return text
    try:
        made = plan(cfg, [0.1], rules=Rules.model_validate(drafted), history=history)
        said = ["# The matrix of the champion's test window with these axes: leads, the share "
                "that converted (predicted)", *[f"#   {line}" for line in
                                                made.matrix_lines()]]
    except (ConfigError, LeadDataError, ModelUnavailableError) as exc:
        logger.info("no fit and engagement matrix in the rules file: %s", exc)
        said = ["# No matrix yet (no champion trained on this history): after leadml train, "
                "`leadml plan --config ... --rules THIS_FILE` prints its test window's"]
    lines = text.split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("  engagement_levels:"))
    return "\n".join([*lines[:at + 1], *said, *lines[at + 1:]])


def _read_export(path: Path, delimiter: str, encoding: str):
    """The export as read for a training, with the fixes named as this command's options
    (there is no config yet to set ``dataset.csv.*`` in)."""
    try:
        return read_table(path, delimiter=delimiter, encoding=encoding)
    except LeadDataError as exc:
        said = (str(exc).replace("set dataset.csv.encoding to", "pass --encoding with")
                .replace("and set dataset.csv.delimiter to", "and --delimiter")
                .replace("dataset.csv.delimiter", "--delimiter"))
        raise LeadDataError(said) from None


def config_init(export: Path, output: Path, *, target: str | None = None,
                positive: tuple[str, ...] = (), outcomes: Path | None = None,
                delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """Write a first training config for a lead export (:mod:`leadml.setup.config_init`), every
    choice commented; refuses to overwrite a file. Returns a line per choice."""
    import tempfile

    if output.exists():
        raise ConfigError(f"'{output}' exists: leadml config init never overwrites a config; "
                          "choose another --output or remove it")
    frame = _read_export(export, delimiter, encoding)
    table = _read_export(outcomes, delimiter, encoding) if outcomes is not None else None
    text, notes = draft(frame, export, output, target=target, positive=positive,
                        outcomes=table, outcomes_path=outcomes, delimiter=delimiter,
                        encoding=encoding)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=output.parent,
                                     delete=False) as tmp:
        tmp.write(text)
    try:
        load_config(tmp.name)  # what is written loads (paths relative to its folder)
    finally:
        os.unlink(tmp.name)
    write_text(text, output)
    return notes


def sample(out: Path, *, rows: int, seed: int, nightly_rows: int):
    """Write the synthetic history and nightly file; returns both frames."""

    history, nightly = make_sample(rows, seed=seed, nightly_rows=nightly_rows)
    write_table(history, out / "leads.csv")
    write_table(nightly, out / "nightly.csv")
    return history, nightly


def sample_crm(out: Path, *, rows: int, seed: int, nightly_rows: int) -> dict:
    """Write the CRM-style sample (:mod:`leadml.setup.synthetic_crm`) and its first config."""

    return write_crm_export(out, rows, seed=seed, nightly_rows=nightly_rows)
