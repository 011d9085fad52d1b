"""The capacity-plan job: how many leads to make sales-qualified, read from the model's
test window."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from leadml.config import (
    Rules,
    TrainConfig,
    default_rules,
)
from leadml.data.schema import History
from leadml.data.tables import atomic_path, file_sha256, write_json
from leadml.errors import ConfigError, LeadDataError
from leadml.explain.effects import Explainer
from leadml.jobs.training import audited_history
from leadml.registry import (
    axes_in_points,
    load_scoring_model,
    report_inputs,
    resolve_model_uri,
)
from leadml.rules import axes, bant, capacity
from leadml.rules import capacity_plan as planning
from leadml.rules.capacity_plan import gain_figure
from leadml.scoring.chunks import check_columns, validate_rows
from leadml.scoring.run import scored_at_time, with_record_ids
from leadml.scoring.seen_ids import SeenIds
from leadml.training.fit import split_windows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    table: pd.DataFrame  # one row per capacity share (leadml.rules.capacity_plan.plan_table)
    lines: dict[float, str]  # the rules lines of each share
    y: Any  # the test window's outcomes, probabilities and ranking keys, for the chart
    p: Any
    keys: Any
    oracle: Any
    model: str
    matrix: pd.DataFrame | None = None  # the fit x engagement matrix, when the rules name axes

    def matrix_lines(self) -> list[str]:
        """The fit x engagement matrix as text (:func:`leadml.rules.axes.matrix_lines`)."""
        return axes.matrix_lines(self.matrix) if self.matrix is not None else []


def plan(cfg: TrainConfig, shares, *, rules: Rules | None = None, model: str | None = None,
         model_name: str = "leadml", oracle_column: str | None = None,
         history: History | None = None) -> Plan:
    """The capacity plan of a registered model on its own test window: the history it was
    trained on is read again (or given, as its caller validated it: ``history``) and split
    as in training (refused if it changed since)."""

    rules = rules or default_rules()
    bad = [s for s in shares if not 0 < s <= 1]
    if bad or not shares:
        raise ConfigError(f"capacity shares must be in (0, 1], got {list(shares)}")
    uri = resolve_model_uri(model, model_name)
    fitted, contract = load_scoring_model(uri)
    rules = axes_in_points(rules, fitted, contract)
    data, _ = report_inputs(uri)
    trained_on = data["data"].get("sha256")
    if trained_on and trained_on != file_sha256(cfg.dataset.path):
        raise LeadDataError(
            f"'{cfg.dataset.path}' is not the file model {contract.name} v{contract.version} "
            f"was trained on (sha256 {trained_on[:16]}...): its test window is not defined "
            "there. Pass the training config of that model, or train on this file first.")
    if history is None:
        _, history = audited_history(cfg, refuse=False)
    test = split_windows(history, cfg)["test"]
    if test.rows != data["windows"]["test"]["rows"]:
        raise ConfigError(
            f"the config's split gives a test window of {test.rows} leads, but model "
            f"{contract.name} v{contract.version} was tested on "
            f"{data['windows']['test']['rows']}: use the config it was trained with")
    leads = history.features.iloc[test.rows_slice]
    if oracle_column is not None and oracle_column not in leads:
        raise ConfigError(f"--oracle-column {oracle_column!r} is not a column of "
                          f"'{cfg.dataset.path}'")
    run_contract = with_record_ids(contract)
    frame = leads.assign(**{run_contract.id_column:
                            history.ids.iloc[test.rows_slice].astype(str).to_numpy()})
    check_columns(list(frame.columns), run_contract, rules, path=cfg.dataset.path,
                  delimiter=cfg.dataset.csv.delimiter)
    typed, _ = validate_rows(frame, run_contract, rules, seen=SeenIds(),
                             scored_at=scored_at_time("2200-01-01")[1])
    p = fitted.predict_proba(typed[contract.features])[:, 1]
    policy = planning.capacity_policy(rules.label_policy)
    ev = None
    if rules.value is not None:
        deal = typed[rules.value.column].to_numpy(dtype=float) if rules.value.column else None
        ev = capacity.expected_value(p, deal, rules.value)
    eligible = bant.label(p, bant.evaluate(typed, rules, run_contract.missing_values), policy,
                          ev) == "sales_qualified"
    keys = capacity.rank_keys(policy.sales_qualified, p, ev)
    oracle = None if oracle_column is None else \
        pd.to_numeric(leads[oracle_column], errors="coerce").to_numpy(dtype=float)
    y = history.target[test.rows_slice]
    ids = frame[run_contract.id_column].to_numpy(dtype=object)
    table = planning.plan_table(y, p, ids, eligible, list(shares), keys=keys, oracle=oracle)
    lines = {float(r["capacity_share"]): planning.rules_lines(r, rules.label_policy)
             for _, r in table.iterrows()}
    matrix = None
    if rules.axes is not None:
        axes.check(rules.axes, contract.features, reasons=True, source=rules.source)
        shares = Explainer(fitted, contract.reference_lead).shares(typed[contract.features])
        matrix = axes.matrix(axes.columns(shares, rules.axes), y, p)
    return Plan(table=table, lines=lines, y=y, p=p, keys=keys, oracle=oracle,
                model=f"{contract.name} v{contract.version}", matrix=matrix)


def write_plan(made: Plan, output: Path) -> None:
    """The plan as JSON (rows and rules lines) and its gain chart as PNG beside it."""
    import io as stdio

    import matplotlib.pyplot as plt

    shares = made.table["capacity_share"].tolist()
    write_json({"model": made.model, "leads": len(made.y), "conversions": int(made.y.sum()),
                "capacities": made.table.to_dict("records"),
                "rules_lines": {f"{s:g}": t for s, t in made.lines.items()},
                **({"matrix": made.matrix.to_dict("records")} if made.matrix is not None
                   else {})}, output)
    fig = gain_figure(made.y, made.keys, shares, oracle=made.oracle, policy_points=made.table)
    buf = stdio.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    with atomic_path(output.with_suffix(".png")) as tmp:
        tmp.write_bytes(buf.getvalue())
