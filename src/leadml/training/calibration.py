"""Which leads to calibrate on, chosen by evidence from the windows before the test window.

Calibrating on the newest labelled window is right when the conversion rate trends and wrong
when it swings: a window that happened to convert at 15% is carried into a month that
converts at 10%. So the calibration is chosen, at every training, among:

- ``newest``: the calibration window alone (the model fitted on the train window scores it);
- ``cross_fitted``: every labelled window before the test window, each scored by a model
  fitted only on the windows before it (time-series cross-fitting), pooled;
- ``recency_weighted``: the same, each window's weight halving with its age;
- ``own``: no map, the classifier's own probabilities (refitted on every labelled lead, a
  logistic regression is calibrated in the large at their rate by construction);

each with no drift correction, shifted to the rate of every labelled window
(``labelled_rate``: right when the rate swings around a level), or shifted to the newest
window's rate (``recent_rate``: right when it trends; :mod:`leadml.training.rate_shift`). The choice
is a
backtest on the same out-of-fold scores: for each window after the second, the candidate is
built from the windows before it only and scored on it; the simplest candidate within one
standard error of the lowest pooled log loss wins. The test window is never looked at. The
numbers of every candidate are kept, for the training run and the model card.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import pandas as pd
from scipy.stats import chi2
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss

from leadml.model.sklearn_compat import sigmoid_map
from leadml.model.wrappers import shift_rate
from leadml.training.metrics import expected_calibration_error
from leadml.training.rate_shift import embodied_rate

logger = logging.getLogger(__name__)
WINDOWS = ("newest", "own", "cross_fitted", "recency_weighted")  # the incumbent first
DRIFTS = ("none", "labelled_rate", "recent_rate")


@dataclass(frozen=True)
class Fold:
    """One labelled window scored by a model fitted only on the windows before it, with
    that model's scores on the leads it was fitted on (for the drift corrections, which
    are measured on the scale of the model that scores)."""

    scores: np.ndarray
    y: np.ndarray
    # The scores on the seen leads, or how to compute them: only a fold that a drift
    # correction is backtested on reads them (:func:`choose`), and scoring hundreds of
    # thousands of leads for the others would be wasted.
    seen: np.ndarray | Callable[[], np.ndarray]
    seen_y: np.ndarray
    newest: int  # how many of the seen leads (the last ones) are the window just before
    # The conversion rate of every labelled lead before the window, when the model saw only
    # the newest of them (model.max_fit_leads); None: the seen leads are all of them.
    labelled_rate: float | None = None

    @cached_property
    def seen_scores(self) -> np.ndarray:
        return self.seen() if callable(self.seen) else self.seen


@dataclass(frozen=True)
class Choice:
    """The calibration chosen, and the backtest numbers of every candidate."""

    window: str
    drift: str
    table: pd.DataFrame  # one row per candidate: window, drift, log_loss, brier, ece, rows
    reason: str = ""  # why this candidate, in words (the model card says it)

    def as_dict(self) -> dict:
        return {"window": self.window, "drift": self.drift, "reason": self.reason,
                "candidates": self.table.round(6).to_dict("records")}


def out_of_fold(pipeline, X: pd.DataFrame, y: np.ndarray, folds: int,
                max_rows: int | None = None) -> list[Fold]:
    """Split the train window into ``folds`` time-ordered parts; score each part after the
    first with a clone of ``pipeline`` fitted on the parts before it (on their newest
    ``max_rows`` leads, as every fit of training: ``model.max_fit_leads``)."""
    bounds = np.linspace(0, len(y), folds + 1).round().astype(int)
    out = []
    for j in range(1, folds):
        first = 0 if max_rows is None else max(0, bounds[j] - max_rows)
        before, part = slice(first, bounds[j]), slice(bounds[j], bounds[j + 1])
        if len(np.unique(y[before])) < 2 or bounds[j + 1] == bounds[j]:
            continue  # a prefix with one outcome cannot teach a model
        model = clone(pipeline).fit(X.iloc[before], y[before])
        out.append(Fold(model.decision_function(X.iloc[part]), y[part],
                        partial(_scores, model, X, before), y[before],
                        int(min(bounds[j] - bounds[j - 1], bounds[j] - first)),
                        float(y[:bounds[j]].mean()) if first else None))
    return out


def _scores(model, X: pd.DataFrame, rows: slice) -> np.ndarray:
    return model.decision_function(X.iloc[rows])


def fit_map(method: str, folds: list[Fold], weights: list[float] | None = None):
    """A calibration map (as scikit-learn's ``CalibratedClassifierCV`` holds it) fitted
    on the pooled scores of ``folds``."""
    scores = np.concatenate([f.scores for f in folds])
    y = np.concatenate([f.y for f in folds])
    w = None if weights is None else np.concatenate(
        [np.full(len(f.y), wt) for f, wt in zip(folds, weights, strict=True)])
    if method == "isotonic":
        return IsotonicRegression(out_of_bounds="clip").fit(scores, y, sample_weight=w)
    return sigmoid_map(scores, y, sample_weight=w)


def own_map():
    """The identity on the classifier's scale: ``1 / (1 + exp(-f))`` of its decision
    function is its own probability."""
    return sigmoid_map(a=-1.0, b=0.0)


def window_map(window: str, method: str, folds: list[Fold]):
    """The map of a ``window`` candidate built from ``folds`` (oldest first)."""
    if window == "own":
        return own_map()
    if window == "newest":
        return fit_map(method, folds[-1:])
    if window == "cross_fitted":
        return fit_map(method, folds)
    ages = np.arange(len(folds))[::-1]
    return fit_map(method, folds, list(0.5 ** ages))


def _apply(cal, scores: np.ndarray) -> np.ndarray:
    return np.clip(cal.predict(scores), 1e-6, 1 - 1e-6)


def rate_shift(drift: str, cal, seen_scores: np.ndarray, seen_y: np.ndarray, newest: int,
               labelled_rate: float | None = None) -> tuple[float, float] | None:
    """(the rate the calibrated scores embody, the rate to move them to) for a drift
    correction, measured on the leads the scoring model was fitted on (``seen_``, oldest
    first); None for ``none``.

    ``recent_rate``: the rate of the newest ``newest`` of them. ``labelled_rate``: the
    rate of every labelled lead (``labelled_rate``, when the model saw only the newest of
    them; else the seen leads'), the best guess of next month's rate when the rate swings."""
    if drift == "none":
        return None
    used = slice(len(seen_y) - newest, None) if drift == "recent_rate" else slice(None)
    rate = float(np.clip(seen_y[used].mean(), 1e-4, 1 - 1e-4))
    source = round(embodied_rate(_apply(cal, seen_scores[used]), rate), 6)
    if drift == "labelled_rate" and labelled_rate is not None:
        rate = float(np.clip(labelled_rate, 1e-4, 1 - 1e-4))
    return source, round(rate, 6)


def _predict(cal, shift: tuple[float, float] | None, scores: np.ndarray) -> np.ndarray:
    p = _apply(cal, scores)
    return p if shift is None else np.clip(shift_rate(p, *shift), 1e-6, 1 - 1e-6)


def rate_movement(folds: list[Fold]) -> tuple[bool, str]:
    """Whether the conversion rate moves across the labelled windows (chance explains their
    spread less than once in a thousand, and the highest is 1.25 times the lowest or more),
    and the rates, oldest first, in words."""
    rates = np.array([f.y.mean() for f in folds])
    sizes = np.array([len(f.y) for f in folds])
    words = " -> ".join(f"{r:.1%}" for r in rates)
    pooled = float(np.average(rates, weights=sizes))
    if len(folds) < 3 or not 0 < pooled < 1:
        return False, words
    statistic = float(np.sum(sizes * (rates - pooled) ** 2) / (pooled * (1 - pooled)))
    chance = float(chi2.sf(statistic, len(folds) - 1))
    return bool(chance < 1e-3 and rates.max() >= 1.25 * max(rates.min(), 1e-9)), words


def choose(folds: list[Fold], method: str, *, windows=WINDOWS, drifts=DRIFTS) -> Choice:
    """Backtest every (window, drift) candidate on each fold after the second, built from
    the folds before it, and pool the log loss over those folds.

    When the rate holds, the simplest candidate within one standard error of the lowest
    pooled log loss wins (the one-standard-error rule): windows and drifts count as simpler
    in the order listed, so a more elaborate calibration must earn its place by more than
    noise. When the rate moves across the windows (:func:`rate_movement`), no correction is
    no safe default (it is itself a bet that the rate holds): each window takes the drift
    correction of lowest pooled log loss, and the one-standard-error rule then chooses among
    the windows."""
    rows, losses = [], {}
    for window in windows:
        for drift in drifts:
            ys, ps = [], []
            for j in range(2, len(folds)):
                before, target = folds[:j], folds[j]
                cal = window_map(window, method, before)
                shift = rate_shift(drift, cal, target.seen_scores, target.seen_y,
                                   target.newest, target.labelled_rate)
                p = _predict(cal, shift, target.scores)
                ys.append(target.y)
                ps.append(p)
            if not ys:
                continue
            y, p = np.concatenate(ys), np.concatenate(ps)
            losses[window, drift] = -(y * np.log(p) + (1 - y) * np.log(1 - p))
            rows.append({"window": window, "drift": drift,
                         "log_loss": float(losses[window, drift].mean()),
                         "brier": float(brier_score_loss(y, p)),
                         "ece": expected_calibration_error(y, p), "rows": int(len(y))})
    table = pd.DataFrame(rows, columns=["window", "drift", "log_loss", "brier", "ece", "rows",
                                        "within_one_se"])
    if table.empty:  # too few windows to compare: the simplest
        return Choice(windows[0], drifts[0], table, "too few windows to compare: the simplest")
    best = table.loc[table["log_loss"].idxmin()]
    low = losses[best["window"], best["drift"]]
    table["within_one_se"] = [
        bool((d := losses[w, r] - low).mean() <= d.std(ddof=1) / np.sqrt(len(d)))
        for w, r in zip(table["window"], table["drift"], strict=True)]
    moving, rates = rate_movement(folds)
    if moving:  # each window with its best rate correction, then the simplest window
        corrected = table.loc[table.groupby("window", sort=False)["log_loss"].idxmin()]
        chosen = corrected[corrected["within_one_se"]].iloc[0]
        reason = (f"the conversion rate moved across the windows before the test window "
                  f"({rates}), so each calibration window took the rate correction of lowest "
                  "backtest log loss (none is no safe default when the rate moves), and the "
                  "simplest window within one standard error of the lowest won")
    else:
        chosen = table[table["within_one_se"]].iloc[0]  # rows are in order of simplicity
        reason = (f"the conversion rate held across the windows before the test window "
                  f"({rates}): the simplest candidate within one standard error of the "
                  "lowest backtest log loss")
    logger.info("calibration chosen by a backtest on %d window(s) before the test window: "
                "%s, drift %s (log loss %.4f; lowest %.4f by %s, %s): %s",
                len(folds) - 2, chosen["window"], chosen["drift"], chosen["log_loss"],
                best["log_loss"], best["window"], best["drift"], reason)
    return Choice(str(chosen["window"]), str(chosen["drift"]), table, reason)
