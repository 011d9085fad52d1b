"""When a newly trained version becomes the champion: the rule, without MLflow.

:mod:`leadml.registry` reads the current champion and its predictions on the new run's test
window, asks :func:`decide`, and moves the aliases. The rule: the challenger must have a
lower log loss (by at least ``promotion.min_log_loss_gain``) and a ROC AUC no worse than the
champion's by more than ``promotion.auc_tolerance``, both on the same newest leads.
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
