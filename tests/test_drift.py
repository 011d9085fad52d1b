"""Base-rate corrections: exact in the math, measured in the backtest."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from leadml.config import DriftConfig
from leadml.errors import ConfigError
from leadml.model.wrappers import shift_rate
from leadml.training.rate_shift import em_rate, embodied_rate


def _label_shifted(rate: float, n: int = 20_000, seed: int = 0):
    """Scores from fixed class densities, calibrated at a 10% rate, drawn at ``rate``."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    x = np.where(y == 1, rng.normal(1, 1, n), rng.normal(-1, 1, n))
    return y, 1 / (1 + 9 * np.exp(-2 * x))


def test_shifting_there_and_back_is_the_identity_and_keeps_the_ranking():
    _, p = _label_shifted(0.3)
    q = shift_rate(p, 0.1, 0.35)
    np.testing.assert_allclose(shift_rate(q, 0.35, 0.1), p, atol=1e-9)
    assert np.all(np.diff(q[np.argsort(p)]) >= 0)


@pytest.mark.parametrize("rate", [0.03, 0.1, 0.3, 0.6])
def test_shift_to_the_true_rate_calibrates_under_label_shift(rate):
    y, p = _label_shifted(rate)
    q = shift_rate(p, 0.1, rate)
    assert abs(q.mean() - y.mean()) < 0.01
    assert roc_auc_score(y, q) == pytest.approx(roc_auc_score(y, p))


@pytest.mark.parametrize("rate", [0.03, 0.3, 0.6])
def test_em_recovers_a_label_shifted_rate_from_unlabelled_scores(rate):
    y, p = _label_shifted(rate, seed=1)
    assert em_rate(p, 0.1) == pytest.approx(y.mean(), abs=0.02)


def test_known_rate_needs_the_rate():
    with pytest.raises(ValueError, match="needs base_rate"):
        DriftConfig(method="known_rate")
    assert issubclass(ConfigError, ValueError)


def test_embodied_rate_is_the_bisection_over_shift_rate_bit_for_bit():
    """embodied_rate reuses the odds and stops when the interval cannot halve: the same
    float as halving 100 times with shift_rate, which the drift choices were measured with."""
    def halved(p, rate):
        lo, hi = 1e-9, 1 - 1e-9
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if shift_rate(p, mid, rate).mean() > rate else (lo, mid)
        return (lo + hi) / 2

    rng = np.random.default_rng(3)
    for case in range(60):
        p = rng.beta(rng.uniform(0.2, 3), rng.uniform(0.2, 20), int(rng.integers(1, 2000)))
        p[: len(p) // 4 if case % 3 == 0 else 0] = 0.0 if case % 2 else 1.0
        rate = float(rng.uniform(1e-4, 1 - 1e-4))
        assert embodied_rate(p, rate) == halved(p, rate)
