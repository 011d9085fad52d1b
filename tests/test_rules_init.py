"""BANT on an export that lacks some fields: optional criteria and `leadml rules init`."""

import json
import re

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import leadml
from leadml.cli import app
from leadml.config import load_rules
from tests.helpers import write_config

pytestmark = pytest.mark.slow
RENAMES = {"job_title": "occupation", "stated_need": "what_matters_most"}


@pytest.fixture
def export(tmp_path, sample_files):
    """The sample as a CRM with no budget and no timeline field, an occupation field and a
    'what matters most' field."""
    for name in ("leads", "nightly"):
        frame = pd.read_csv(sample_files / f"{name}.csv", dtype=str, keep_default_na=False)
        frame.drop(columns=["estimated_budget", "purchase_timeline"]).rename(
            columns=RENAMES).to_csv(tmp_path / f"{name}.csv", index=False)
    config = write_config(tmp_path, tmp_path / "leads.csv")
    raw = yaml.safe_load(config.read_text())
    cols = raw["dataset"]["columns"]
    cols["numeric"].remove("estimated_budget")
    cols["categorical"] = [RENAMES.get(c, c) for c in cols["categorical"]
                           if c != "purchase_timeline"]
    cols["text"] = [RENAMES.get(c, c) for c in cols["text"]]
    config.write_text(yaml.safe_dump(raw))
    return tmp_path, config


def test_an_export_without_budget_or_timeline_is_scored_with_rules_from_rules_init(export):
    folder, config = export
    runner = CliRunner()
    assert runner.invoke(app, ["train", "--config", str(config)]).exit_code == 0

    shipped = runner.invoke(app, ["score", str(folder / "nightly.csv"), "-o",
                                  str(folder / "shipped.csv")])
    assert shipped.exit_code == 3 and "leadml rules init" in shipped.output
    assert not (folder / "shipped.csv").exists()

    made = runner.invoke(app, ["rules", "init", "--config", str(config), "-o",
                               str(folder / "bant.yaml")])
    assert made.exit_code == 0, made.output
    rules = load_rules(folder / "bant.yaml")
    text = (folder / "bant.yaml").read_text()
    assert "# budget: left out" in text and "# timeline: left out" in text
    # authority and need are drafted from the names, then kept or commented out by how they
    # would treat the model's best leads, with the numbers either way
    assert "occupation" in text and "what_matters_most" in text and "urgent pain" in text
    for criterion in ("authority", "need"):
        assert (criterion in rules.configured) != \
            (f"# {criterion}: left out after checking it against a model" in text)
    assert text.count("top 10% (") == 2
    again = runner.invoke(app, ["rules", "init", "--config", str(config), "-o",
                                str(folder / "bant.yaml")])
    assert again.exit_code == 2 and "never overwrites" in again.output

    done = runner.invoke(app, ["score", str(folder / "nightly.csv"), "-o",
                               str(folder / "scored.csv"), "--rules", str(folder / "bant.yaml")])
    assert done.exit_code == 0, done.output
    scored = pd.read_csv(folder / "scored.csv", keep_default_na=False)
    assert (scored["bant_budget"] == "unknown").all() and \
        (scored["bant_timeline"] == "unknown").all()
    for criterion in ("authority", "need"):
        assert (set(scored[f"bant_{criterion}"]) >= {"met", "not_met"}) == \
            (criterion in rules.configured)
    assert not scored["reasons"].str.contains("Budget|Timeline").any()  # said once, below
    assert (scored["label"] == "sales_qualified").sum() > 0
    manifest = json.loads((folder / "scored.manifest.json").read_text())
    assert {"budget", "timeline"} <= set(manifest["rules"]["not_configured"])
    assert manifest["scored"] == len(scored) == 600
    # fit and engagement proposed from the field names, and scored with them
    assert rules.axes is not None and rules.axes.fit and rules.axes.engagement
    assert {"fit_grade", "engagement_level"} <= set(scored.columns)
    assert sum(manifest["axes"]["cells"].values()) == 600
    # cut as quarters of the champion's test window, whose matrix the file shows
    assert rules.axes.method == "share" and manifest["axes"]["method"] == "share"
    shown = text.split("The matrix of the champion's test window", 1)[1].splitlines()[1:6]
    assert [line.split()[1] for line in shown] == ["fit", "A", "B", "C", "D"]
    assert sum(int(n.replace(",", "")) for line in shown[1:] for n in
               re.findall(r"([\d,]+) at", line)) == \
        leadml.load_model().report_data["windows"]["test"]["rows"]


def test_criteria_are_optional_but_the_policy_must_be_reachable(tmp_path):
    from leadml.errors import ConfigError

    base = {"label_policy": {"sales_qualified": {"min_probability": 0.2,
                                                 "min_criteria_met": 0}}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(base))
    assert load_rules(path).configured == []  # model and label policy alone
    base["label_policy"]["sales_qualified"]["min_criteria_met"] = 1
    path.write_text(yaml.safe_dump({**base, "need": {"column": "n", "met_patterns": ["pain"]}}))
    assert load_rules(path).columns == ["n"]
    base["label_policy"]["sales_qualified"]["min_criteria_met"] = 2
    path.write_text(yaml.safe_dump({**base, "need": {"column": "n", "met": ["x"]}}))
    with pytest.raises(ConfigError, match="only 1 criteria are configured"):
        load_rules(path)
    path.write_text(yaml.safe_dump({**base, "authority": {"column": "t"}}))
    with pytest.raises(ConfigError, match="authority names no value or pattern"):
        load_rules(path)


def test_a_criterion_that_holds_back_the_models_best_leads_is_left_out(tmp_path):
    """Issue 36: on a B2C export, authority was drafted from 'current occupation' =
    'Working Professional' and held back most of the leads the model ranked highest, who
    converted at 88%. The draft is checked against a model's ranking of the newest leads:
    such a criterion is commented out with its numbers, and the model's top 10% keep at
    least 90% of their conversions as sales_qualified."""
    import re

    from leadml.setup.synthetic_crm import write_crm_export

    write_crm_export(tmp_path, 12_000, seed=5, nightly_rows=10)
    raw = yaml.safe_load((tmp_path / "train.yaml").read_text())
    planted = {"Deal Amount", "Last Activity", "Last Notable Activity", "Lead Quality",
               "Lead Profile", "Activity Score"}  # the sample's leaks, left out
    cols = raw["dataset"]["columns"]
    for role in ("numeric", "categorical"):
        cols[role] = [c for c in cols[role] if c not in planted]
    cols["excluded"] = sorted(planted)
    (tmp_path / "clean.yaml").write_text(yaml.safe_dump(raw))

    made = CliRunner().invoke(app, ["rules", "init", "--config", str(tmp_path / "clean.yaml"),
                                    "-o", str(tmp_path / "bant.yaml")])
    assert made.exit_code == 0, made.output
    text = (tmp_path / "bant.yaml").read_text()
    assert "# authority: left out after checking it against a model" in text
    assert "# authority:" in text and "\nauthority:" not in text
    held = re.search(r"top 10% \((\d+) leads\): holds back (\d+), who converted at (\d+)%",
                     text)
    assert held and int(held.group(2)) >= 10 and int(held.group(3)) > 35
    kept = re.search(r"of the (\d+) conversions among its top 10% .*?, (\d+) \(", text)
    assert kept and int(kept.group(2)) >= 0.9 * int(kept.group(1))
    assert load_rules(tmp_path / "bant.yaml").authority is None
