"""Whether a difference monitoring sees is more than chance: tests that take the number of
leads in view, and the budget that holds the chance of any false alarm in one monitor run.

Each alert kind decides with a test (its p-value: how often chance alone gives a difference
at least this large) and an effect floor (a difference too small to act on never pages,
however many leads show it):

- **rate**: realised conversions against the predicted, an exact binomial test at the
  window's mean probability (leads with different probabilities vary less than that, so
  the test errs towards silence);
- **calibration**: a Hosmer-Lemeshow test over up to ten groups of predicted probability
  (realised against predicted in each, with the variance the probabilities imply; each
  group expects at least five conversions and five non-conversions);
- **score drift** and **input drift**: a test of homogeneity between the reference
  window's bin counts and tonight's (Cressie-Read's power divergence, whose chi-square tail
  holds at small levels where Pearson's does not: :data:`LAMBDA`), bins with fewer than five
  expected leads merged (so a field of fifty categories on fifty leads is not judged on
  noise);
- **unseen values**: a binomial test of the unseen count against the share the reference
  window had.

The budget: a monitor run's chance of any false alarm is at most ``alpha`` (default 1%).
It is split evenly over the kinds, and within a kind over every test made (Bonferroni:
each period, each pooled window, each field), so a run over many periods and fields asks
more of each difference than a run over one.
"""

from __future__ import annotations

import math

import numpy as np

#: The kinds that share the false-alarm budget.
KINDS = ("rate", "calibration", "score_drift", "input_drift", "unseen")

#: A bin expected to hold fewer leads than this is merged with its neighbour (Cochran's
#: rule), and a calibration group expects at least this many conversions.
MIN_EXPECTED = 5.0

#: The power-divergence statistic's lambda (Cressie and Read). At the small levels a
#: Bonferroni budget asks for, Pearson's chi-square (lambda 1) calls a difference too
#: readily on small samples: simulated, 50 leads in ten equal bins reach p < 3e-5 2.1 times
#: as often as stated, 120 in ten 1.4 times; with lambda 1/2, 0.68 and 0.91 times (0.7 to
#: 0.95 for 50 to 500 leads in 5 to 10 bins).
LAMBDA = 0.5


def _divergence(observed: np.ndarray, expected: np.ndarray) -> float:
    """Cressie-Read power divergence (``LAMBDA``) of counts from their expectation."""
    o, e = np.asarray(observed, float), np.asarray(expected, float)
    ratio = np.divide(o, e, out=np.ones_like(o), where=e > 0)
    return float(2 / (LAMBDA * (LAMBDA + 1)) * np.sum(o * (ratio ** LAMBDA - 1)))


def rate_p_value(converted: float, leads: int, predicted: float) -> float:
    """Two-sided p-value of ``converted`` conversions in ``leads`` leads whose mean
    predicted probability is ``predicted``.

    >>> round(rate_p_value(20, 100, 0.2), 3)
    1.0
    >>> rate_p_value(40, 100, 0.2) < 1e-4
    True
    """
    from scipy.stats import binomtest

    if leads == 0 or not 0 < predicted < 1:
        return 1.0
    return float(binomtest(int(round(converted)), leads, predicted).pvalue)


