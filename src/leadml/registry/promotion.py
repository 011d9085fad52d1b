"""When a newly trained version becomes the champion: the rule, without MLflow.

:mod:`leadml.registry` reads the current champion and its predictions on the new run's test
window, asks :func:`decide`, and moves the aliases. The rule: the challenger must have a
lower log loss (by at least ``promotion.min_log_loss_gain``) and a ROC AUC no worse than the
champion's by more than ``promotion.auc_tolerance``, both on the same newest leads, of which
there must be at least ``promotion.min_held_out_leads`` with ``min_held_out_conversions``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadml.config import PromotionConfig
from leadml.training.metrics import metrics as window_metrics


@dataclass(frozen=True)
class Decision:
    promote: bool
    message: str
    numbers: dict[str, float]


def first_champion(version: str, name: str, numbers: dict[str, float]) -> Decision:
    return Decision(True, f"version {version} is the first champion of '{name}'", numbers)


def decide(version: str, ours: dict[str, float], *, champion_version: str,
           y_test: np.ndarray, p_champion: np.ndarray | None, cfg: PromotionConfig,
           test_first_time: str, champion_train_end: str | None, force: bool = False,
           champion_error: str | None = None) -> Decision:
    """Compare the challenger (``ours``: its test metrics) with the champion's predictions
    ``p_champion`` on the same test window."""
    numbers = {"challenger_log_loss": ours["log_loss"], "challenger_roc_auc": ours["roc_auc"]}
    if force:
        return Decision(True, f"version {version} promoted over version {champion_version} "
                        "by --force-promote", numbers)
    if p_champion is None:
        return Decision(False, f"version {version} not promoted: champion version "
                        f"{champion_version} cannot score this data ({champion_error}); "
                        "compare by hand and use --force-promote", numbers)
    too_few = _too_few(np.asarray(y_test, int), cfg)
    if too_few:
        return Decision(False, f"version {version} stays challenger: {too_few}", numbers)
    theirs = window_metrics(y_test, p_champion)
    numbers.update({"champion_log_loss": theirs["log_loss"],
                    "champion_roc_auc": theirs["roc_auc"]})
    gain = theirs["log_loss"] - ours["log_loss"]
    auc_ok = ours["roc_auc"] >= theirs["roc_auc"] - cfg.auc_tolerance
    side = (f"challenger v{version}: log loss {ours['log_loss']:.4f}, ROC AUC "
            f"{ours['roc_auc']:.4f}; champion v{champion_version}: log loss "
            f"{theirs['log_loss']:.4f}, ROC AUC {theirs['roc_auc']:.4f} (same test window, "
            f"{len(y_test)} leads)")
    if champion_train_end and champion_train_end >= test_first_time:
        side += (f"; note: the champion was trained on leads up to {champion_train_end}, "
                 "inside this test window, which favours it")
    if gain > cfg.min_log_loss_gain and auc_ok:
        return Decision(True, f"version {version} promoted to champion: {side}", numbers)
    why = "log loss not lower" if gain <= cfg.min_log_loss_gain else \
        f"ROC AUC worse by more than {cfg.auc_tolerance}"
    return Decision(False, f"version {version} stays challenger ({why}): {side}", numbers)


def auc_interval(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """ROC AUC of ``p`` on ``y`` and its 95% interval (Hanley and McNeil's standard error).

    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(400) < 0.3
    >>> auc, lo, hi = auc_interval(y, y + rng.normal(0, 1, 400))
    >>> lo < auc < hi and hi - lo < 0.15
    True
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, int)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return (float("nan"),) * 3
    auc = float(roc_auc_score(y, p))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + (pos - 1) * (q1 - auc * auc)
                  + (neg - 1) * (q2 - auc * auc)) / (pos * neg))
    return auc, max(0.0, float(auc - 1.96 * se)), min(1.0, float(auc + 1.96 * se))


def recalibration(version: str, *, y: np.ndarray, p_champion: np.ndarray,
                  p_new: np.ndarray, champion_version: str, recorded_auc: float | None,
                  labels: tuple[dict, dict] | None, cfg: PromotionConfig) -> Decision:
    """The gate of ``leadml recalibrate``, on the newest matured leads held out: enough of
    them (``min_held_out_leads``, ``min_held_out_conversions``); a ranking no worse than
    the champion's recorded test ROC AUC by more than ``auc_tolerance`` beyond the held-out
    interval (a worse ranking means the outcomes are not what they seem, or the model
    needs retraining: a rate shift cannot fix it); no label the champion gives emptied by
    the new probabilities (``labels``: the champion's and the new version's label counts
    on the held-out leads, None when the rules could not be read); then the training
    rule (:func:`decide`)."""
    y = np.asarray(y, int)
    ours = window_metrics(y, p_new)
    auc, low, high = auc_interval(y, p_new)
    numbers = {"challenger_log_loss": ours["log_loss"], "challenger_roc_auc": ours["roc_auc"],
               "held_out_leads": float(len(y)), "held_out_conversions": float(y.sum()),
               "held_out_roc_auc_low": low, "held_out_roc_auc_high": high}
    refused = []
    too_few = _too_few(y, cfg)
    if too_few:
        refused.append(too_few)
    elif recorded_auc is not None and high < recorded_auc - cfg.auc_tolerance:
        refused.append(f"ROC AUC on the held-out leads {auc:.3f} (95% {low:.3f} to "
                       f"{high:.3f}) against {recorded_auc:.3f} when version "
                       f"{champion_version} was tested: the ranking is worse than a rate "
                       "shift can explain; check that open leads are not read as lost "
                       "(--horizon-days), then retrain with leadml train")
    if labels is None:
        refused.append("the labels could not be compared: the rules file the runs were "
                       "scored with is gone or changed (pass --rules)")
    else:
        before, after = labels
        for label, count in before.items():
            if count >= 5 and after.get(label, 0) == 0:
                refused.append(f"it would label none of the held-out leads {label} (the "
                               f"champion labels {count} of {len(y)})")
        numbers.update({f"held_out_{k}_champion": float(v) for k, v in before.items()})
        numbers.update({f"held_out_{k}_new": float(v) for k, v in after.items()})
    if refused:
        return Decision(False, f"version {version} not promoted: {'; '.join(refused)}",
                        numbers)
    decision = decide(version, ours, champion_version=champion_version, y_test=y,
                      p_champion=p_champion, cfg=cfg, test_first_time="",
                      champion_train_end=None)
    return Decision(decision.promote, decision.message, {**numbers, **decision.numbers})


def _too_few(y: np.ndarray, cfg: PromotionConfig) -> str:
    """Why the newest leads are too few to compare two versions on, or ''."""
    if len(y) >= cfg.min_held_out_leads and y.sum() >= cfg.min_held_out_conversions:
        return ""
    return (f"{len(y)} leads with {int(y.sum())} conversions to compare on, fewer than "
            f"promotion.min_held_out_leads ({cfg.min_held_out_leads}) or "
            f"min_held_out_conversions ({cfg.min_held_out_conversions}): a difference on so "
            "few is noise; wait for more outcomes, or promote by hand (--force-promote)")
