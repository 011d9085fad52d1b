"""The calibration chosen by evidence (leadml.training.calibration): built and chosen on the windows
before the test window only, and what it buys when the conversion rate swings."""

import numpy as np
import pandas as pd
import pytest

from leadml.config import load_config
from leadml.data.schema import validate_history
from leadml.setup.synthetic import make_leads
from leadml.training.calibration import Fold, choose, own_map, rate_shift, window_map
from leadml.training.fit import train
from tests.helpers import write_config


def _history(folder, leads, **sections):
    leads.to_csv(folder / "leads.csv", index=False)
    cfg = load_config(write_config(folder, folder / "leads.csv", **sections))
    raw = pd.read_csv(folder / "leads.csv", dtype=str, keep_default_na=False)
    return cfg, validate_history(raw, cfg)


def test_own_map_is_the_classifiers_own_probability():
    f = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(own_map().predict(f), 1 / (1 + np.exp(-f)))


def test_a_swing_in_the_rate_is_chosen_against_and_every_candidate_is_kept():
    """Folds whose rates swing 5% / 20% around 12%: calibrating on the newest window alone
    carries its rate into the next; the backtest prefers a map that does not."""
    rng = np.random.default_rng(0)
    folds = []
    for k in range(6):
        rate = 0.05 if k % 2 == 0 else 0.20
        scores = rng.normal(0, 1, 4000)
        p = 1 / (1 + np.exp(-(scores + np.log(rate / (1 - rate)))))
        y = (rng.random(4000) < p).astype(int)
        seen = rng.normal(0, 1, 4000 * (k + 1))
        seen_y = (rng.random(len(seen)) < 1 / (1 + np.exp(-(seen - 2)))).astype(int)
        folds.append(Fold(scores, y, seen, seen_y, 4000))
    choice = choose(folds, "sigmoid")
    assert len(choice.table) == 12  # 4 windows x 3 drift corrections, each with its numbers
    assert {"log_loss", "brier", "ece", "within_one_se"} <= set(choice.table.columns)
    newest = choice.table.query("window == 'newest' and drift == 'none'")["log_loss"].item()
    chosen = choice.table.query(f"window == '{choice.window}' and drift == '{choice.drift}'")
    assert chosen["log_loss"].item() < newest - 0.01
    assert (choice.window, choice.drift) != ("newest", "none")
    pooled = window_map("cross_fitted", "sigmoid", folds).predict(np.zeros(1))[0]
    assert 0.09 < pooled < 0.15  # the pooled map sits at the long-run rate


def test_under_a_fit_budget_the_labelled_rate_is_every_labelled_leads():
    """With ``model.max_fit_leads`` the model sees only the newest leads; the labelled-rate
    correction still moves it to the rate of every labelled lead (the long-run rate when
    the rate swings), measuring what the model embodies on the leads it saw."""
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 1, 5000)
    y = (rng.random(5000) < 1 / (1 + np.exp(-(scores - 2.5)))).astype(int)  # ~10%
    cal = own_map()
    seen_only = rate_shift("labelled_rate", cal, scores, y, 1000)
    capped = rate_shift("labelled_rate", cal, scores, y, 1000, labelled_rate=0.2)
    assert capped == (seen_only[0], 0.2) and seen_only[1] == round(y.mean(), 6)
    assert rate_shift("recent_rate", cal, scores, y, 1000, labelled_rate=0.2) == \
        rate_shift("recent_rate", cal, scores, y, 1000)
    assert rate_shift("none", cal, scores, y, 1000, labelled_rate=0.2) is None


@pytest.mark.slow
def test_the_choice_never_looks_at_the_test_window(tmp_path):
    leads = make_leads(6_000, seed=3, drift=0.0, swing=1.0, swings=2.5)
    cfg, history = _history(tmp_path, leads)
    first = train(history, cfg)
    test = first.windows["test"].rows_slice
    flipped = history.target.copy()
    flipped[test] = 1 - flipped[test]  # any outcome in the test window
    history.target[:] = flipped
    second = train(history, cfg)
    assert first.calibration_choice == second.calibration_choice
    np.testing.assert_allclose(first.p_test, second.p_test)


@pytest.mark.slow
def test_when_the_rate_swings_the_chosen_calibration_beats_the_newest_window(tmp_path):
    leads = make_leads(12_000, seed=3, drift=0.0, swing=1.0, swings=2.5)
    cfg, history = _history(tmp_path, leads)
    chosen = train(history, cfg)
    cfg_newest, _ = _history(tmp_path, leads, model={"calibration_window": "newest"},
                             drift={"method": "none"})
    newest = train(history, cfg_newest)
    assert chosen.calibration_choice["window"] != "newest" or \
        chosen.calibration_choice["drift"] != "none"
    assert chosen.test_metrics["brier"] < newest.test_metrics["brier"]
    assert chosen.test_metrics["log_loss"] < newest.test_metrics["log_loss"]
    truth = leads["true_probability"].to_numpy()[-len(chosen.p_test):]
    assert abs(chosen.p_test.mean() - truth.mean()) < abs(newest.p_test.mean() - truth.mean())
    assert chosen.test_metrics["roc_auc"] == pytest.approx(newest.test_metrics["roc_auc"],
                                                           abs=1e-9)


def test_when_the_rate_falls_the_lowest_backtest_loss_decides_not_the_simplest():
    """Folds whose rate falls 20% -> 6%: no correction is itself a bet that the rate holds.
    With the rate moving, the candidate of lowest pooled log loss is chosen (issue 36: the
    one-standard-error rule took drift none though recent_rate had the lower loss), and the
    reason says so."""
    rng = np.random.default_rng(2)
    folds = []
    for k, rate in enumerate(np.linspace(0.20, 0.06, 6)):
        scores = rng.normal(0, 1, 3000)
        y = (rng.random(3000) < 1 / (1 + np.exp(-(scores + np.log(rate / (1 - rate)))))) \
            .astype(int)
        seen = rng.normal(0, 1, 3000 * (k + 1))
        seen_y = (rng.random(len(seen)) < 1 / (1 + np.exp(-(seen - 1.5)))).astype(int)
        folds.append(Fold(scores, y, seen, seen_y, 3000))
    choice = choose(folds, "sigmoid")
    mine = choice.table[choice.table["window"] == choice.window]
    assert choice.drift == mine.loc[mine["log_loss"].idxmin(), "drift"]
    assert "moved" in choice.reason and " -> " in choice.reason
    assert choice.as_dict()["reason"] == choice.reason


def test_when_the_rate_holds_the_simplest_within_one_standard_error_wins():
    rng = np.random.default_rng(3)
    folds = []
    for k in range(6):
        scores = rng.normal(0, 1, 3000)
        y = (rng.random(3000) < 1 / (1 + np.exp(-(scores - 2.0)))).astype(int)
        seen = rng.normal(0, 1, 3000 * (k + 1))
        seen_y = (rng.random(len(seen)) < 1 / (1 + np.exp(-(seen - 2.0)))).astype(int)
        folds.append(Fold(scores, y, seen, seen_y, 3000))
    choice = choose(folds, "sigmoid")
    assert "held" in choice.reason
    assert choice.table.set_index(["window", "drift"]).loc[
        (choice.window, choice.drift), "within_one_se"]
