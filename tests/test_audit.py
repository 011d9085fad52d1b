"""The audit finds leaks by what the data does, not by column names, and training refuses a
leaky feature unless the config keeps it with a reason."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadml.cli import app
from leadml.config import load_config
from leadml.data.audit import audit_frame, refuse_if_blocked
from leadml.errors import LeadDataError
from leadml.jobs import read_history
from leadml.setup.synthetic import make_leads
from tests.helpers import write_config

FEATURES = dict(numeric=["estimated_budget", "web_visits", "email_opens", "form_fills",
                         "meetings"],
                categorical=["lead_source", "channel", "industry", "company_size", "country",
                             "purchase_timeline", "stated_need", "product_interest"],
                text=["job_title"], excluded=["true_probability", "converted_at"])


@pytest.fixture(scope="module")
def leads() -> pd.DataFrame:
    """Generated leads with traps a CRM export carries, each built from the outcome."""
    rng = np.random.default_rng(3)
    d = make_leads(4_000, seed=3)
    won = d["converted"].to_numpy() == 1
    # A status tag sales set after the outcome: right for 90% of leads.
    d["deal_stage"] = np.where(won ^ (rng.random(len(d)) < 0.1), "closed", "open")
    # Filled in only once a lead has converted.
    d["contract_value"] = np.where(won, rng.integers(1_000, 50_000, len(d)).astype(str), "")
    # An id whose prefix encodes the outcome.
    d["crm_ref"] = [f"{'W' if w else 'L'}-{i:06d}" for i, w in enumerate(won)]
    # A date recorded after conversion for converted leads.
    converted_at = pd.to_datetime(d["converted_at"])
    created = pd.to_datetime(d["created_at"])
    d["last_activity_at"] = np.where(won, (converted_at + pd.Timedelta(days=2)).astype(str),
                                     (created + pd.Timedelta(days=1)).astype(str))
    # Data health: a constant, a placeholder not configured as missing.
    d["region_code"] = "EU"
    d["lead_owner"] = rng.choice(["ana", "bo", "unknown"], len(d))
    return d


def _audit(tmp_path, leads, *, columns=None, **sections):
    path = tmp_path / "leads.csv"
    leads.to_csv(path, index=False)
    ds = {"columns": {**FEATURES, **(columns or {})}}
    ds.update(sections.pop("dataset", {}))
    cfg = load_config(write_config(tmp_path, path, dataset={
        **_sample_dataset(), "path": str(path), **ds}, **sections))
    raw, outcomes = read_history(cfg)
    report, _ = audit_frame(raw, cfg, outcomes)
    return cfg, report


def _sample_dataset() -> dict:
    import yaml

    from tests.helpers import SAMPLE_CONFIG

    return yaml.safe_load(SAMPLE_CONFIG.read_text())["dataset"]


def _flags(report) -> dict[str, list[str]]:
    return {c["column"]: c["flags"] for c in report.columns}


def test_the_shipped_sample_config_passes_and_its_truth_columns_are_flagged(tmp_path, leads):
    _, report = _audit(tmp_path, leads[make_leads(10, seed=0).columns])
    assert report.blocking == []
    flags = _flags(report)
    assert "single-AUC" in flags["true_probability"]  # the generator's truth
    assert all(not f for c, f in flags.items() if c in FEATURES["numeric"])
    # converted_at is declared the conversion time: the outcome itself, not a leak to report.
    roles = {c["column"]: c["role"] for c in report.columns}
    assert roles["converted_at"] == "outcome" and flags["converted_at"] == []
    assert not [f for f in report.findings if f.column == "converted_at"]
    # Undeclared, the same column is what it looks like: it exists only for converted leads.
    _, undeclared = _audit(tmp_path, leads[make_leads(10, seed=0).columns], dataset={
        "target": {"column": "converted", "positive_values": ["1"]}})
    assert "exclusive-filling" in _flags(undeclared)["converted_at"]


def test_an_outcomes_table_that_is_the_lead_file_reads_its_conversion_time_as_the_outcome(
        tmp_path, leads, caplog):
    """A CRM export carries its own 'Became a Customer Date': named as the outcomes table's
    conversion time in the same file, it is the outcome, neither an unused column nor a
    leak (it was both: three leak notes and an 'unused' warning on every run)."""
    frame = leads[make_leads(10, seed=0).columns].drop(columns="converted")
    path = tmp_path / "leads.csv"
    frame.to_csv(path, index=False)
    cfg = load_config(write_config(tmp_path, path, dataset={
        **_sample_dataset(), "path": str(path), "target": None,
        "outcomes": {"path": str(path), "id_column": "lead_id",
                     "converted_at_column": "converted_at"},
        "columns": {**FEATURES, "excluded": ["true_probability"]}}))
    assert cfg.dataset.outcome_columns == {"converted_at"}
    with caplog.at_level("WARNING"):
        raw, outcomes = read_history(cfg)
    report, _ = audit_frame(raw, cfg, outcomes)
    assert report.conversions == int(leads["converted"].sum())
    assert {c["column"]: c["role"] for c in report.columns}["converted_at"] == "outcome"
    assert not [f for f in report.findings if f.column == "converted_at"]
    assert "not used" not in caplog.text


def test_each_leak_is_found_by_its_behaviour(tmp_path, leads):
    _, report = _audit(tmp_path, leads, columns={"categorical": [
        *FEATURES["categorical"], "deal_stage", "crm_ref", "last_activity_at"],
        "numeric": [*FEATURES["numeric"], "contract_value"]},
        dataset={"target": {"column": "converted", "positive_values": ["1"],
                            "converted_at_column": "converted_at"}})
    flags = _flags(report)
    assert "single-AUC" in flags["deal_stage"]
    assert "exclusive-filling" in flags["contract_value"]
    assert "tracks-outcome" in flags["crm_ref"]
    assert "after-conversion" in flags["last_activity_at"]
    blocked = {f.column for f in report.blocking}
    assert blocked == {"deal_stage", "contract_value", "crm_ref", "last_activity_at"}
    with pytest.raises(LeadDataError, match=r"(?s)stop training.*deal_stage.*audit.keep"):
        refuse_if_blocked(report)


def test_a_kept_column_with_a_reason_no_longer_blocks(tmp_path, leads):
    _, report = _audit(tmp_path, leads, columns={"categorical": [
        *FEATURES["categorical"], "deal_stage"]},
        audit={"keep": {"deal_stage": "set by marketing before the first call"}})
    assert report.blocking == []
    kept = [f for f in report.findings if f.column == "deal_stage"]
    assert kept and "kept by audit.keep" in kept[0].message


def test_keeping_a_column_needs_a_reason(tmp_path, leads):
    from leadml.errors import ConfigError

    with pytest.raises(ConfigError, match="give a reason"):
        _audit(tmp_path, leads, audit={"keep": {"deal_stage": " "}})


def test_data_health_constant_and_unlisted_placeholders(tmp_path, leads):
    _, report = _audit(tmp_path, leads, columns={"categorical": [
        *FEATURES["categorical"], "region_code", "lead_owner"]})
    flags = _flags(report)
    assert "constant" in flags["region_code"]
    assert "unlisted-missing-marker" in flags["lead_owner"]
    assert report.blocking == []


def test_a_value_written_several_ways_is_noted_with_each_spelling(tmp_path, leads):
    industry = leads["industry"].where(leads.index % 7 != 0, leads["industry"].str.upper())
    _, report = _audit(tmp_path, leads.assign(industry=industry))
    [note] = [f for f in report.findings if f.column == "industry"
              and "several ways" in f.message]
    assert note.kind == "health" and not note.blocking
    top = leads["industry"].value_counts().index[0]
    assert f"{top!r} (" in note.message and f"{top.upper()!r} (" in note.message
    clean = _audit(tmp_path, leads)[1]
    assert not [f for f in clean.findings if "several ways" in f.message]


def test_a_placeholder_listed_in_another_case_is_reported_as_the_file_spells_it(tmp_path, leads):
    # The model compares placeholders exactly: 'null' listed does not make 'NULL' missing.
    leads = leads.assign(lead_owner=leads["lead_owner"].replace("unknown", "NULL"))
    _, report = _audit(tmp_path, leads, columns={"categorical": [
        *FEATURES["categorical"], "lead_owner"]}, dataset={"missing_values": ["", "null"]})
    [finding] = [f for f in report.findings if f.column == "lead_owner"
                 and "usually mean 'no value'" in f.message]
    assert "'NULL' (" in finding.message


def test_too_few_leads_blocks_and_offers_rules_only_scoring(tmp_path, leads):
    _, report = _audit(tmp_path, leads.head(400)[make_leads(10, seed=0).columns])
    [finding] = [f for f in report.blocking if f.kind == "preflight"]
    assert "too few to learn from" in finding.message
    assert "--rules-only" in finding.message


def test_duplicate_ids_are_counted_not_fatal_to_the_audit(tmp_path, leads):
    base = leads[make_leads(10, seed=0).columns]
    _, report = _audit(tmp_path, pd.concat([base, base.head(3)], ignore_index=True))
    [finding] = [f for f in report.blocking if f.kind == "health"]
    assert "3 rows repeat an earlier lead id" in finding.message


def test_a_drifting_rate_is_reported(tmp_path, leads):
    base = leads[make_leads(10, seed=0).columns].copy()
    late = np.arange(len(base)) >= 0.8 * len(base)  # rows are in time order
    base.loc[late, "converted"] = 1
    _, report = _audit(tmp_path, base)
    assert any(f.kind == "drift" for f in report.findings)
    assert report.drift[-1]["rate"] == 1.0


def test_an_outcomes_table_gives_the_conversion_times(tmp_path, leads):
    d = leads.drop(columns=["converted"])
    won = leads["converted"] == 1
    outcomes = leads.loc[won, ["lead_id", "converted_at"]]
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    dataset = {"target": None, "outcomes": {"path": str(tmp_path / "outcomes.csv")}}
    _, report = _audit(tmp_path, d, columns={"categorical": [
        *FEATURES["categorical"], "last_activity_at"]}, dataset=dataset)
    assert report.conversions == int(won.sum())
    assert "after-conversion" in _flags(report)["last_activity_at"]


@pytest.mark.slow
def test_cli_audit_writes_json_and_exits_3_when_training_would_refuse(tmp_path, leads):
    cfg, _ = _audit(tmp_path, leads, columns={"categorical": [
        *FEATURES["categorical"], "deal_stage"]})
    out = tmp_path / "audit.json"
    result = CliRunner().invoke(app, ["audit", "--config", str(cfg.source), "-o", str(out)])
    assert result.exit_code == 3, result.output
    assert "BLOCKS [leakage] 'deal_stage'" in result.output
    saved = json.loads(out.read_text())
    assert saved["blocking"] == 1
    train = CliRunner().invoke(app, ["train", "--config", str(cfg.source)])
    assert train.exit_code == 3
    assert "deal_stage" in train.output


def test_unmatured_outcomes_are_warned_about_and_a_horizon_removes_them(tmp_path):
    """A real export: leads whose conversion lies after the export look unconverted."""
    from leadml.setup.synthetic import HISTORY_END

    d = make_leads(6_000, seed=5)
    late = pd.to_datetime(d["converted_at"]) > HISTORY_END
    d.loc[late, "converted"] = 0
    d.loc[late, "converted_at"] = ""
    target = {"column": "converted", "positive_values": ["1"],
              "converted_at_column": "converted_at"}
    _, report = _audit(tmp_path, d, dataset={"target": target})
    found = [f for f in report.findings if f.kind == "maturity"]
    assert len(found) == 1 and not found[0].blocking
    assert "horizon_days (e.g." in found[0].message and "90% come within" in found[0].message

    (tmp_path / "h").mkdir()
    cfg, report = _audit(tmp_path / "h", d, dataset={
        "target": {**target, "horizon_days": 60}, "as_of": str(HISTORY_END)})
    assert not [f for f in report.findings if f.kind == "maturity"]
    raw, outcomes = read_history(cfg)
    _, history = audit_frame(raw, cfg, outcomes)
    assert history.unlabelled > 0 and len(history.target) + history.unlabelled == len(d)
    young = pd.to_datetime(d["created_at"]) > HISTORY_END - pd.Timedelta(days=60)
    assert history.unlabelled == int(young.sum())


def test_notes_say_filled_leads_apart_from_blank_ones_and_names_stay_whole(tmp_path, leads):
    """A field with one value wherever it is filled, and blank for 29% of leads: the note
    says both, and the table prints a long column name in full."""
    d = leads.copy()
    name = "Lead Qualification Questionnaire Completed"
    rng = np.random.default_rng(0)
    d[name] = np.where(rng.random(len(d)) < 0.29, "", "Yes")
    _, report = _audit(tmp_path, d, columns={
        "categorical": [*FEATURES["categorical"], name],
        "excluded": [*FEATURES["excluded"], "deal_stage", "contract_value", "crm_ref",
                     "last_activity_at", "region_code", "lead_owner"]})
    note = next(f.message for f in report.findings if f.column == name)
    assert "100.0% of the leads where it is filled" in note and "leave it blank" in note
    assert name in report.table()


def test_a_placeholder_that_converts_unlike_a_blank_is_reported_apart(tmp_path, leads):
    """'Select' converting at about 50% where a blank converts at the base rate: listed as
    missing, the model cannot tell them apart, and the audit says so with the numbers.
    A placeholder that converts like a blank is not reported."""
    d = leads.copy()
    rng = np.random.default_rng(1)
    won = d["converted"].to_numpy() == 1
    picked = rng.random(len(d))
    d["form_source"] = np.where(picked < 0.25, "", rng.choice(["web", "event"], len(d)))
    d.loc[(picked >= 0.25) & (picked < 0.35) & won, "form_source"] = "Select"
    d.loc[(picked >= 0.35) & (picked < 0.40) & ~won, "form_source"] = "Select"
    d["plain"] = np.where(picked < 0.3, np.where(rng.random(len(d)) < 0.5, "", "N/A"), "x")
    cfg, report = _audit(tmp_path, d, columns={
        "categorical": [*FEATURES["categorical"], "form_source", "plain"],
        "excluded": [*FEATURES["excluded"], "deal_stage", "contract_value", "crm_ref",
                     "last_activity_at", "region_code", "lead_owner"]})
    note = next(f.message for f in report.findings if f.column == "form_source"
                and "converts at" in f.message)
    assert "'Select'" in note and "where a blank" in note and "missing_values" in note
    stats = next(c for c in report.columns if c["column"] == "form_source")
    assert stats["placeholders"]["Select"]["conversion_rate"] > \
        1.5 * stats["placeholders"]["(blank)"]["conversion_rate"]
    assert not any("converts at" in f.message for f in report.findings if f.column == "plain")
    json.dumps(report.to_dict())  # the numbers are in the audit JSON


def test_the_audits_auc_is_scikit_learns_roc_auc_folded():
    from sklearn.metrics import roc_auc_score

    from leadml.data.audit import _folded_auc

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 5000)
    for score in (rng.normal(size=5000) + y,  # continuous
                  rng.integers(0, 7, 5000) - 2 * y,  # few values, many ties, inverted
                  (rng.random(5000) < 0.3).astype(float)):  # a flag
        auc = roc_auc_score(y, score)
        assert _folded_auc(y, score) == round(max(auc, 1 - auc), 4)
    assert _folded_auc(y, np.ones(5000)) == 0.5 and _folded_auc(np.ones(50), y[:50]) == 0.5
