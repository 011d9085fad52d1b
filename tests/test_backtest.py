"""The backtest replays history window by window and never lets a window train on itself."""

import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from leadml.cli import app
from leadml.config import load_config
from leadml.data.schema import validate_history
from leadml.errors import LeadDataError
from leadml.training.backtest import backtest, window_bounds, write_backtest
from tests.helpers import write_config


@pytest.fixture(scope="module")
def history_and_config(tmp_path_factory, sample_files):
    folder = tmp_path_factory.mktemp("backtest")
    cfg = load_config(write_config(folder, sample_files / "leads.csv"))
    raw = pd.read_csv(sample_files / "leads.csv", dtype=str, keep_default_na=False)
    return validate_history(raw, cfg), cfg


@pytest.mark.slow
def test_windows_metrics_and_pooled_for_each_drift_method(history_and_config, tmp_path):
    history, cfg = history_and_config
    bt = backtest(history, cfg, start=0.5, window=0.25)
    assert sorted(bt.windows.window.unique()) == [1, 2]
    assert set(bt.windows.method) == {"none", "recent_rate", "em", "oracle"}
    first = bt.windows[bt.windows.window == 1].iloc[0]
    assert first.train_leads == 4000 and first.leads == 2000  # trained only on older leads
    pooled = bt.pooled.set_index("method")
    assert pooled.loc["none", "leads"] == 4000
    assert 0.7 < pooled.loc["none", "roc_auc"] < 0.9
    # Shifting the base rate never changes the ranking within a window.
    for _, rows in bt.windows.groupby("window"):
        assert rows.roc_auc.nunique() == 1
    # The oracle knows each window's rate: its mean prediction is closest to it.
    oracle = bt.windows[bt.windows.method == "oracle"]
    assert ((oracle.mean_probability - oracle.positive_rate).abs() < 0.01).all()
    files = write_backtest(bt, tmp_path / "bt")
    assert {p.name for p in files} == {"windows.csv", "pooled.csv", "backtest.json",
                                       "predicted_vs_realised.png"}


def test_window_bounds_cover_the_range_without_overlap():
    bounds = window_bounds(1000, start=0.5, window=0.1)
    assert bounds[0] == (500, 600) and bounds[-1] == (900, 1000)
    assert all(a == b for (_, a), (b, _) in zip(bounds, bounds[1:], strict=False))
    with pytest.raises(LeadDataError, match="start < end"):
        window_bounds(1000, start=0.9, window=0.1, end=0.5)


@pytest.mark.slow
def test_cli_backtest_logs_an_mlflow_run(history_and_config, tmp_path):
    _, cfg = history_and_config
    out = tmp_path / "bt"
    result = CliRunner().invoke(app, ["backtest", "--config", str(cfg.source), "--start",
                                      "0.6", "--window", "0.2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "pooled over every window" in result.output
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name(cfg.registry.experiment).experiment_id])
    [run] = [r for r in runs if r.data.tags.get("leadml.stage") == "backtest"]
    assert "pooled_none_roc_auc" in run.data.metrics
    assert run.info.run_name == "backtest leads.csv: 2 windows of 20% from 60% to 100%"
    assert (out / "predicted_vs_realised.png").stat().st_size > 1000


def test_a_window_too_small_to_fit_is_exit_3_naming_its_leads(history_and_config):
    """A funnel with few conversions early: the first window's calibration part held one
    conversion and scikit-learn stopped with a traceback ("the least populated class has
    1 member", exit 1). Now a LeadDataError (exit 3) naming the part, its leads and its
    conversions."""
    import dataclasses

    import numpy as np

    history, cfg = history_and_config
    y = np.asarray(history.target).copy()
    early = np.arange(len(y)) < len(y) * 0.3
    y[early & (np.arange(len(y)) % 400 != 0)] = 0
    few = dataclasses.replace(history, target=y)
    with pytest.raises(LeadDataError, match=r"part has [\d,]+ leads and \d+ conversions, too "
                       "few to fit"):
        backtest(few, cfg, start=0.2, window=0.2)
