"""Fit candidates on the oldest leads, pick and calibrate on the next, test on the newest.

Nothing here looks at the test window until the model is final: the candidate is chosen
by ROC AUC on the calibration window, and the calibrator is fitted there too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from leadml.config import DriftConfig, TrainConfig, config_line
from leadml.data.schema import History
from leadml.data.values import parse_numbers
from leadml.errors import LeadDataError
from leadml.model.pipeline import scores_kept
from leadml.model.sklearn_compat import calibrator, set_calibrator, sigmoid_slope, swap_estimator
from leadml.model.wrappers import RateShifted
from leadml.training.calibration import (
    DRIFTS,
    WINDOWS,
    Choice,
    Fold,
    choose,
    out_of_fold,
    rate_shift,
    window_map,
)
from leadml.training.metrics import band_table, bootstrap_intervals, calibration_table, metrics
from leadml.training.rate_shift import embodied_rate
from leadml.training.tuning import leaderboard, run_trials

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Window:
    name: str
    start: int
    stop: int
    first_time: str
    last_time: str
    rows: int
    conversions: int

    @property
    def rows_slice(self) -> slice:
        return slice(self.start, self.stop)


@dataclass
class TrainResult:
    model: Any  # CalibratedClassifierCV, or RateShifted around one
    kind: str
    calibration_method: str
    windows: dict[str, Window]
    candidates: dict[str, dict[str, float]]
    test_metrics: dict[str, float]
    uncalibrated_test_metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    calibration: pd.DataFrame
    bands: pd.DataFrame
    X_test: pd.DataFrame
    y_test: np.ndarray
    p_test: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    drift: dict[str, Any] = field(default_factory=dict)
    calibration_choice: dict[str, Any] | None = None  # leadml.training.calibration.Choice.as_dict
    leaderboard: list[dict[str, Any]] = field(default_factory=list)  # every trial, best first
    audit: Any = None  # leadml.data.audit.Audit of the history this model was trained on
    importances: pd.DataFrame | None = None  # leadml.explain.importance, for sales ops
    insights: pd.DataFrame | None = None
    numeric_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    fitted_leads: int = 0  # the newest labelled leads the scoring model was fitted on
    #: the test window's leads the importances read, when not ``X_test``: drawn from the
    #: whole window by a Spark training (:mod:`leadml.training.whole_test`)
    importance_leads: tuple[pd.DataFrame, np.ndarray] | None = None


def numeric_ranges(X: pd.DataFrame, numeric, missing_values) -> dict[str, tuple[float, float]]:
    """Smallest and largest value of each numeric feature the model was fitted on: scoring
    rejects values far outside them (see :data:`leadml.scoring.chunks.RANGE_MARGIN`)."""

    out = {}
    for col in numeric:
        x = parse_numbers(X[col], tuple(missing_values))[0].to_numpy()
        x = x[np.isfinite(x)]
        if len(x):
            out[col] = (float(x.min()), float(x.max()))
    return out


def split_windows(history: History, cfg: TrainConfig) -> dict[str, Window]:
    """Train, calibration and test windows over the time-ordered history (newest last)."""
    n = len(history.target)
    cut1 = int(round(n * cfg.split.train))
    cut2 = int(round(n * (cfg.split.train + cfg.split.calibration)))
    bounds = {"train": (0, cut1), "calibration": (cut1, cut2), "test": (cut2, n)}
    windows = {}
    for name, (a, b) in bounds.items():
        y = history.target[a:b]
        if b - a == 0 or y.sum() == 0 or y.sum() == len(y):
            raise LeadDataError(
                f"the {name} window (rows {a}..{b} of {n} in time order) has {b - a} leads and "
                f"{int(y.sum())} conversions; each window needs both converted and unconverted "
                "leads. Add history or change the shares under 'split:' in the config."
            )
        windows[name] = Window(
            name=name, start=a, stop=b, rows=b - a, conversions=int(y.sum()),
            first_time=str(history.time.iloc[a]), last_time=str(history.time.iloc[b - 1]),
        )
    return windows


def choose_calibration(method: str, positives: int, negatives: int, threshold: int) -> str:
    """Isotonic needs many leads of both outcomes to beat a sigmoid; below that, sigmoid.

    >>> choose_calibration("auto", 5_000, 40_000, 1000)
    'isotonic'
    >>> choose_calibration("auto", 300, 9_000, 1000)
    'sigmoid'
    """
    if method != "auto":
        return method
    return "isotonic" if min(positives, negatives) >= threshold else "sigmoid"


@dataclass
class Fitted:
    """The chosen candidate, calibrated, and how it was chosen."""

    model: CalibratedClassifierCV  # the drift shift, if any, is added by with_drift
    raw: Any  # the chosen pipeline before calibration
    kind: str
    calibration_method: str
    candidates: dict[str, dict[str, float]]
    timings: dict[str, float]
    choice: Choice | None = None  # how the calibration was chosen (leadml.training.calibration)
    shift: tuple[float, float] | None = None  # the chosen drift correction's rates
    leaderboard: list[dict[str, Any]] = field(default_factory=list)  # leadml.training.tuning
    fitted_leads: int = 0  # the leads the scoring model was fitted on (the newest ones)


def newest(X: pd.DataFrame, y: np.ndarray, limit: int | None
           ) -> tuple[pd.DataFrame, np.ndarray]:
    """The newest ``limit`` of the time-ordered leads ``X``, ``y`` (all of them when None).

    >>> newest(pd.DataFrame({"a": [1, 2, 3]}), np.array([0, 1, 0]), 2)[1]
    array([1, 0])
    """
    if limit is None or len(y) <= limit:
        return X, y
    return X.iloc[len(y) - limit:], y[len(y) - limit:]


def fold_budget(limit: int | None, fold_limit: int | None) -> int | None:
    """The most leads a calibration fold's model is fitted on: the smaller budget.

    >>> fold_budget(400_000, 100_000), fold_budget(None, 100_000), fold_budget(50_000, None)
    (100000, 100000, 50000)
    """
    budgets = [b for b in (limit, fold_limit) if b is not None]
    return min(budgets) if budgets else None


def fit_calibrated(X_fit: pd.DataFrame, y_fit: np.ndarray, X_cal: pd.DataFrame,
                   y_cal: np.ndarray, cfg: TrainConfig) -> Fitted:
    """Fit each candidate on the older leads; choose by ROC AUC on the newer ones and
    calibrate there. The same step runs in training and in every backtest window.

    Every fit sees at most the newest ``cfg.model.max_fit_leads`` leads of its window."""
    limit = cfg.model.max_fit_leads
    X_all, y_all = X_fit, y_fit  # the calibration folds cap each of their own fits
    X_fit, y_fit = newest(X_fit, y_fit, limit)
    if len(np.unique(y_fit)) < 2:
        raise LeadDataError(
            f"the newest {len(y_fit):,} leads of the train window, the most a fit may use "
            f"({config_line(cfg, 'model', 'max_fit_leads')}), are all "
            f"{'converted' if y_fit[0] else 'unconverted'}: a model needs both outcomes. "
            "Raise model.max_fit_leads, or set it to null to fit on every lead")
    trials, best, chosen, cal_scores = run_trials(cfg, X_fit, y_fit, X_cal, y_cal)
    timings = {f"fit_{t.kind}_seconds": t.seconds for t in trials if t.name == t.kind}
    candidates = {t.kind: dict(t.metrics) for t in trials if t.name == t.kind}
    if cfg.model.tune is not None:
        timings["tune_seconds"] = sum(t.seconds for t in trials)
    kind, best_auc = best.kind, best.metrics["calibration_window_roc_auc"]
    method = choose_calibration(cfg.model.calibration, int(y_cal.sum()),
                                int(len(y_cal) - y_cal.sum()), cfg.model.isotonic_min_positives)
    start = time.perf_counter()
    model = CalibratedClassifierCV(FrozenEstimator(chosen), method=method)
    model.fit(X_cal, y_cal)
    if method == "sigmoid" and sigmoid_slope(model) >= 0:
        # A falling sigmoid would turn the ranking upside down on new leads.
        logger.warning("the %s model ranks the calibration window no better than chance "
                       "(ROC AUC %.3f); calibrating with isotonic, which never inverts it",
                       best.name, best_auc)
        method = "isotonic"
        model = CalibratedClassifierCV(FrozenEstimator(chosen), method=method)
        model.fit(X_cal, y_cal)
    choice, shift = None, None
    windows = WINDOWS if cfg.model.calibration_window == "auto" else \
        (cfg.model.calibration_window,)
    drifts = DRIFTS if cfg.drift.method == "auto" else ("none",)  # others: with_drift
    if len(windows) * len(drifts) > 1 or windows != ("newest",):
        folds = out_of_fold(chosen, X_all, y_all, cfg.model.calibration_folds,
                            fold_budget(limit, cfg.model.calibration_fold_max_leads))
        folds.append(Fold(cal_scores, y_cal,
                          partial(chosen.decision_function, X_fit), y_fit,
                          min(len(folds[-1].y), len(y_fit)) if folds else len(y_fit),
                          float(y_all.mean()) if len(y_fit) < len(y_all) else None))
        choice = choose(folds, method, windows=windows, drifts=drifts)
        cal = window_map(choice.window, method, folds)
        if choice.window != "newest":
            set_calibrator(model, cal)
            method = "none (own probabilities)" if choice.window == "own" else method
            if method == "sigmoid" and sigmoid_slope(model) >= 0:
                raise LeadDataError(f"the {kind} model ranks the windows before the test "
                                    "window no better than chance: nothing to calibrate")

    timings["calibrate_seconds"] = time.perf_counter() - start
    logger.info("chose %s, calibrated with %s on %s", kind, method,
                f"{len(y_cal)} leads" if choice is None or choice.window == "newest"
                else f"every labelled window ({choice.window})")
    raw = chosen
    X_seen, y_seen = X_fit, y_fit  # the leads the scoring model is fitted on
    if cfg.model.refit:
        start = time.perf_counter()
        X_seen, y_seen = newest(pd.concat([X_all, X_cal]), np.concatenate([y_all, y_cal]),
                                limit)
        raw = clone(raw).fit(X_seen, y_seen)
        # The calibration map was learned honestly, on leads the first fit never saw; the
        # refit, which has also seen them, gives scores on the same scale, so the map
        # carries over while the model is as recent as the data allows (docs/results.md).
        swap_estimator(model, raw)
        timings["refit_seconds"] = time.perf_counter() - start
        logger.info("refitted %s on %d leads under the same calibrator", kind, len(y_seen))
    if choice is not None and choice.drift != "none":
        # Measured with the model that will score, on the leads it has seen.
        labelled = np.concatenate([y_all, y_cal]) if cfg.model.refit else y_all
        shift = rate_shift(choice.drift, calibrator(model), raw.decision_function(X_seen),
                           y_seen, min(len(y_cal), len(y_seen)),
                           float(labelled.mean()) if len(y_seen) < len(labelled) else None)
    return Fitted(model=model, raw=raw, kind=kind, calibration_method=method,
                  candidates=candidates, timings=timings, choice=choice, shift=shift,
                  leaderboard=leaderboard(trials), fitted_leads=len(y_seen))


def recent_rows(n: int, share: float) -> slice:
    """The newest ``share`` of ``n`` time-ordered leads (at least one)."""
    return slice(n - max(1, int(np.ceil(share * n))), n)


def drift_rates(cfg: DriftConfig, p_recent: np.ndarray, y_recent: np.ndarray
                ) -> tuple[float, float]:
    """The base rate the model embodies and the rate to shift it to, from the model's
    probabilities ``p_recent`` on the newest labelled leads and their outcomes.

    >>> drift_rates(DriftConfig(method="recent_rate"), np.array([.1, .1]), np.array([0, 1]))
    (0.1, 0.5)
    """
    rate = float(np.clip(np.mean(y_recent), 1e-4, 1 - 1e-4))
    source = round(embodied_rate(p_recent, rate), 6)
    if cfg.method == "known_rate":
        return source, float(cfg.base_rate)
    if cfg.method == "recent_rate":
        return source, round(rate, 6)
    return source, source


def with_drift(fitted: Fitted, cfg: DriftConfig, X_before: pd.DataFrame,
               y_before: np.ndarray):
    """The calibrated model, shifted to another base rate when the drift config says so.
    ``X_before``, ``y_before``: the labelled leads before the test window, oldest first."""
    if cfg.method == "none":
        return fitted.model, {"method": "none"}
    recent = recent_rows(len(y_before), cfg.recent_share)
    p_recent = fitted.model.predict_proba(X_before.iloc[recent])[:, 1]
    source, target = drift_rates(cfg, p_recent, y_before[recent])
    logger.info("drift correction %s: base rate %.4f -> %.4f", cfg.method, source, target)
    return (RateShifted(fitted.model, source_rate=source, target_rate=target).fit(None),
            {"method": cfg.method, "source_rate": source, "target_rate": target})


def train(history: History, cfg: TrainConfig) -> TrainResult:
    """Fit, choose, calibrate and evaluate; returns the calibrated pipeline and its numbers."""
    with scores_kept():  # each window scored once per fitted pipeline
        return _train(history, cfg)


def _train(history: History, cfg: TrainConfig) -> TrainResult:
    windows = split_windows(history, cfg)
    X, y = history.features, history.target
    part = {name: (X.iloc[w.rows_slice], y[w.rows_slice]) for name, w in windows.items()}
    X_train, y_train = part["train"]
    X_cal, y_cal = part["calibration"]
    X_test, y_test = part["test"]

    fitted = fit_calibrated(X_train, y_train, X_cal, y_cal, cfg)
    before = windows["test"].start
    if cfg.drift.method == "auto":  # chosen and measured by leadml.training.calibration
        model, drift = fitted.model, {"method": fitted.choice.drift if fitted.choice
                                      else "none"}
        if fitted.shift is not None:
            source, target = fitted.shift
            model = RateShifted(fitted.model, source_rate=source, target_rate=target).fit(None)
            drift.update(source_rate=source, target_rate=target)
            logger.info("drift correction %s: base rate %.4f -> %.4f", drift["method"],
                        source, target)
    else:
        model, drift = with_drift(fitted, cfg.drift, X.iloc[:before], y[:before])
    p_test = model.predict_proba(X_test)[:, 1]
    p_raw = fitted.raw.predict_proba(X_test)[:, 1]
    bins = cfg.evaluation.calibration_bins
    return TrainResult(
        model=model,
        kind=fitted.kind,
        calibration_method=fitted.calibration_method,
        windows=windows,
        candidates=fitted.candidates,
        leaderboard=fitted.leaderboard,
        test_metrics=metrics(y_test, p_test, bins=bins),
        uncalibrated_test_metrics=metrics(y_test, p_raw, bins=bins),
        intervals=bootstrap_intervals(y_test, p_test, n=cfg.evaluation.bootstrap,
                                      seed=cfg.model.seed),
        calibration=calibration_table(y_test, p_test, bins),
        bands=band_table(y_test, p_test, cfg.evaluation.bands),
        X_test=X_test,
        y_test=y_test,
        p_test=p_test,
        timings=fitted.timings,
        drift=drift,
        calibration_choice=fitted.choice.as_dict() if fitted.choice is not None else None,
        numeric_ranges=numeric_ranges(X.iloc[:before], cfg.dataset.columns.numeric,
                                      cfg.dataset.missing_values),
        fitted_leads=fitted.fitted_leads,
    )
