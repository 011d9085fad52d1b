"""The recalibration job: the champion's rate shift refitted on the leads it scored whose
outcomes matured, registered as a challenger, and promoted only through the gate of
:func:`leadml.registry.promotion.recalibration`, decided again against the champion read
under the promotion lock."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from leadml.config import PromotionConfig, load_rules
from leadml.data.tables import file_sha256
from leadml.errors import ConfigError, LeadDataError
from leadml.jobs.monitoring import OutcomeSource, matured_leads
from leadml.model.wrappers import shift_rate, unserved
from leadml.registry import load_scoring_model, recorded_auc, resolve_model_uri
from leadml.registry import promotion as gate
from leadml.registry.recalibration import register_recalibrated
from leadml.rules import bant
from leadml.training.metrics import metrics
from leadml.training.rate_shift import recalibrated

logger = logging.getLogger(__name__)


def recalibrate(scored_paths, outcomes: OutcomeSource, *, model_name: str = "leadml",
                holdout: float = 0.3, min_leads: int = 500, horizon_days: float | None = None,
                as_of: str | None = None, promotion: PromotionConfig | None = None,
                rules=None):
    """Refit the champion's rate shift on its recently matured leads and register the
    result as a challenger (promoted when it passes the gate on the newest ``holdout`` of
    those leads). ``rules``: the rules file the runs were scored with, for the label check
    (default: the one the newest run's manifest names, if unchanged). Returns a dict: the
    new version, the decision, numbers."""

    if not 0 < holdout < 1:
        raise ConfigError(f"--holdout must be between 0 and 1, got {holdout}")
    promotion = promotion or PromotionConfig()
    uri = resolve_model_uri(None, model_name)
    champion, contract = load_scoring_model(uri)
    champion = unserved(champion)
    scored, frame, _, when = matured_leads(scored_paths, outcomes, horizon_days=horizon_days,
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
    p_new = moved(p_old)
    decision = gate.recalibration(
        "(recalibrated)", y=y_held, p_champion=p_old, p_new=p_new,
        champion_version=contract.version, recorded_auc=recorded_auc(uri),
        labels=_label_counts(held, p_old, p_new, _rules(scored.runs, rules)), cfg=promotion)
    lineage = {"parent": f"{contract.name} v{contract.version}", "as_of": str(when),
               "leads_fitted": len(fit), "leads_held_out": len(held),
               "fitted_rate": round(float(y_fit.mean()), 6),
               "fitted_predicted_rate": round(float(fit["conversion_probability"].mean()), 6),
               "held_out_first_scored_at": str(held["scored_at"].min()),
               "source_rate": new.source_rate, "target_rate": new.target_rate,
               "scoring_runs": sorted(set(mine["run"]))}
    numbers = {**decision.numbers, "held_out_ece_before": metrics(y_held, p_old)["ece"],
               "held_out_ece_after": metrics(y_held, p_new)["ece"]}
    registered = register_recalibrated(new, parent_uri=f"models:/{contract.name}/"
                                       f"{contract.version}", lineage=lineage, shift=moved,
                                       promote=decision.promote, decision=decision.message,
                                       numbers=numbers)
    message = registered.get("decision", decision.message).replace(
        "(recalibrated)", registered["version"])
    return {**registered, "decision": message, "numbers": numbers, "lineage": lineage}


def _rules(runs: pd.DataFrame, rules):
    """The rules to label with: given, else the newest run's file if it is unchanged."""
    if rules is not None:
        return load_rules(rules) if not hasattr(rules, "label_policy") else rules
    facts = runs.iloc[-1].get("rules") or {}
    path = facts.get("path")
    try:
        if path and facts.get("sha256") and file_sha256(path) == facts["sha256"]:
            return load_rules(path)
    except (OSError, ConfigError) as exc:
        logger.warning("cannot read the rules file %s: %s", path, exc)
    return None


def _label_counts(held: pd.DataFrame, p_old: np.ndarray, p_new: np.ndarray, rules
                  ) -> tuple[dict, dict] | None:
    """The held-out leads' label counts under the champion's probabilities and the new
    ones, by the rules' label policy (BANT as scored; a lead disqualified although its
    probability cleared the floor had a hard disqualifier). None without rules or BANT."""
    columns = [f"bant_{c}" for c in bant.CRITERIA]
    if rules is None or not set(columns) <= set(held.columns):
        return None
    policy = rules.label_policy
    floor = policy.disqualify_below_probability
    low = p_old < floor if floor is not None else np.zeros(len(held), bool)
    judged = held[columns].assign(hard_disqualifier=(held["label"].to_numpy() ==
                                                     "disqualified") & ~low)
    counts = [pd.Series(bant.label(p, judged, policy)).value_counts() for p in (p_old, p_new)]
    return tuple({k: int(c.get(k, 0)) for k in bant.LABELS} for c in counts)