def calibration_p_value(y: np.ndarray, p: np.ndarray, groups: int = 10) -> float:
    """Hosmer-Lemeshow-style p-value of outcomes ``y`` against probabilities ``p`` (leads
    the model never saw: ``groups`` degrees of freedom). Groups of neighbouring
    probabilities hold equal expected conversions, each at least :data:`MIN_EXPECTED`
    conversions and non-conversions; each group's realised against expected conversions
    is measured by the power divergence (as :func:`homogeneity_p_value`: Pearson's
    statistic over equal-sized groups, whose low ones expect one conversion, called a
    difference 1.7 times too often at 1% and 10 times at 1e-4).

    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.6, 2000)
    >>> calibration_p_value(rng.random(2000) < p, p) > 0.01
    True
    >>> calibration_p_value(rng.random(2000) < p / 2, p) < 1e-6
    True
    """
    from scipy.stats import chi2

    y, p = np.asarray(y, float), np.asarray(p, float)
    groups = min(groups, int(min(p.sum(), (1 - p).sum()) // MIN_EXPECTED))
    if groups < 2:
        return 1.0
    order = np.argsort(p, kind="stable")
    y, p = y[order], p[order]
    # Cut where the expected conversions and non-conversions each pass a group's share.
    share = np.minimum(np.cumsum(p) / p.sum(), np.cumsum(1 - p) / (1 - p).sum())
    cuts = np.searchsorted(share, np.arange(1, groups) / groups, side="left") + 1
    stat = 0.0
    for part in np.split(np.arange(len(p)), cuts):
        if len(part) == 0:
            continue
        expected = float(p[part].sum())
        converted = float(y[part].sum())
        stat += _divergence(np.array([converted, len(part) - converted]),
                            np.array([expected, len(part) - expected]))
    return float(chi2.sf(stat, groups))


def homogeneity_p_value(counts, reference_shares, reference_leads: float | None,
                        *, ordered: bool = True) -> float:
    """p-value of a test (Cressie-Read power divergence, chi-square tail) that ``counts``
    (leads per bin tonight) come from the same distribution as the reference window
    (``reference_shares`` of ``reference_leads``; None: known exactly). Bins expected to
    hold fewer than
    :data:`MIN_EXPECTED` leads are merged with their neighbours (``ordered``: bins of a
    number, merged in order; else categories, the rarest merged together).

    >>> homogeneity_p_value([48, 52], [0.5, 0.5], 4000) > 0.5
    True
    >>> homogeneity_p_value([80, 20], [0.5, 0.5], 4000) < 1e-6
    True
    >>> homogeneity_p_value([3, 1, 0, 1], [0.7, 0.1, 0.1, 0.1], 4000)  # too few to judge
    1.0
    """
    from scipy.stats import chi2

    observed = np.asarray(counts, float)
    shares = np.clip(np.asarray(reference_shares, float), 0, None)
    n = observed.sum()
    if n == 0 or shares.sum() == 0:
        return 1.0
    shares = shares / shares.sum()
    big = reference_leads if reference_leads and reference_leads > 0 else None
    reference = shares * big if big else None
    pooled = (observed + reference) / (n + big) if big else shares
    smaller = min(n, big) if big else n
    if not ordered:  # the commonest first, so the rare ones merge with each other
        order = np.argsort(-pooled, kind="stable")
        observed, pooled = observed[order], pooled[order]
        reference = reference[order] if big else None
    groups = _merged(pooled * smaller)
    if len(groups) < 2:
        return 1.0
    o = np.array([observed[g].sum() for g in groups])
    q = np.array([pooled[g].sum() for g in groups])
    stat = _divergence(o, n * q)
    if big:
        r = np.array([reference[g].sum() for g in groups])
        stat += _divergence(r, big * q)
    return float(chi2.sf(stat, len(groups) - 1))


def _merged(expected: np.ndarray) -> list[list[int]]:
    """Consecutive bins joined until each group expects at least :data:`MIN_EXPECTED`
    leads (a last short group joins the one before it)."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0.0
    for i, e in enumerate(expected):
        if e <= 0:
            current.append(i)
            continue
        current.append(i)
        total += e
        if total >= MIN_EXPECTED:
            groups.append(current)
            current, total = [], 0.0
    if current:
        if groups:
            groups[-1] += current
        else:
            groups.append(current)
    return groups


def unseen_p_value(unseen: int, leads: int, reference_share: float = 0.0) -> float:
    """One-sided p-value of ``unseen`` values in ``leads`` when the reference window had
    ``reference_share`` of them (0: any unseen value is a change).

    >>> unseen_p_value(0, 100)
    1.0
    >>> unseen_p_value(3, 100, 0.0)
    0.0
    """
    from scipy.stats import binom

    if unseen <= 0 or leads <= 0:
        return 1.0
    if reference_share <= 0:
        return 0.0
    return float(binom.sf(unseen - 1, leads, min(reference_share, 1.0)))


def per_test_level(alpha: float, tests: dict[str, int]) -> dict[str, float]:
    """The level each test of a kind must reach so that the run's chance of any false
    alarm is at most ``alpha``: split evenly over :data:`KINDS`, then over the ``tests``
    each kind made.

    >>> per_test_level(0.01, {"rate": 4, "input_drift": 100})["input_drift"]
    2e-05
    """
    return {kind: alpha / len(KINDS) / max(tests.get(kind, 0), 1) for kind in KINDS}


def significant(p_value: float | None, level: float) -> bool:
    return p_value is not None and not math.isnan(p_value) and p_value < level
