import numpy as np
import pytest

from leadml.training.metrics import (
    band_table,
    bootstrap_intervals,
    calibration_table,
    expected_calibration_error,
    lift_at,
    metrics,
    save_plots,
)


@pytest.fixture
def calibrated():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.6, 20_000)
    return (rng.random(20_000) < p).astype(int), p


def test_calibrated_probabilities_have_small_ece_and_shifted_ones_do_not(calibrated):
    y, p = calibrated
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.clip(p + 0.1, 0, 1)) > 0.09


def test_lift_of_a_perfect_ranking():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0, 10)
    assert lift_at(y, p, 0.2) == pytest.approx(5.0)
    assert lift_at(y, p, 1.0) == pytest.approx(1.0)


def test_metrics_are_invariant_to_row_order(calibrated):
    y, p = calibrated
    perm = np.random.default_rng(1).permutation(len(y))
    a, b = metrics(y, p), metrics(y[perm], p[perm])
    for key in a:
        assert a[key] == pytest.approx(b[key])


def test_tables_account_for_every_lead(calibrated):
    y, p = calibrated
    bands = band_table(y, p, 10)
    assert bands["leads"].sum() == len(y) and bands["conversions"].sum() == y.sum()
    assert bands["conversion_rate"].is_monotonic_decreasing  # well-ranked data
    assert calibration_table(y, p, 10)["leads"].sum() == len(y)


def test_bootstrap_interval_holds_the_estimate(calibrated):
    y, p = calibrated
    ci = bootstrap_intervals(y[:3000], p[:3000], n=50, seed=0)
    point = metrics(y[:3000], p[:3000])
    for key in ("roc_auc", "brier", "log_loss"):
        assert ci[key][0] <= point[key] <= ci[key][1]
    assert bootstrap_intervals(y, p, n=0, seed=0) == {}


def test_plots_are_written(calibrated, tmp_path):
    y, p = calibrated
    paths = save_plots(y[:2000], p[:2000], tmp_path)
    assert {x.name for x in paths} == {"reliability.png", "roc.png", "precision_recall.png",
                                       "cumulative_gain.png"}
    assert all(x.stat().st_size > 5_000 for x in paths)


def test_bootstrap_resamples_score_as_the_metrics_of_the_copied_leads():
    """The weighted computation equals metrics() on each resampled copy, ties included."""
    from leadml.training.metrics import _Resampled, metrics

    rng = np.random.default_rng(5)
    p = np.round(rng.random(2_000), 2)  # many ties, as isotonic calibration gives
    y = (rng.random(2_000) < p).astype(int)
    resampled = _Resampled(y, np.clip(p, 1e-15, 1 - 1e-15), 10)
    for _ in range(10):
        idx = rng.integers(0, len(y), len(y))
        copied, weighted = metrics(y[idx], p[idx]), resampled.metrics(
            np.bincount(idx, minlength=len(y)))
        for key, value in weighted.items():
            assert value == pytest.approx(copied[key], abs=1e-9), key
