"""Issue 36: results that were wrong without a word on real exports nobody here wrote. Each
test reproduces one trap and fails on the release before the fix."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadml.cli import app
from leadml.config import load_config
from leadml.data.audit import audit_frame
from leadml.jobs import read_history
from leadml.setup.synthetic import HISTORY_END, make_leads
from tests.helpers import write_config

runner = CliRunner()
FEATURES = dict(numeric=["estimated_budget", "web_visits", "email_opens", "form_fills",
                         "meetings"],
                categorical=["lead_source", "channel", "industry", "company_size", "country",
                             "purchase_timeline", "stated_need", "product_interest"],
                text=["job_title"], excluded=["true_probability", "converted_at"])


def _newest_first(rows: int = 3000, seed: int = 11) -> pd.DataFrame:
    """A B2C export sorted newest first by its auto-number, with no creation date."""
    d = make_leads(rows, seed=seed)  # oldest first
    numbers = 580_000 + np.arange(rows) * 3 + np.random.default_rng(seed).integers(0, 3, rows)
    d.insert(0, "Lead Number", numbers.astype(str))
    return d.drop(columns=["created_at", "converted_at", "true_probability"]).iloc[::-1] \
        .reset_index(drop=True)


def _audit(tmp_path, leads: pd.DataFrame, **dataset):
    path = tmp_path / "leads.csv"
    leads.to_csv(path, index=False)
    ds = {"path": str(path), "id_column": "lead_id", "time_column": "created_at",
          "target": {"column": "converted", "positive_values": ["1"]},
          "columns": FEATURES, **dataset}
    cfg = load_config(write_config(tmp_path, path, dataset=ds))
    raw, outcomes = read_history(cfg)
    return cfg, audit_frame(raw, cfg, outcomes)[0]


def test_config_init_takes_an_auto_number_as_the_time_order(tmp_path):
    _newest_first().to_csv(tmp_path / "Leads.csv", index=False)
    out = tmp_path / "train.yaml"
    result = runner.invoke(app, ["config", "init", str(tmp_path / "Leads.csv"), "-o", str(out),
                                 "--target", "converted"])
    assert result.exit_code == 0, result.output
    ds = load_config(out).dataset
    assert (ds.time_column, ds.time_format) == ("Lead Number", "sequence")
    assert "export runs newest first" in out.read_text()


def test_the_audit_stops_a_file_that_runs_newest_first_without_a_time_column(tmp_path):
    features = {**FEATURES, "excluded": []}
    cfg, report = _audit(tmp_path, _newest_first(), id_column="Lead Number", time_column=None,
                         columns=features)
    [order] = [f for f in report.blocking if f.kind == "order"]
    assert order.column == "Lead Number" and "runs newest first" in order.message
    assert "time_format: sequence" in order.message
    result = runner.invoke(app, ["train", "--config", str(cfg.source)])
    assert result.exit_code == 3 and "runs newest first" in " ".join(result.output.split())

    (tmp_path / "fixed").mkdir()
    _, fixed = _audit(tmp_path / "fixed", _newest_first(), id_column="Lead Number",
                      time_column="Lead Number", time_format="sequence", columns=features)
    assert not [f for f in fixed.findings if f.kind == "order"]
    (tmp_path / "oldest").mkdir()
    _, oldest = _audit(tmp_path / "oldest", _newest_first().iloc[::-1], id_column="Lead Number",
                       time_column=None, columns=features)
    assert not [f for f in oldest.findings if f.kind == "order"]


def test_a_deal_field_is_stopped_under_a_horizon_though_deals_closed_after_it(tmp_path):
    """Filled for 60 leads that all converted, a third of them after the horizon: under the
    horizon's label those count as lost, yet the field exists because they converted."""
    d = make_leads(6_000, seed=5)
    created = pd.to_datetime(d["created_at"])
    lag = (pd.to_datetime(d["converted_at"]) - created).dt.days
    won = (d["converted"] == 1) & (created < HISTORY_END - pd.Timedelta(days=120))
    rng = np.random.default_rng(0)
    late = rng.choice(np.flatnonzero(won & (lag > 30)), 20, replace=False)
    early = rng.choice(np.flatnonzero(won & (lag <= 30)), 40, replace=False)
    d["deal_size"] = ""
    d.loc[np.r_[late, early], "deal_size"] = rng.integers(5_000, 90_000, 60).astype(str)
    d.loc[d["converted"] == 0, "converted_at"] = ""
    cfg, report = _audit(tmp_path, d, as_of=str(HISTORY_END), target={
        "column": "converted", "positive_values": ["1"], "converted_at_column": "converted_at",
        "horizon_days": 30}, columns={**FEATURES, "numeric": [*FEATURES["numeric"],
                                                             "deal_size"]})
    assert cfg.dataset.horizon_days == 30
    blocked = [f for f in report.blocking if f.column == "deal_size"]
    assert blocked and "filled only for converted leads" in blocked[0].message


def test_a_state_like_name_with_nothing_but_a_useful_ranking_is_a_note(tmp_path):
    """'What is your current occupation': six values, named with 'current', ranks leads at
    about AUC 0.7 as a useful field does; nothing in its values reads like a sales action."""
    d = make_leads(4_000, seed=8)
    rng = np.random.default_rng(1)
    won = d["converted"].to_numpy() == 1
    jobs = np.array(["Unemployed", "Student", "Housewife", "Businessman", "Other",
                     "Working Professional"])
    d["What is your current occupation"] = np.where(
        won & (rng.random(len(d)) < 0.55), "Working Professional",
        jobs[rng.integers(0, 5, len(d))])
    name = "What is your current occupation"
    _, report = _audit(tmp_path, d, columns={**FEATURES, "categorical": [
        *FEATURES["categorical"], name]})
    column = next(c for c in report.columns if c["column"] == name)
    assert 0.65 <= column["single_auc"] < 0.8
    assert not [f for f in report.blocking if f.column == name]

    d.to_csv(tmp_path / "export.csv", index=False)
    result = runner.invoke(app, ["config", "init", str(tmp_path / "export.csv"), "-o",
                                 str(tmp_path / "init.yaml")])
    assert result.exit_code == 0, result.output
    assert name in load_config(tmp_path / "init.yaml").dataset.columns.categorical


@pytest.mark.parametrize("mixed", [True, False])
def test_dates_in_several_formats_are_dates_never_personal_data(tmp_path, mixed):
    d = make_leads(2_000, seed=9).drop(columns=["converted_at", "true_probability"])
    created = pd.to_datetime(d["created_at"])
    if mixed:
        d["created_at"] = np.where(np.arange(len(d)) % 2 == 0, created.dt.strftime("%Y-%m-%d"),
                                   created.dt.strftime("%d/%m/%Y"))
    d.to_csv(tmp_path / "export.csv", index=False)
    out = tmp_path / "init.yaml"
    result = runner.invoke(app, ["config", "init", str(tmp_path / "export.csv"), "-o", str(out),
                                 "--target", "converted"])
    assert result.exit_code == 0, result.output
    ds, text = load_config(out).dataset, out.read_text()
    assert "created_at" not in ds.columns.personal
    if mixed:
        assert ds.time_column is None and "created_at" in ds.columns.excluded
        assert "dates in several formats (iso, %d/%m/%Y)" in text
    else:
        assert ds.time_column == "created_at"
