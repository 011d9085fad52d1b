"""Which settings each candidate classifier is tried with: the leaderboard's rows.

Without ``model.tune`` every candidate is tried once, with the config's settings. With it,
each candidate is also tried with ``tune.trials`` settings drawn (seeded) from
:data:`SPACE`, until ``tune.budget_seconds`` of fitting is spent. Every trial is fitted on
the train window and judged on the calibration window that follows it in time, never on
the test window, so a setting is chosen as a model would be used: on leads newer than the
ones it learned from. The trial with the best calibration-window ROC AUC is calibrated and
becomes the model; the others are the leaderboard (child runs in MLflow).

>>> from leadml.config import ModelConfig
>>> cfg = ModelConfig(tune={"trials": 2})
>>> [(t.name, sorted(t.settings)) for t in plan(cfg)][:3]  # doctest: +NORMALIZE_WHITESPACE
[('logistic_regression', ['C', 'min_category_count', 'text_max_features']),
 ('gradient_boosting', ['l2_regularization', 'learning_rate', 'max_iter', 'max_leaf_nodes',
                        'min_category_count', 'text_max_features']),
 ('logistic_regression #1', ['C', 'min_category_count', 'text_max_features'])]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.metrics import log_loss, roc_auc_score

from leadml.config import ModelConfig, TrainConfig
from leadml.model.pipeline import build_pipeline

logger = logging.getLogger(__name__)

#: The settings of each classifier that tuning may change (the rest stay as configured).
SETTINGS = {
    "logistic_regression": ("C", "text_max_features", "min_category_count"),
    "gradient_boosting": ("learning_rate", "max_iter", "max_leaf_nodes", "l2_regularization",
                          "text_max_features", "min_category_count"),
}


def _log_uniform(low: float, high: float):
    return lambda rng: float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _one_of(*values):
    return lambda rng: values[int(rng.integers(len(values)))]


#: Where tuned settings are drawn from: wide enough to matter, narrow enough for a budget.
SPACE = {
    "C": _log_uniform(0.01, 30.0),
    "learning_rate": _log_uniform(0.02, 0.3),
    "max_iter": _one_of(100, 200, 300, 500),
    "max_leaf_nodes": _one_of(7, 15, 31, 63),
    "l2_regularization": _log_uniform(0.01, 10.0),
    "text_max_features": _one_of(20, 40, 80),
    "min_category_count": _one_of(5, 10, 20, 50),
}


@dataclass
class Trial:
    """One candidate with one group of settings, and how it did on the calibration window."""

    name: str  # the kind for the configured settings, "<kind> #<n>" for tuned ones
    kind: str
    settings: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    chosen: bool = False

    def config(self, cfg: ModelConfig) -> ModelConfig:
        return cfg.model_copy(update=self.settings)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "settings": self.settings,
                **self.metrics, "seconds": round(self.seconds, 3), "chosen": self.chosen}


def plan(cfg: ModelConfig) -> Iterator[Trial]:
    """Trials in the order they are fitted: each candidate with the configured settings,
    then (with ``tune``) drawn settings, candidates taking turns so that a budget that runs
    out leaves every candidate tried about as often."""
    for kind in cfg.candidates:
        yield Trial(kind, kind, {k: getattr(cfg, k) for k in SETTINGS[kind]})
    if cfg.tune is None:
        return
    rng = np.random.default_rng(cfg.tune.seed)
    for i in range(1, cfg.tune.trials + 1):
        for kind in cfg.candidates:
            yield Trial(f"{kind} #{i}", kind, {k: SPACE[k](rng) for k in SETTINGS[kind]})


def run_trials(cfg: TrainConfig, X_fit, y_fit, X_cal, y_cal
               ) -> tuple[list[Trial], Trial, Any, np.ndarray]:
    """Fit each trial of :func:`plan` on the train window and judge it on the calibration
    window, drawn settings only while the budget lasts. Returns every trial, the best (by
    calibration-window ROC AUC; the first on a tie), its fitted pipeline and its decision
    function on the calibration window (scored once, used again by the calibration choice)."""
    trials: list[Trial] = []
    best, best_pipe, spent = None, None, 0.0
    for trial in plan(cfg.model):
        if trial.name != trial.kind and spent > cfg.model.tune.budget_seconds:
            logger.info("tuning budget of %gs spent after %d trials",
                        cfg.model.tune.budget_seconds, len(trials))
            break
        start = time.perf_counter()
        pipe = build_pipeline(trial.kind, cfg.dataset.columns, trial.config(cfg.model),
                              missing_values=cfg.dataset.missing_values,
                              decimal=cfg.dataset.csv.decimal,
                              thousands=cfg.dataset.csv.thousands)
        pipe.fit(X_fit, y_fit)
        scores = pipe.decision_function(X_cal)
        p_cal = expit(scores)  # the binary predict_proba of both kinds
        trial.metrics = {
            "calibration_window_roc_auc": float(roc_auc_score(y_cal, p_cal)),
            "calibration_window_log_loss_uncalibrated": float(log_loss(y_cal, p_cal)),
        }
        trial.seconds = time.perf_counter() - start
        spent += trial.seconds
        trials.append(trial)
        auc = trial.metrics["calibration_window_roc_auc"]
        if best is None or auc > best.metrics["calibration_window_roc_auc"]:
            best, best_pipe, best_scores = trial, pipe, scores
        logger.info("candidate %s: calibration-window ROC AUC %.4f (%.1fs)", trial.name, auc,
                    trial.seconds)
    best.chosen = True
    return trials, best, best_pipe, best_scores


def leaderboard(trials: list[Trial]) -> list[dict[str, Any]]:
    """The trials best first (calibration-window ROC AUC), as rows for a table."""
    ranked = sorted(trials, key=lambda t: -t.metrics.get("calibration_window_roc_auc", 0))
    return [{"rank": i + 1, **t.as_dict()} for i, t in enumerate(ranked)]
