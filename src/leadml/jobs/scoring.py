"""Scoring jobs: a nightly lead file scored on the local or the Spark engine, the sales-ops
report of a model with tonight's leads, and a quick look at why leads score as they do."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from leadml.config import (
    DECIMAL_MARKS,
    MISSING_VALUES,
    THOUSANDS_SEPARATORS,
    default_rules,
    load_rules,
)
from leadml.data.schema import require_columns
from leadml.data.tables import input_files, read_table, write_text
from leadml.errors import ConfigError, LeadDataError
from leadml.explain.effects import Explainer
from leadml.explain.report import render
from leadml.registry import load_scoring_model, log_scoring, report_inputs, resolve_model_uri
from leadml.rules import bant
from leadml.scoring.chunks import ScoreSettings, rules_only_contract, score_file, typed_features
from leadml.scoring.run import is_uri, run_paths

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class ScoreOutcome:
    manifest: dict[str, Any]
    paths: Any  # leadml.scoring.run.RunPaths
    using: str  # "leadml v3", or "the BANT rules alone"


def score(request: ScoreRequest, settings=None, *, on_progress=None) -> ScoreOutcome:
    """Check the request, load the model and rules, score on the chosen engine."""

    settings = settings or ScoreSettings()
    spark = request.engine == "spark"
    if request.engine not in ("local", "spark"):
        raise ConfigError(f"--engine must be local or spark, got {request.engine!r}")
    if settings.decimal not in (None, *DECIMAL_MARKS):
        raise ConfigError(f"--decimal must be . or , (the decimal mark of the numbers), "
                          f"got {settings.decimal!r}")
    if settings.thousands not in (None, *THOUSANDS_SEPARATORS):
        raise ConfigError("--thousands must be one of , . ' or a space (the thousands "
                          f"separator of the numbers), got {settings.thousands!r}")
    uris = [p for p in (request.input, request.output, settings.rejects)
            if p and is_uri(p)]
    if uris and not spark:
        raise ConfigError(f"{uris[0]} is a URI: the local engine reads and writes files on "
                          "this machine; add --engine spark for cluster storage")
    # Checked before the model loads: a scheduler learns of a missing file at once (a URI
    # is checked on its store once the Spark session is up).
    if not is_uri(request.input):
        input_files(request.input)
    paths = run_paths(request.input, request.output, settings.rejects,
                            output_is_folder=spark,
                            rejects_suffix=".rejects.parquet" if spark else ".rejects.csv")
    if len(settings.delimiter) != 1:
        raise ConfigError(f"--delimiter must be one character, got {settings.delimiter!r}")
    if settings.scored_at is not None:
        try:
            pd.Timestamp(settings.scored_at)
        except ValueError:
            raise ConfigError(f"--scored-at {settings.scored_at!r} is not an ISO 8601 "
                              "time") from None
    bad = [c for c in request.spark_conf if "=" not in c]
    if bad:
        raise ConfigError(f"--spark-conf takes KEY=VALUE, got {bad}")
    rules = load_rules(request.rules) if request.rules else default_rules()
    if request.rules_only:
        if request.model is not None:
            raise ConfigError("--rules-only scores without a model: drop --model")
        sq = rules.label_policy.sales_qualified
        if sq.by_capacity or sq.min_expected_value is not None:
            raise ConfigError(f"the rules '{rules.source}' rank or cut leads by probability "
                              "or expected value (label_policy.sales_qualified capacity, "
                              "capacity_share or min_expected_value): --rules-only has no "
                              "probability; remove those keys or score with a model")
        markers = MISSING_VALUES
        model, contract = None, rules_only_contract(request.id_column, markers)
        using = "the BANT rules alone"
    else:
        model, contract = load_scoring_model(resolve_model_uri(request.model,
                                                               request.model_name))
        using = f"{contract.name} v{contract.version}"
    if settings.decimal is not None or settings.thousands is not None:
        contract = replace(contract, decimal=settings.decimal or contract.decimal,
                           thousands=settings.thousands or contract.thousands)
        if contract.thousands == contract.decimal:
            raise ConfigError(f"the decimal mark and the thousands separator are both "
                              f"{contract.decimal!r}: pass --decimal and --thousands that "
                              "differ")
    logger.info("scoring %s with %s, rules %s", request.input, using, rules.sha256[:16])
    if spark:
        try:
            from leadml.scoring.spark import score_spark  # lazy: PySpark is optional
        except ImportError:
            raise ConfigError("--engine spark needs PySpark: pip install "
                              "'leadml[spark]'") from None
        manifest = score_spark(request.input, request.output, model=model, contract=contract,
                               rules=rules, settings=settings, master=request.spark_master,
                               conf=dict(c.split("=", 1) for c in request.spark_conf))
    else:
        manifest = score_file(request.input, request.output, model=model, contract=contract,
                              rules=rules, settings=settings, on_progress=on_progress)
    for warning in manifest["warnings"]:
        logger.warning(warning)
    if request.log_to_mlflow:
        logger.info("logged to MLflow run %s", log_scoring(manifest))
    return ScoreOutcome(manifest=manifest, paths=paths, using=using)


SCORED_COLUMNS = ["lead_id", "conversion_probability", "grade", "label", "reasons"]


def report(output: Path, *, model: str | None = None, model_name: str = "leadml",
           scored: Path | None = None, rules: Path | None = None):
    """Write the sales-ops HTML report of a registered model (and tonight's scored file);
    returns (the page, the model's contract)."""
    import numpy as np


    uri = resolve_model_uri(model, model_name)
    _, contract = load_scoring_model(uri)
    data, predictions = report_inputs(uri)
    ruleset = load_rules(rules) if rules else default_rules()
    cutoffs = bant.grade_cutoffs(ruleset.grades, np.asarray(contract.reference_quantiles))
    frame = None
    if scored is not None:
        frame = read_table(scored)
        require_columns(list(frame.columns), SCORED_COLUMNS, what=f"scored file '{scored}'",
                        fix="Pass a file written by leadml score.")
        for col in ("conversion_probability", "expected_value"):
            if col in frame:
                frame[col] = frame[col].astype(float)
    sq = ruleset.label_policy.sales_qualified
    capacities = [sq.capacity_share] if sq.capacity_share else \
        [min(sq.capacity / len(frame), 1.0)] if sq.capacity and frame is not None and len(frame) \
        else []
    page = render(data, predictions["y"].to_numpy(), predictions["p"].to_numpy(),
                  cutoffs=cutoffs, scored=frame, scored_name=scored.name if scored else "",
                  capacities=capacities, meanings=bant.meanings(ruleset.label_policy))
    write_text(page, output)
    return page, contract


def explain(lead_file: Path, *, model: str | None = None, model_name: str = "leadml",
            rows: int = 5, delimiter: str = ","):
    """Why the first ``rows`` leads of a file score as they do: (contract, ids,
    probabilities, per-field effects)."""

    fitted, contract = load_scoring_model(resolve_model_uri(model, model_name))
    if contract.reference_lead is None:
        raise LeadDataError(f"model {contract.name} v{contract.version} has no reference "
                            "lead (trained before reasons existed); retrain it")
    leads = read_table(lead_file, delimiter=delimiter).head(rows)
    require_columns(list(leads.columns), contract.features, what=f"'{lead_file}'",
                    fix=f"The model expects {contract.features}.")
    p, effects = Explainer(fitted, contract.reference_lead).effects(
        typed_features(leads, contract))
    ids = leads[contract.id_column].astype(str).tolist() if contract.id_column in leads \
        else [str(i) for i in range(1, len(leads) + 1)]
    return contract, ids, p, effects
