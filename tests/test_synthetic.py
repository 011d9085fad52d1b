import numpy as np
import pandas as pd

from leadml.setup.synthetic import COLUMNS, OUTCOME_COLUMNS, make_leads, make_sample


def test_same_seed_same_leads_other_seed_other_leads():
    a, b, c = make_leads(500, seed=3), make_leads(500, seed=3), make_leads(500, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["lead_id"].equals(c["lead_id"])


def test_columns_ids_and_time_order():
    leads = make_leads(2_000, seed=0)
    assert list(leads.columns) == COLUMNS
    assert leads["lead_id"].is_unique
    created = pd.to_datetime(leads["created_at"])
    assert created.is_monotonic_increasing
    assert (created.max() - created.min()).days > 500  # about 18 months


def test_outcomes_follow_the_true_probability():
    leads = make_leads(40_000, seed=1)
    # Observed rate per decile of the truth matches the truth within sampling error.
    decile = pd.qcut(leads["true_probability"], 10, labels=False)
    by = leads.groupby(decile).agg(p=("true_probability", "mean"), y=("converted", "mean"))
    se = np.sqrt(by["p"] * (1 - by["p"]) / (len(leads) / 10))
    assert ((by["p"] - by["y"]).abs() < 4 * se).all()


def test_base_rate_drifts_up_and_missing_budget_carries_signal():
    leads = make_leads(40_000, seed=2)
    first, last = leads.iloc[:10_000], leads.iloc[-10_000:]
    assert last["true_probability"].mean() > first["true_probability"].mean() + 0.01
    missing = leads["estimated_budget"].isna()
    assert 0.3 < missing.mean() < 0.6
    assert leads.loc[missing, "converted"].mean() < leads.loc[~missing, "converted"].mean()


def test_converted_at_only_for_converted_and_after_creation():
    leads = make_leads(3_000, seed=5)
    converted = leads["converted"] == 1
    assert leads.loc[converted, "converted_at"].notna().all()
    assert leads.loc[~converted, "converted_at"].isna().all()
    assert (pd.to_datetime(leads.loc[converted, "converted_at"])
            > pd.to_datetime(leads.loc[converted, "created_at"])).all()


def test_nightly_file_has_no_outcome_and_comes_after_the_history():
    history, nightly = make_sample(1_000, seed=0, nightly_rows=100)
    assert not set(OUTCOME_COLUMNS) & set(nightly.columns)
    assert pd.to_datetime(nightly["created_at"]).min() > pd.to_datetime(
        history["created_at"]).max()
    assert not set(nightly["lead_id"]) & set(history["lead_id"])


def test_nightly_leads_are_drawn_at_the_end_of_the_drift():
    start, end = (make_leads(5_000, seed=4, days=1.0, drift_at=t)["true_probability"]
                  for t in (0.0, 1.0))
    history = make_leads(20_000, seed=4)["true_probability"].to_numpy()
    assert end.mean() > start.mean()  # the drift raises the rate (0.45 in log-odds)
    assert abs(end.mean() - history[-2_000:].mean()) < abs(start.mean()
                                                            - history[-2_000:].mean())
