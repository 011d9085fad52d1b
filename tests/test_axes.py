"""Fit and engagement: the axes add up with the reasons' points, grade the leads on what
each axis alone adds to a typical lead (cut-offs in points, or as shares of the model's test
window), and the label policy can decide on them."""

import pandas as pd
import pytest

from tests.helpers import RULES, score

pytestmark = pytest.mark.slow


def test_fit_and_engagement_add_up_and_grade_the_leads(champion, sample_files, tmp_path):
    """The axes are sums of the reasons' points: typical + fit + engagement + the other
    fields' points = the lead's probability; their grades follow the rules' cut-offs, and
    the manifest counts every lead in one cell of the 4x4 matrix."""
    import numpy as np

    import leadml

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text() + "\naxes:\n  fit: [industry, company_size, job_title]\n"
                     "  engagement: [web_visits, email_opens, meetings]\n"
                     "  fit_grades: {A: 8, B: 1, C: -2}\n")
    out = tmp_path / "scored.parquet"
    result, manifest = score(sample_files / "nightly.csv", out, "--rules", str(rules))
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(out)
    assert list(scored.columns[4:8]) == ["fit_points", "engagement_points", "fit_grade",
                                         "engagement_level"]
    why = leadml.explain_leads(pd.read_csv(sample_files / "nightly.csv", dtype=str,
                                           keep_default_na=False), leadml.load_model())
    fit = why[["industry", "company_size", "job_title"]].sum(axis=1)
    engaged = why[["web_visits", "email_opens", "meetings"]].sum(axis=1)
    np.testing.assert_allclose(scored["fit_points"], fit, atol=0.05)
    np.testing.assert_allclose(scored["engagement_points"], engaged, atol=0.05)
    other = why.drop(columns=["lead_id", "conversion_probability", "typical_probability",
                              "reasons", "industry", "company_size", "job_title",
                              "web_visits", "email_opens", "meetings"]).sum(axis=1)
    np.testing.assert_allclose(100 * manifest["typical_probability"] + scored["fit_points"]
                               + scored["engagement_points"] + other,
                               100 * scored["conversion_probability"], atol=0.2)
    # The grade is cut on what the profile alone adds to a typical lead: it does not move
    # with the lead's engagement (for this logistic regression, exactly).
    from leadml.explain.effects import Explainer
    from leadml.scoring.chunks import typed_features

    model = leadml.load_model()
    leads = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    shares = Explainer(model.estimator, model.contract.reference_lead).shares(
        typed_features(leads, model.contract))
    alone = shares.at_typical(["industry", "company_size", "job_title"])
    expected = np.select([alone >= 8, alone >= 1, alone >= -2], ["A", "B", "C"], "D")
    assert scored["fit_grade"].astype(str).tolist() == expected.tolist()
    engaged_more = leads.assign(meetings="3", web_visits="40")
    again = Explainer(model.estimator, model.contract.reference_lead).shares(
        typed_features(engaged_more, model.contract))
    np.testing.assert_allclose(again.at_typical(["industry", "company_size", "job_title"]),
                               alone, atol=1e-9)
    cells = manifest["axes"]["cells"]
    assert len(cells) == 16 and sum(cells.values()) == manifest["scored"] == 600
    for bad, words in (("  fit: [industry, lead_score]\n  engagement: [meetings]\n",
                        "does not read them"),
                       ("  fit: [industry]\n  engagement: [industry]\n", "in both")):
        rules.write_text(RULES.read_text() + "\naxes:\n" + bad)
        result, _ = score(sample_files / "nightly.csv", tmp_path / "bad.csv", "--rules",
                          str(rules))
        assert result.exit_code == 2 and words in result.output, result.output
    rules.write_text(RULES.read_text() + "\naxes:\n  fit: [industry]\n  engagement: [meetings]\n")
    result, _ = score(sample_files / "nightly.csv", tmp_path / "nr.csv", "--rules", str(rules),
                      "--no-reasons")
    assert result.exit_code == 2 and "drop --no-reasons" in result.output


