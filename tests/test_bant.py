"""BANT rules and the label policy: tables of spellings and behaviour properties."""

import numpy as np
import pandas as pd
import pytest

from leadml.config import load_rules
from leadml.errors import ConfigError
from leadml.rules import bant
from tests.helpers import REPO

RULES_PATH = REPO / "pipelines" / "configs" / "bant.yaml"
RULES = load_rules(RULES_PATH)
RANK = {"not_met": 0, "unknown": 1, "met": 2}
LABEL_RANK = {"disqualified": 0, "nurture": 1, "sales_qualified": 2}


def leads(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "estimated_budget": rng.choice([np.nan, 0, 500, 5_000, 10_000, 80_000], n),
        "job_title": rng.choice(["CEO", "VP Sales", "Sales Intern", "Analyst", None], n),
        "stated_need": rng.choice(["urgent pain", "exploring", "no current need", None], n),
        "purchase_timeline": rng.choice(["this quarter", "next year", "no plans", None], n),
    })


@pytest.mark.parametrize("title, status, disqualified", [
    ("CEO", "met", False), ("Chief Revenue Officer", "met", False),
    ("VP Sales", "met", False), ("V.P. of Marketing", "met", False),
    ("Vice President, Operations", "met", False), ("Vice-President IT", "met", False),
    ("SVP Finance", "met", False), ("Head of IT", "met", False),
    ("Director of Procurement", "met", False), ("Sr. Director, Sales", "met", False),
    ("Founder", "met", False), ("co-founder & CEO", "met", False), ("Owner", "met", False),
    ("MARKETING MANAGER", "not_met", False), ("Software Engineer", "not_met", False),
    ("Sales Intern", "not_met", True), ("student", "not_met", True),
    ("PhD candidate", "not_met", True), ("", "unknown", False), (None, "unknown", False),
])
def test_authority_reads_common_title_spellings(title, status, disqualified):
    s, d, _ = bant.authority(pd.Series([title]), RULES.authority)
    assert (s[0], bool(d[0])) == (status, disqualified)


@pytest.mark.parametrize("text, status, disqualified", [
    ("this quarter", "met", False), ("ASAP", "met", False), ("next quarter", "met", False),
    ("3-6 months", "met", False), ("within 6 months", "met", False),
    ("6-12 months", "not_met", False), ("next year", "not_met", False),
    ("12+ months", "not_met", False), ("just researching", "not_met", False),
    ("no plans", "not_met", True), ("Not buying", "not_met", True),
    ("whenever", "unknown", False), (None, "unknown", False),
])
def test_timeline_parsing(text, status, disqualified):
    s, d, _ = bant.timeline(pd.Series([text]), RULES.timeline)
    assert (s[0], bool(d[0])) == (status, disqualified)


def test_a_higher_budget_never_lowers_the_bant_result_or_the_label():
    base = leads(300, seed=0)
    p = np.random.default_rng(1).uniform(0, 1, 300)
    budgets = [0, 500, 999, 1_000, 9_999, 10_000, 1e6]
    previous = None
    for b in budgets:
        frame = base.assign(estimated_budget=float(b))
        checks = bant.evaluate(frame, RULES)
        now = (checks["bant_budget"].map(RANK).to_numpy(),
               (~checks["hard_disqualifier"]).to_numpy().astype(int),
               pd.Series(bant.label(p, checks, RULES.label_policy)).map(LABEL_RANK).to_numpy())
        if previous is not None:
            for before, after in zip(previous, now, strict=True):
                assert (after >= before).all()
        previous = now


def test_a_hard_disqualifier_is_never_sales_qualified():
    frame = leads(2_000, seed=2)
    checks = bant.evaluate(frame, RULES)
    labels = bant.label(np.ones(len(frame)), checks, RULES.label_policy)  # certain to buy
    assert checks["hard_disqualifier"].any()
    assert (labels[checks["hard_disqualifier"].to_numpy()] == "disqualified").all()


def test_label_precedence():
    frame = pd.DataFrame({"estimated_budget": [50_000.0] * 4,
                          "job_title": ["CEO", "CEO", "CEO", "Analyst"],
                          "stated_need": ["urgent pain", "urgent pain", "no current need",
                                          "exploring"],
                          "purchase_timeline": ["ASAP"] * 4})
    checks = bant.evaluate(frame, RULES)
    p = np.array([0.9, 0.01, 0.9, 0.9])
    assert bant.label(p, checks, RULES.label_policy).tolist() == [
        "sales_qualified", "disqualified", "disqualified", "sales_qualified"]
    assert "hard disqualifier" in checks["bant_reasons"][2]
    assert checks["bant_reasons"][0] == ""


def test_reasons_name_every_failed_criterion_in_words():
    frame = pd.DataFrame({"estimated_budget": [5_000.0], "job_title": ["Analyst"],
                          "stated_need": [None], "purchase_timeline": ["next year"]})
    reasons = bant.evaluate(frame, RULES)["bant_reasons"][0]
    assert reasons == ("Budget 5,000 is below 10,000; Authority: job title 'Analyst' "
                       "shows no buying authority; Need not stated; Timeline "
                       "'next year' is beyond 6 months")  # each criterion named once


def test_share_grades_use_the_reference_window():
    from leadml.config import Grades

    reference = np.linspace(0, 1, 101)
    cutoffs = bant.grade_cutoffs(Grades(method="share", A=0.1, B=0.2, C=0.3), reference)
    assert cutoffs == pytest.approx((0.9, 0.7, 0.4))
    with pytest.raises(ValueError, match="reference probabilities"):
        bant.grade_cutoffs(Grades(method="share", A=0.1, B=0.2, C=0.3), None)


@pytest.mark.parametrize("old, new, message", [
    ("max_months: 6", "max_months: -1", r"bant.yaml:\d+ timeline.max_months"),
    ("  min: 10000", "  minimum: 10000", r"budget.minimum: unknown key: did you mean 'min'\?"),
    ("'\\b(student|intern|phd candidate|trainee)\\b'", "'(unclosed'",
     r"authority.disqualify\[0\] '\(unclosed' is not a valid regular expression"),
    ("  A: 0.40", "  A: 0.10", "must fall from A to C"),
])
def test_rules_file_errors_point_at_the_line(tmp_path, old, new, message):
    text = RULES_PATH.read_text()
    assert old in text
    path = tmp_path / "bant.yaml"
    path.write_text(text.replace(old, new))
    with pytest.raises(ConfigError, match=message):
        load_rules(path)


def test_shipped_default_rules_are_the_documented_file():
    shipped = REPO / "src" / "leadml" / "config" / "bant_default.yaml"
    assert shipped.read_text() == RULES_PATH.read_text()
