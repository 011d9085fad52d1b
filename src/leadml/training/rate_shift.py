"""Calibration under a moving conversion rate.

A calibrated model reproduces the conversion rate of the window it was calibrated on. When
the rate moves (in the bank data it goes from 3% to 47%), the probabilities are off by the
ratio of the odds, even if the ranking is still good. The shift itself
(:func:`leadml.model.wrappers.shift_rate`, saved with the model as
:class:`~leadml.model.wrappers.RateShifted`) is the model's; the rates it shifts between are
found here. A config's ``drift.method`` offers:

- ``recent_rate``: shift so that the mean prediction on the newest labelled leads before the
  test window equals their conversion rate (calibration-in-the-large on recent leads);
- ``known_rate``: the same, measured on the newest leads, then shifted to a rate the user
  knows (from the CRM's recent months);
- ``labelled_rate``, which ``auto`` also weighs (:mod:`leadml.training.calibration`): the
  rate of every labelled window, right when the rate swings around a level;

and one more, :func:`em_rate` (Saerens, Latinne and Decaestecker, 2002), estimates the new
rate from an unlabelled batch. It is measured in ``leadml backtest`` but not offered for
scoring: it makes one lead's probability depend on the other leads in tonight's file, and
it assumes the leads of each outcome look as they used to (label shift), which fails under
the concept drift the bank data shows (see docs/results.md).
"""

from __future__ import annotations

import numpy as np

from leadml.model.wrappers import EPS, RateShifted, shift_rate


def embodied_rate(p: np.ndarray, rate: float) -> float:
    """The base rate a model's probabilities embody, given leads whose true rate is known.

    The source rate ``s`` for which shifting ``p`` from ``s`` to ``rate`` makes the mean
    prediction equal ``rate``: calibration-in-the-large on those leads. For a model that is
    right on average there, ``s == rate`` and no shift follows.

    >>> p = np.array([0.1, 0.2, 0.3])
    >>> round(embodied_rate(p, 0.2), 3)
    0.2
    >>> round(float(shift_rate(p, embodied_rate(p, 0.4), 0.4).mean()), 3)
    0.4
    """
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    odds, target = p / (1 - p), rate / (1 - rate)
    shifted, out = np.empty_like(odds), np.empty_like(odds)
    lo, hi = 1e-9, 1 - 1e-9
    for _ in range(100):  # the mean prediction falls as the assumed source rate rises
        mid = (lo + hi) / 2
        if mid in (lo, hi):  # lo and hi are neighbouring floats: halving ends here
            return mid
        # shift_rate(p, mid, rate).mean(), the same arithmetic on odds computed once
        np.multiply(odds, target / (mid / (1 - mid)), out=shifted)
        np.divide(shifted, np.add(shifted, 1.0, out=out), out=out)
        if out.mean() > rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def em_rate(p: np.ndarray, source: float, *, tol: float = 1e-6, max_iter: int = 200) -> float:
    """Estimate a batch's conversion rate from its probabilities alone (Saerens et al. 2002).

    Alternates: shift the probabilities to the current estimate; take their mean as the
    next estimate. The fixed point is the maximum-likelihood base rate under label shift.

    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(1, 1, 3000), rng.normal(-1, 1, 7000)]  # 30% positives
    >>> p = 1 / (1 + np.exp(-2 * x) * 9)  # calibrated where positives are 10%
    >>> round(em_rate(p, 0.10), 2)
    0.3
    """
    rate = float(np.mean(p))
    for _ in range(max_iter):
        new = float(np.mean(shift_rate(p, source, rate)))
        new = min(max(new, 1e-6), 1 - 1e-6)
        if abs(new - rate) < tol:
            return new
        rate = new
    return rate


def odds(rate: float) -> float:
    return rate / (1 - rate)


def rate_of(odds_value: float) -> float:
    return odds_value / (1 + odds_value)


def recalibrated(model, p_model: np.ndarray, realised_rate: float) -> RateShifted:
    """``model`` shifted so that its mean prediction on leads whose outcomes are known
    (``p_model``, its probabilities) equals their ``realised_rate``; a model already
    shifted gets one shift, the two composed (odds multiply), so it stays one
    :class:`RateShifted` around the calibrated pipeline.

    >>> from sklearn.dummy import DummyClassifier
    >>> m = RateShifted(DummyClassifier(), source_rate=0.1, target_rate=0.2)
    >>> r = recalibrated(m, np.array([0.2, 0.2]), 0.4)
    >>> round(float(shift_rate(np.array([0.1]), r.source_rate, r.target_rate)[0]), 3)
    0.4
    """
    rate = float(np.clip(realised_rate, 1e-4, 1 - 1e-4))
    source = embodied_rate(np.asarray(p_model, dtype=float), rate)
    if isinstance(model, RateShifted):
        inner, base = model.estimator, model.source_rate
        target = rate_of(odds(model.target_rate) * odds(rate) / odds(source))
    else:
        inner, base, target = model, source, rate
    out = RateShifted(inner, source_rate=round(base, 6), target_rate=round(target, 6))
    out.classes_ = getattr(inner, "classes_", np.array([0, 1]))
    return out