def test_the_label_policy_can_decide_on_fit_and_engagement(champion, sample_files, tmp_path):
    rules = tmp_path / "rules.yaml"
    policy = RULES.read_text().replace(
        "    min_criteria_met: 2\n", "    min_criteria_met: 2\n    min_fit_grade: B\n").replace(
        "  disqualify_below_probability: 0.02\n",
        "  disqualify_below_probability: 0.02\n  disqualify_cells: [D1, D2, D3, D4]\n")
    rules.write_text(policy + "\naxes:\n  fit: [industry, company_size, job_title, country]\n"
                     "  engagement: [web_visits, email_opens, form_fills, meetings]\n"
                     "  fit_grades: {A: 2, B: 0, C: -1}\n")  # (this model's typical: 3.6%)
    out = tmp_path / "scored.parquet"
    result, manifest = score(sample_files / "nightly.csv", out, "--rules", str(rules))
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(out)
    cell = scored["fit_grade"].astype(str) + scored["engagement_level"].astype(str)
    qualified = scored["label"] == "sales_qualified"
    assert qualified.any() and set(scored.loc[qualified, "fit_grade"]) <= {"A", "B"}
    outside = cell.str.startswith("D")
    assert outside.any() and (scored.loc[outside, "label"] == "disqualified").all()
    engaged = outside & scored["engagement_level"].isin(["1", "2"])
    assert scored.loc[engaged, "reasons"].str.contains(
        "Engaged, but outside the customer profile (fit D)", regex=False).all()
    assert scored.loc[outside & ~engaged, "reasons"].str.contains(
        "Outside the customer profile (fit D, engagement", regex=False).all()
    held = (scored["label"] == "nurture") & scored["fit_grade"].isin(["C", "D"])
    assert scored.loc[held, "reasons"].str.contains("is below B, the least").all()
    no_axes = tmp_path / "no_axes.yaml"
    no_axes.write_text(policy)
    result, _ = score(sample_files / "nightly.csv", tmp_path / "x.csv", "--rules", str(no_axes))
    assert result.exit_code == 2 and "no axes section" in result.output


def test_share_cut_offs_grade_the_models_test_window_in_the_shares_asked(
        champion, sample_files, tmp_path):
    """``axes.method: share``: the cut-offs are the quantiles of what each axis alone adds
    on the model's own test window (as its training logged it), fixed in points for the
    night and written in the manifest; `leadml plan` shows that window's matrix, a quarter
    of its leads in each grade; a model without its training run is refused, saying why."""
    import numpy as np
    from typer.testing import CliRunner

    import leadml
    from leadml.cli import app
    from leadml.explain.effects import Explainer, Shares
    from leadml.registry import logged_test_shares
    from tests.helpers import write_config

    fit = ["industry", "company_size", "job_title", "country", "estimated_budget"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text() + f"\naxes:\n  fit: [{', '.join(fit)}]\n"
                     "  engagement: [web_visits, email_opens, form_fills, meetings]\n"
                     "  method: share\n  fit_grades: {A: 0.25, B: 0.25, C: 0.25}\n"
                     "  engagement_levels: {1: 0.1, 2: 0.2, 3: 0.3}\n")
    out = tmp_path / "scored.parquet"
    result, manifest = score(sample_files / "nightly.csv", out, "--rules", str(rules))
    assert result.exit_code == 0, result.output
    said = manifest["axes"]
    assert said["method"] == "share" and said["shares"]["engagement_levels"]["1"] == 0.1
    model = leadml.load_model()
    shares = Shares.logged(logged_test_shares(model.contract.uri),
                           Explainer(model.estimator, model.contract.reference_lead))
    alone = shares.at_typical(fit)
    np.testing.assert_allclose([said["fit_grades"][g] for g in "ABC"],
                               np.quantile(alone, [0.75, 0.5, 0.25]), atol=1e-4)
    a_share = (alone >= said["fit_grades"]["A"] - 1e-4).mean()
    assert 0.2 <= a_share <= 0.3, a_share  # (ties at the cut-off go up)
    from leadml.scoring.chunks import typed_features  # tonight's leads, cut at those points

    leads = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    tonight = Explainer(model.estimator, model.contract.reference_lead).shares(
        typed_features(leads, model.contract)).at_typical(fit)
    cuts = [said["fit_grades"][g] for g in "ABC"]
    expected = np.select([tonight >= c for c in cuts], list("ABC"), "D")
    assert pd.read_parquet(out)["fit_grade"].astype(str).tolist() == expected.tolist()
    assert sum(said["cells"].values()) == 600

    config = write_config(tmp_path, sample_files / "leads.csv")  # the champion's own
    shown = CliRunner().invoke(app, ["plan", "--config", str(config), "--rules", str(rules)])
    assert shown.exit_code == 0, shown.output
    assert "Fit and engagement on the test window" in shown.output
    rows = [line for line in shown.output.splitlines() if line[:1] in "ABCD"
            and " at " in line]
    assert len(rows) == 4

    folder = tmp_path / "folder"
    assert CliRunner().invoke(app, ["export", "--to", str(folder)]).exit_code == 0
    refused, _ = score(sample_files / "nightly.csv", tmp_path / "f.csv", "--rules", str(rules),
                       "--model", str(folder))
    assert refused.exit_code == 2 and "axes.method: points" in refused.output
    assert not (tmp_path / "f.csv").exists()
    rules.write_text(RULES.read_text() + "\naxes:\n  fit: [industry]\n  engagement: [meetings]\n"
                     "  method: share\n  fit_grades: {A: 0.5, B: 0.3, C: 0.3}\n")
    bad, _ = score(sample_files / "nightly.csv", tmp_path / "b.csv", "--rules", str(rules))
    assert bad.exit_code == 2 and "together below 1" in bad.output
