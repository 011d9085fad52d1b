"""The Python API (leadml.api): the docs page's examples run, and the API scores a frame
exactly as the CLI scores the same leads written to a file."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import leadml
from leadml.cli import app
from tests.helpers import REPO


@pytest.mark.slow
def test_the_api_page_examples_run(monkeypatch):
    monkeypatch.chdir(REPO)  # the page names pipelines/configs/bant.yaml
    failed, attempted = doctest.testfile(
        str(REPO / "docs" / "api.md"), module_relative=False, verbose=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert attempted > 20
    assert failed == 0


def test_the_package_exports_the_api_and_not_its_internals():
    assert set(leadml.__all__) <= set(dir(leadml))
    assert leadml.score_leads is leadml.api.score_leads
    with pytest.raises(AttributeError):
        leadml.not_a_function  # noqa: B018


def test_a_frame_scores_as_the_same_leads_in_a_file(champion, sample_files, tmp_path):
    leads = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    out = tmp_path / "scored.csv"
    at = "2026-07-01T00:00:00"
    result = CliRunner().invoke(app, ["score", str(sample_files / "nightly.csv"), "-o",
                                      str(out), "--scored-at", at])
    assert result.exit_code == 0, result.output
    cli = pd.read_csv(out, dtype=str, keep_default_na=False)
    scored = leadml.score_leads(leads, scored_at=at)
    api = scored.leads
    assert len(scored.rejects) == 0 and len(api) == len(cli)
    np.testing.assert_allclose(api["conversion_probability"],
                               cli["conversion_probability"].astype(float), rtol=0, atol=1e-12)
    for col in ("lead_id", "grade", "label", "reasons", "bant_budget", "model_version"):
        assert (api[col].astype(str).to_numpy() == cli[col].to_numpy()).all(), col


def test_numbers_as_numbers_and_as_text_score_alike_and_bad_rows_come_back(champion,
                                                                             sample_files):
    text = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False).head(50)
    typed = pd.read_csv(sample_files / "nightly.csv").head(50)  # floats, NaN for blanks
    a = leadml.score_leads(text, reasons=False).leads["conversion_probability"]
    b = leadml.score_leads(typed, reasons=False).leads["conversion_probability"]
    np.testing.assert_allclose(a, b, atol=1e-12)
    mixed = typed.astype({"web_visits": object})
    mixed.loc[4, "web_visits"] = "lots"
    mixed.loc[9, "lead_id"] = None
    scored = leadml.score_leads(mixed)
    assert len(scored.leads) == 48
    assert scored.rejects["row"].tolist() == [4, 9]
    assert "web_visits 'lots' is not a finite number" in scored.rejects["reason"].iloc[0]
    assert "missing lead id" in scored.rejects["reason"].iloc[1]


def test_explain_gives_every_field_and_reads_placeholders_as_not_stated(champion,
                                                                         sample_files):
    leads = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    leads = leads.head(20).assign(industry="Select")
    model = leadml.load_model()
    why = leadml.explain_leads(leads, model)
    assert list(why.columns[4:]) == model.features
    np.testing.assert_allclose(why["typical_probability"] + why[model.features].sum(axis=1)
                               / 100, why["conversion_probability"], atol=1e-3)  # (rounded)
    what_if = leadml.explain_leads(leads, model, points="what_if")
    assert list(what_if.columns) == list(why.columns)
    assert (what_if[model.features] - why[model.features]).abs().max().max() > 0.5
    p = model.predict_proba(leads)
    np.testing.assert_allclose(why["conversion_probability"], p, atol=1e-12)
    assert not why["reasons"].str.contains('"Select"').any()
    assert why["reasons"].str.contains(r"Industry \(not stated\)").any()


def test_a_history_without_a_path_or_a_frame_is_a_config_error():
    from leadml.errors import ConfigError

    cfg = {"dataset": {"id_column": "lead_id", "target": {"column": "converted"},
                       "columns": {"numeric": ["meetings"]}}}
    with pytest.raises(ConfigError, match="dataset.path is not set"):
        leadml.audit_leads(cfg)
    with pytest.raises(TypeError, match="DataFrame"):
        leadml.audit_leads(cfg, data=[1, 2, 3])


def test_a_frame_that_cannot_be_scored_says_so_in_terms_of_the_frame(champion, sample_files):
    from leadml.errors import LeadDataError

    leads = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    with pytest.raises(LeadDataError, match=r"^the leads DataFrame lacks 1 column\(s\)") as err:
        leadml.score_leads(leads.drop(columns=["industry"]))
    assert ".parquet" not in str(err.value) and "unexpected created_at" not in str(err.value)
    with pytest.raises(LeadDataError, match=r"repeated column names \['industry'\]"):
        leadml.score_leads(pd.concat([leads, leads[["industry"]]], axis=1))
    empty = leadml.score_leads(leads.head(0))
    assert len(empty.leads) == len(empty.rejects) == 0


def test_a_reject_rate_cut_off_raises_as_the_cli_does_and_names_no_temporary_file(
        champion, sample_files):
    from leadml.errors import TooManyRejects

    leads = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    leads.loc[:99, "web_visits"] = "many"
    with pytest.raises(TooManyRejects, match="100 of 600 rows") as err:
        leadml.score_leads(leads, max_reject_rate=0.05)
    assert "leadml-score-" not in str(err.value) and "Scored.rejects" in str(err.value)
    assert len(leadml.score_leads(leads).rejects) == 100  # the default returns them


@pytest.mark.slow
def test_unusual_frames_are_scored_or_refused_by_name(champion, sample_files, tmp_path):
    """Found by a hostile review: a nullable integer id with a gap raised TypeError (and
    `leadml score` on the same Parquet file exited 1), ids of 2**70 raised OverflowError,
    columns 1 and "1" raised AttributeError. Each lead is now scored or a reject with its
    reason, and the frame with two columns named 1 is refused by name."""
    from leadml.errors import LeadDataError

    leads = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    gap = leads.assign(lead_id=pd.array([*range(1, 600), None], dtype="Int64"))
    done = leadml.score_leads(gap)
    assert len(done.leads) == 599 and done.rejects["row"].tolist() == [599]
    gap.to_parquet(tmp_path / "gap.parquet")
    result = CliRunner().invoke(app, ["score", str(tmp_path / "gap.parquet"), "--output",
                                      str(tmp_path / "gap.csv")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "gap.csv")["lead_id"].tolist() == list(range(1, 600))
    huge = leads.assign(lead_id=[2**70 + k for k in range(600)])
    done = leadml.score_leads(huge)
    assert done.leads["lead_id"].astype(str).tolist() == [str(2**70 + k) for k in range(600)]
    clash = leads.assign(**{"1": "a"})
    clash.insert(0, 1, "b")
    with pytest.raises(LeadDataError, match=r"repeated column names \['1'\]"):
        leadml.score_leads(clash)
