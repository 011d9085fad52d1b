"""Monitoring jobs: how scored leads converted as their outcomes matured, and a champion
recalibrated on them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadml.config import (
    PromotionConfig,
)
from leadml.data.tables import (
    write_json,
    write_table,
    write_text,
)
from leadml.errors import ConfigError, LeadDataError
from leadml.model.wrappers import shift_rate, unserved
from leadml.monitoring.alerts import Thresholds
from leadml.monitoring.monitor import Reference, mature, summarize
from leadml.monitoring.outcomes import read_input, read_outcomes, read_scored
from leadml.monitoring.page import render
from leadml.monitoring.statistics import field_bins, quantile_reference
from leadml.registry import load_scoring_model, log_monitoring, resolve_model_uri
from leadml.registry import promotion as gate
from leadml.registry.recalibration import register_recalibrated
from leadml.training.metrics import metrics
from leadml.training.rate_shift import recalibrated

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutcomeSource:
    """Where the outcomes of scored leads are, and how a conversion is recorded."""

    path: str | Path
    id_column: str = "lead_id"
    converted_at_column: str | None = None
    converted_column: str | None = None
    positive_values: tuple[str, ...] = ("1", "true", "yes")
    time_format: str = "iso"
    delimiter: str = ","

    def read(self) -> pd.DataFrame:
        return read_outcomes(self.path, id_column=self.id_column,
                             converted_at=self.converted_at_column,
                             converted=self.converted_column,
                             positive_values=self.positive_values,
                             time_format=self.time_format, delimiter=self.delimiter)


def _matured(scored_paths, outcomes: OutcomeSource, *, horizon_days: float | None,
             as_of: str | None):
    """(the scored runs, every scored lead with ``matured`` and ``converted``, horizon,
    as-of time)."""

    scored = read_scored(scored_paths)
    if horizon_days is None:
        stated = {h for h in scored.runs["horizon_days"] if h is not None}
        horizon_days = max(stated) if stated else None
    when = pd.Timestamp(as_of) if as_of else pd.Timestamp.now(tz="UTC")
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    frame = mature(scored.leads, outcomes.read(), horizon_days=horizon_days, as_of=when)
    early = frame.loc[frame["converted_before_scoring"], "lead_id"]
    if len(early):
        logger.warning(
            "%d scored lead(s) had converted more than a day before they were scored (%s): "
            "left out of the realised rates; a nightly file should hold open leads only "
            "(check the export's filter)", len(early), ", ".join(map(str, early.iloc[:3])))
    return scored, frame, horizon_days, when


def monitor(scored_paths, outcomes: OutcomeSource, *, output: Path | None = None,
            by: str = "run", horizon_days: float | None = None, as_of: str | None = None,
            thresholds=None, log_to_mlflow: bool = True):
    """Realised against predicted conversion of past scoring runs
    (:mod:`leadml.monitoring.monitor`):
    writes ``monitor.json``, ``periods.csv`` and ``monitor.html`` to ``output`` and logs an
    MLflow run. ``thresholds``: a :class:`~leadml.monitoring.alerts.Thresholds` or its fields as a
    dict. Returns the :class:`~leadml.monitoring.monitor.Monitoring`."""

    if by not in ("run", "week"):
        raise ConfigError(f"--by must be run or week, got {by!r}")
    if output is not None and output.exists() and not output.is_dir():
        raise ConfigError(f"--output '{output}' is a file: monitor writes a folder "
                          "(monitor.html, monitor.json, periods.csv); choose another name")
    scored, frame, horizon, when = _matured(scored_paths, outcomes,
                                            horizon_days=horizon_days, as_of=as_of)

    references, contracts = {}, {}
    for model, name, version in scored.runs[["model", "model_name", "model_version"]] \
            .drop_duplicates().itertuples(index=False):
        try:
            contracts[model] = load_scoring_model(f"models:/{name}/{version}")[1]
        except Exception as exc:  # a model exported or deleted since: no drift shown
            logger.warning("no reference for %s (%s): score and input drift not shown",
                           model, str(exc)[:200])
            continue
        c = contracts[model]
        references[model] = Reference(
            score=c.score_reference or quantile_reference(c.reference_quantiles),
            fields=c.field_reference, unseen=c.unseen_reference)
    bins = []
    for model, facts in zip(scored.runs["model"], scored.runs["input"], strict=True):
        contract = contracts.get(model)
        leads = read_input(facts) if contract and contract.field_reference else None
        bins.append(None if leads is None else field_bins(
            leads, contract.field_reference, contract.missing_values,
            decimal=facts.get("decimal") or contract.decimal,
            thousands=facts.get("thousands", contract.thousands)))
    scored.runs["input_bins"] = bins
    if isinstance(thresholds, dict):
        thresholds = Thresholds(**thresholds)
    result = summarize(frame, scored.runs, by=by, thresholds=thresholds or Thresholds(),
                           references=references)
    distinct = frame["lead_id"].nunique()
    note = (f"{distinct:,} leads scored in {len(scored.runs)} run(s)"
            + (f" ({len(frame) - distinct:,} of the scorings repeat a lead)"
               if len(frame) > distinct else "") + "; outcomes from "
            f"{outcomes.path} as of {when:%Y-%m-%d %H:%M} UTC; "
            + (f"a lead matures {horizon:g} days after it was scored"
               if horizon else "a lead counts once the outcomes table lists it (no horizon)")
            + (f"; {early:,} scored lead(s) had converted before they were scored: left "
               "out" if (early := int(frame["converted_before_scoring"].sum())) else "")
            + (f"; skipped: {'; '.join(scored.skipped)}" if scored.skipped else ""))
    result.note = note
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        write_json({**result.to_dict(), "note": note, "horizon_days": horizon,
                    "as_of": str(when)}, output / "monitor.json")
        write_table(result.periods.drop(columns=["unseen_rates"]), output / "periods.csv")
        write_text(render(result, title="leadml monitoring: realised against predicted",
                              note=note), output / "monitor.html")
    if log_to_mlflow:

        result.run_id = log_monitoring(result, output)
    return result


def recalibrate(scored_paths, outcomes: OutcomeSource, *, model_name: str = "leadml",
                holdout: float = 0.3, min_leads: int = 500, horizon_days: float | None = None,
                as_of: str | None = None, promotion=None):
    """Refit the champion's rate shift on its recently matured leads and register the
    result as a challenger (promoted when it beats the champion on the newest
    ``holdout`` of those leads). Returns a dict: the new version, the decision, numbers."""
    import numpy as np

    if not 0 < holdout < 1:
        raise ConfigError(f"--holdout must be between 0 and 1, got {holdout}")

    uri = resolve_model_uri(None, model_name)
    champion, contract = load_scoring_model(uri)
    champion = unserved(champion)
    scored, frame, _, when = _matured(scored_paths, outcomes, horizon_days=horizon_days,
                                      as_of=as_of)
    mine = frame[(frame["model"] == f"{contract.name} v{contract.version}") & frame["matured"]]
    # A lead scored by several runs (overlapping nightly exports) counts once, as first scored.
    mine = mine.drop_duplicates("lead_id", keep="first")
    if len(mine) < min_leads:
        raise LeadDataError(
            f"{len(mine)} matured leads were scored by the champion {contract.name} "
            f"v{contract.version} (of {len(frame)} scored in these runs); recalibrating needs "
            f"at least {min_leads} (--min-leads): wait for outcomes to mature, or pass more "
            "scoring runs")
    mine = mine.sort_values("scored_at", kind="stable")
    cut = int(round(len(mine) * (1 - holdout)))
    fit, held = mine.iloc[:cut], mine.iloc[cut:]
    y_fit = fit["converted"].to_numpy(int)
    new = recalibrated(champion, fit["conversion_probability"].to_numpy(float), y_fit.mean())
    old_shift = (champion.source_rate, champion.target_rate) \
        if hasattr(champion, "source_rate") else None

    def moved(p):  # the champion's probabilities as the new model gives them
        p = np.asarray(p, dtype=float)
        if old_shift is not None:
            p = shift_rate(p, old_shift[1], old_shift[0])  # undo the champion's shift
        return shift_rate(p, new.source_rate, new.target_rate)

    y_held = held["converted"].to_numpy(int)
    p_old = held["conversion_probability"].to_numpy(float)
    ours = metrics(y_held, moved(p_old))
    decision = gate.decide("(recalibrated)", ours, champion_version=contract.version,
                           y_test=y_held, p_champion=p_old, cfg=promotion or PromotionConfig(),
                           test_first_time="", champion_train_end=None)
    lineage = {"parent": f"{contract.name} v{contract.version}", "as_of": str(when),
               "leads_fitted": len(fit), "leads_held_out": len(held),
               "fitted_rate": round(float(y_fit.mean()), 6),
               "fitted_predicted_rate": round(float(fit["conversion_probability"].mean()), 6),
               "held_out_first_scored_at": str(held["scored_at"].min()),
               "source_rate": new.source_rate, "target_rate": new.target_rate,
               "scoring_runs": sorted(set(mine["run"]))}
    numbers = {**decision.numbers, "held_out_ece_before": metrics(y_held, p_old)["ece"],
               "held_out_ece_after": ours["ece"]}
    registered = register_recalibrated(new, parent_uri=f"models:/{contract.name}/"
                                       f"{contract.version}", lineage=lineage, shift=moved,
                                       promote=decision.promote, decision=decision.message,
                                       numbers=numbers)
    message = decision.message.replace("(recalibrated)", registered["version"])
    return {**registered, "decision": message, "numbers": numbers, "lineage": lineage}
