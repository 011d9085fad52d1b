"""The sales-ops report and notebook, built from a model trained in the test session."""

import re

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from leadml.cli import app
from leadml.registry import model_version
from tests.helpers import CHROMIUM, REPO, images_in_chromium, screenshot

pytestmark = pytest.mark.slow


@pytest.fixture
def report_files(champion, sample_files, tmp_path):
    scored = tmp_path / "scored.csv"
    assert CliRunner().invoke(app, ["score", str(sample_files / "nightly.csv"), "-o",
                                    str(scored)]).exit_code == 0
    page = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "-o", str(page), "--scored", str(scored)])
    assert result.exit_code == 0, result.output
    return page, page.read_text(encoding="utf-8")


def test_report_is_self_contained_and_has_every_section(report_files):
    _, html = report_files
    for section in ("What it learned from", "How good is it, in plain words",
                    "Can the probabilities be trusted?", "Conversion per grade",
                    "Which fields matter", "How each field's values convert",
                    "Tonight's leads", "The 20 most likely to convert"):
        assert section in html
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) >= 2 and all(s.startswith("data:image/png;base64,") for s in images)
    assert not re.search(r'(src|href)="(https?:|//)', html)  # nothing fetched from anywhere
    assert "<script" not in html
    assert "true_probability" not in html.split("Never used:")[0]  # excluded: not a field


def test_report_speaks_to_sales_ops_without_jargon(report_files):
    """Field names in words, importance said in a sentence, the candidates' leaderboard,
    grade cut-offs and what each label means, placeholders read as not stated."""
    _, html = report_files
    assert "Purchase timeline" in html and "purchase_timeline</" not in html
    assert "How the model was chosen" in html
    assert "ranking on the newer leads (ROC AUC)" in html and "0.5 a coin toss" in html
    assert "How much worse the model ranks the newest leads" in html
    assert "<th>std</th>" not in html and "<th>drop in ranking quality</th>" in html
    # The terms a sales manager would not know, gone or explained beside them:
    for jargon in ("calibrated with", "leadml plan", "learning_rate=", "max_leaf_nodes",
                   "text_max_features", 'alt="chart"', "perfectly calibrated"):
        assert jargon not in html, jargon
    assert not re.search(r"\d\d:\d\d:\d\d[+-]\d\d:\d\d", html)  # times as dates
    assert "(the calibration window) set how its scores turn into probabilities" in html
    assert "<th>as predicted?</th>" in html
    assert ("than predicted (" in html) or ("converted as predicted, within" in html)
    assert "Grade cut-offs" in html and "What each label means" in html
    assert "<b>sales qualified</b>: hand to sales" in html
    assert '"Select"' not in html  # a placeholder is "(not stated)" in reasons


def test_training_logs_importances_insights_and_the_report(champion):
    run_id = model_version("models:/leadml@champion")["run_id"]
    client = MlflowClient()
    names = {a.path for a in client.list_artifacts(run_id, "importance")}
    assert {"importance/permutation_importance.json", "importance/field_insights.json",
            "importance/permutation_importance.png"} <= names
    assert "report/report.html" in {a.path for a in client.list_artifacts(run_id, "report")}


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")
def test_report_renders_in_headless_chromium_with_no_broken_image(report_files, tmp_path):
    page, html = report_files
    decoded, total, dom = images_in_chromium(html, tmp_path)
    assert decoded == total >= 2, dom[:300]
    shot = screenshot(page, tmp_path / "report.png")
    assert shot.exists() and shot.stat().st_size > 20_000


def test_sales_ops_notebook_runs_end_to_end(champion, sample_files, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LEADML_LEADS", str(sample_files / "nightly.csv"))
    path = REPO / "notebooks" / "sales_ops.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert not any(s.lstrip().startswith(("def ", "class ")) for s in code)  # defines none
    assert "import leadml" in code[0]
    assert not any("from leadml" in s or "leadml.api" in s for s in code)  # public API only
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = " ".join(str(o.get("data", {}).get("text/plain", "")) for c in nb.cells
                       if c.cell_type == "code" for o in c.outputs)
    assert "drop in ROC AUC" in outputs and "raised" in outputs
    assert "..." not in outputs.split("reasons")[-1]  # reasons in full, not cut
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # calibration, importances, labels, effects
    assert not any(o.get("output_type") == "error" for c in nb.cells
                   if c.cell_type == "code" for o in c.outputs)


def test_report_on_a_model_without_a_run_is_a_clear_error(tmp_path, champion):
    result = CliRunner().invoke(app, ["report", "-o", str(tmp_path / "r.html"), "--model",
                                      "models:/nope@champion"])
    assert result.exit_code == 5
    assert not (tmp_path / "r.html").exists()


def test_a_grade_that_converts_outside_its_prediction_is_said_in_words():
    import numpy as np

    from leadml.explain.report import grade_table, outside_words

    rng = np.random.default_rng(0)
    p = np.r_[np.full(400, 0.5), np.full(2_000, 0.1)]
    y = np.r_[rng.random(400) < 0.62, rng.random(2_000) < 0.1].astype(int)  # A too low
    t = grade_table(y, p, (0.4, 0.2, 0.08))
    verdict = dict(zip(t["grade"], t["as predicted?"], strict=True))
    assert verdict["A"] == "more often than predicted" and verdict["C"] == "yes, within chance"
    said = outside_words(t)
    assert said.startswith("Grade A leads converted more often than predicted (")
    assert "their probabilities are too low" in said and "Grade C" not in said


def test_report_draws_the_fit_and_engagement_matrix_of_the_test_window(champion, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text((REPO / "pipelines" / "configs" / "bant.yaml").read_text()
                     + "\naxes:\n  fit: [industry, company_size, job_title, country]\n"
                     "  engagement: [web_visits, email_opens, form_fills, meetings]\n"
                     "  fit_grades: {A: 2, B: 0, C: -1}\n")
    result = CliRunner().invoke(app, ["report", "--output", str(tmp_path / "r.html"),
                                      "--rules", str(rules)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r.html").read_text()
    section = html.split("Fit and engagement (test window)</h2>")[1].split("<h2>")[0]
    assert section.count("<th>fit ") == 4 and section.count("<th>engagement ") == 4
    shown = [int(n.replace(",", "")) for n in re.findall(r"<br>([\d,]+) leads</td>", section)]
    assert sum(shown) > 0 and "converted most" in section
