"""Scoring jobs: a nightly lead file scored on the local or the Spark engine, the sales-ops
report of a model with tonight's leads, and a quick look at why leads score as they do."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadml.config import (
    carrying,
    default_rules,
    load_rules,
)
from leadml.data.schema import REPORTED_COLUMNS, require_columns
from leadml.data.tables import (
    input_files,
    is_parquet,
    read_table,
    spreadsheet_text,
    write_text,
)
from leadml.errors import ConfigError, LeadDataError
from leadml.explain.effects import Explainer, Shares
from leadml.explain.report import render
from leadml.registry import (
    axes_in_points,
    load_scoring_model,
    log_scoring,
    logged_test_shares,
    report_inputs,
    resolve_model_uri,
)
from leadml.rules import axes, bant
from leadml.rules.display import as_machine
from leadml.scoring.chunks import rules_only_contract, score_file, typed_features
from leadml.scoring.run import is_uri, run_paths
from leadml.scoring.settings import ScoreRequest, ScoreSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreOutcome:
    manifest: dict[str, Any]
    paths: Any  # leadml.scoring.run.RunPaths
    using: str  # "leadml v3", or "the BANT rules alone"


def score(request: ScoreRequest, settings=None, *, on_progress=None) -> ScoreOutcome:
    """Check the request, load the model and rules, score on the chosen engine."""

    settings = settings or ScoreSettings()
    request.check_locations(settings)
    # Checked before the model loads: a scheduler learns of a missing file at once (a URI
    # is checked on its store once the Spark session is up).
    if not is_uri(request.input):
        input_files(request.input)
    writeback = request.writeback_spec
    paths = run_paths(request.input, request.output, settings.rejects,
                      output_is_folder=request.spark,
                      rejects_suffix=".rejects.parquet" if request.spark else ".rejects.csv",
                      writeback=writeback.preset if writeback else None)
    rules = load_rules(request.rules) if request.rules else default_rules()
    if writeback is not None:  # the lead columns it writes are carried in the scored file too
        rules = carrying(rules, writeback.lead_columns)
    if request.rules_only:
        model, contract = None, rules_only_contract(request.id_column, rules)
        using = "the BANT rules alone"
    else:
        model, contract = load_scoring_model(resolve_model_uri(request.model,
                                                               request.model_name))
        rules = axes_in_points(rules, model, contract)
        using = f"{contract.name} v{contract.version}"
    contract = settings.number_format(contract)
    logger.info("scoring %s with %s, rules %s", request.input, using, rules.sha256[:16])
    if request.spark:
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
                              rules=rules, settings=settings, on_progress=on_progress,
                              writeback=writeback)
    for warning in manifest["warnings"]:
        logger.warning(warning)
    if request.log_to_mlflow:
        logger.info("logged to MLflow run %s", log_scoring(manifest))
    return ScoreOutcome(manifest=manifest, paths=paths, using=using)




def report(output: Path, *, model: str | None = None, model_name: str = "leadml",
           scored: Path | None = None, rules: Path | None = None):
    """Write the sales-ops HTML report of a registered model (and tonight's scored file);
    returns (the page, the model's contract)."""
    import numpy as np

    uri = resolve_model_uri(model, model_name)
    fitted, contract = load_scoring_model(uri)
    data, predictions = report_inputs(uri)
    ruleset = axes_in_points(load_rules(rules) if rules else default_rules(), fitted, contract)
    cutoffs = bant.grade_cutoffs(ruleset.grades, np.asarray(contract.reference_quantiles))
    frame = None
    if scored is not None:
        frame = read_table(scored)
        require_columns(list(frame.columns), REPORTED_COLUMNS, what=f"scored file '{scored}'",
                        fix="Pass a file written by leadml score.")
        if not is_parquet(scored):  # people's words and percents back to the contract's
            manifest = Path(scored).with_name(Path(scored).stem + ".manifest.json")
            said = json.loads(manifest.read_text()) if manifest.exists() else {}
            frame = as_machine(frame, said.get("rules", {}).get("output", {}).get("words"))
        for col in ("conversion_probability", "expected_value"):
            if col in frame:
                frame[col] = frame[col].astype(float)
        if not is_parquet(scored):
            frame["lead_id"] = spreadsheet_text(frame["lead_id"])
    sq = ruleset.label_policy.sales_qualified
    capacities = [sq.capacity_share] if sq.capacity_share else \
        [min(sq.capacity / len(frame), 1.0)] if sq.capacity and frame is not None and len(frame) \
        else []
    table, note = None, ""
    if ruleset.axes is not None:
        logged = logged_test_shares(uri)
        if logged is None:
            note = ("This model's training run logged no test-window shares (it is older than "
                    "the axes): retrain it to see the fit and engagement matrix.")
        else:
            shares = Shares.logged(logged, Explainer(fitted, contract.reference_lead))
            table = axes.matrix(axes.columns(shares, ruleset.axes), logged["y"].to_numpy(),
                                logged["p"].to_numpy())
    page = render(data, predictions["y"].to_numpy(), predictions["p"].to_numpy(),
                  cutoffs=cutoffs, scored=frame, scored_name=scored.name if scored else "",
                  capacities=capacities, meanings=bant.meanings(ruleset.label_policy),
                  typical=Explainer(fitted, contract.reference_lead).typical_probability()
                  if contract.reference_lead is not None else None,
                  matrix=table, matrix_note=note)
    write_text(page, output)
    return page, contract


@dataclass(frozen=True)
class Explained:
    """Why some leads score as they do (:func:`explain`)."""

    contract: Any
    ids: list[str]
    p: Any  # each lead's probability
    typical: float  # the typical lead's
    points: Any  # per field, adding up from ``typical`` to ``p``
    what_if: Any  # per field, the move with that field alone made typical
    on_axes: dict | None = None  # fit and engagement, when the rules name the axes


def explain(lead_file: Path, *, model: str | None = None, model_name: str = "leadml",
            rows: int = 5, delimiter: str = ",", rules: Path | None = None) -> Explained:
    """Why the first ``rows`` leads of a file score as they do, and with ``rules`` naming
    the axes, their fit and engagement."""

    fitted, contract = load_scoring_model(resolve_model_uri(model, model_name))
    if contract.reference_lead is None:
        raise LeadDataError(f"model {contract.name} v{contract.version} has no reference "
                            "lead (trained before reasons existed); retrain it")
    ruleset = axes_in_points(load_rules(rules), fitted, contract) if rules else None
    if ruleset is not None:
        axes.check(ruleset.axes, contract.features, reasons=True, source=ruleset.source)
    leads = read_table(lead_file, delimiter=delimiter).head(rows)
    require_columns(list(leads.columns), contract.features, what=f"'{lead_file}'",
                    fix=f"The model expects {contract.features}.")
    explainer = Explainer(fitted, contract.reference_lead)
    typed = typed_features(leads, contract)
    shares = explainer.shares(typed)
    ids = leads[contract.id_column].astype(str).tolist() if contract.id_column in leads \
        else [str(i) for i in range(1, len(leads) + 1)]
    on_axes = axes.columns(shares, ruleset.axes) \
        if ruleset is not None and ruleset.axes is not None else None
    return Explained(contract, ids, shares.p, shares.p_ref, shares.points,
                     explainer.effects(typed)[1], on_axes)
