"""BANT qualification rules and the label policy: pure functions on lead columns.

No scikit-learn and no IO here. Each criterion gives ``met``, ``not_met`` or ``unknown``
per lead, and some failures are hard disqualifiers. Rules are evaluated once per
distinct value (titles and timelines repeat a lot), so millions of leads stay cheap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadml.config import Grades, LabelPolicy, Rules
from leadml.data.factor_codes import factorize
from leadml.data.reason_text import join_categorical

MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"
# Titles that can usually sign, and titles that cannot (for `leadml rules init`).
TITLES_THAT_SIGN = (r"\b(?:chief|ceo|cto|cfo|coo|cro|cmo|cio|s?vp|evp|vice[- ]?president|director"
                r"|head of|head|owner|founder|co-?founder|managing partner|partner|president)\b")
TITLES_THAT_CANNOT = r"\b(?:student|intern|phd candidate|trainee)\b"
CRITERIA = ("budget", "authority", "need", "timeline")
LABELS = ("sales_qualified", "nurture", "disqualified")
GRADES = ("A", "B", "C", "D")

_NO_PLANS = re.compile(r"\b(no plans?|not (buying|interested|planning)|never|no budget)\b")
_NOT_YET = re.compile(r"\b(just )?(researching|browsing|looking|exploring)\b|\bnot sure\b"
                      r"|\bundecided\b|\bunknown\b|\btbd\b")
_NOW = re.compile(r"\b(asap|immediately|urgent(ly)?|right away|this month|now)\b")
_UNIT_MONTHS = {"day": 1 / 30, "week": 0.25, "month": 1.0, "year": 12.0, "yr": 12.0}
_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-|to|–)\s*(\d+(?:\.\d+)?)\s*(day|week|month|year|yr)")
_SINGLE = re.compile(r"(\d+(?:\.\d+)?)\s*(\+?)\s*(day|week|month|year|yr)")


def says_no_plans(text: str) -> bool:
    """True when a stated timeline rules out buying.

    >>> says_no_plans("No plans"), says_no_plans("not buying this year"), says_no_plans("Q3")
    (True, True, False)
    """
    return bool(_NO_PLANS.search(text.lower()))


def timeline_months(text: str) -> float | None:
    """Months until the planned purchase, read from free text; ``inf`` for no plan yet,
    ``None`` when the text says nothing readable. Ranges count by their far end.

    >>> [timeline_months(t) for t in ["this quarter", "next quarter", "3-6 months", "ASAP"]]
    [3.0, 6.0, 6.0, 1.0]
    >>> [timeline_months(t) for t in ["within 2 weeks", "6-12 Months", "12+ months", "next year"]]
    [0.5, 12.0, 12.5, 18.0]
    >>> timeline_months("no plans"), timeline_months("just researching"), timeline_months("??")
    (inf, inf, None)
    """
    t = text.strip().lower()
    if not t:
        return None
    if _NO_PLANS.search(t) or _NOT_YET.search(t):
        return math.inf
    if _NOW.search(t):
        return 1.0
    if "this quarter" in t:
        return 3.0
    if "next quarter" in t:
        return 6.0
    if "this year" in t:
        return 12.0
    if "next year" in t:
        return 18.0
    if m := _RANGE.search(t):
        return float(m.group(2)) * _UNIT_MONTHS[m.group(3)]
    if m := _SINGLE.search(t):
        months = float(m.group(1)) * _UNIT_MONTHS[m.group(3)]
        return months + 0.5 if m.group(2) else months
    return None


STATUSES = (MET, NOT_MET, UNKNOWN)  # the status codes of a _Judged, in this order


@dataclass(frozen=True)
class _Judged:
    """One criterion's verdict on every lead, as codes: ``status`` indexes
    :data:`STATUSES`, ``text`` indexes ``texts`` (the distinct reasons, '' among them);
    ``disqualifies`` flags hard disqualifiers. Leads share a handful of verdicts, so the
    words are made once per verdict and never copied per lead."""

    status: np.ndarray
    disqualifies: np.ndarray
    text: np.ndarray
    texts: np.ndarray

    def per_lead(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(status, hard disqualifier, reason) per lead, as words."""
        return (np.asarray(STATUSES, dtype=object)[self.status], self.disqualifies,
                self.texts[self.text])


def _per_value(values: pd.Series, fn: Callable[[str], tuple[str, bool, str]],
               missing: tuple[str, bool, str], markers: tuple[str, ...] = ()) -> _Judged:
    """Apply ``fn`` once per distinct value; a missing value (empty, or a placeholder in
    ``markers``) gets ``missing``."""
    codes, uniques = factorize(values, use_na_sentinel=True)
    placeholders = set(markers)
    results = [missing if placeholders and str(u).strip() in placeholders else fn(str(u))
               for u in uniques] + [missing]  # code -1 picks the trailing "missing"
    status = np.array([STATUSES.index(r[0]) for r in results], dtype=np.int8)
    disq = np.array([r[1] for r in results], dtype=bool)
    text, texts = pd.factorize(np.array([r[2] for r in results], dtype=object))
    return _Judged(status[codes], disq[codes], text[codes], np.asarray(texts, dtype=object))


def _money(x: float) -> str:
    return f"{x:,.0f}"


def budget(values: pd.Series, rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Status, hard disqualifier and reason from numeric budgets (NaN = not stated).

    >>> from leadml.config import BudgetRule
    >>> s, d, r = budget(pd.Series([20_000, 5_000, 500, np.nan]),
    ...                  BudgetRule(column="b", min=10_000, disqualify_below=1_000))
    >>> s.tolist(), d.tolist()
    (['met', 'not_met', 'not_met', 'unknown'], [False, False, True, False])
    """
    return _budget(values, rule).per_lead()


def _budget(values: pd.Series, rule) -> _Judged:
    x = values.to_numpy(dtype="float64")
    known = ~np.isnan(x)
    met = known & (x >= rule.min)
    status = np.where(~known, 2, np.where(met, 0, 1)).astype(np.int8)
    disq = known & (x < rule.disqualify_below) if rule.disqualify_below is not None \
        else np.zeros(len(x), bool)
    text = np.zeros(len(x), dtype=np.int64)
    texts = ["", "budget not stated"]
    text[~known] = 1
    low = np.flatnonzero(known & ~met)
    for hard in (True, False):  # each distinct budget is put in words once
        rows = low[disq[low] == hard]
        if len(rows):
            codes, uniques = pd.factorize(x[rows])
            text[rows] = len(texts) + codes
            texts += [f"budget {_money(u)} is below the {_money(rule.disqualify_below)} "
                      "minimum (hard disqualifier)" if hard
                      else f"budget {_money(u)} is below {_money(rule.min)}" for u in uniques]
    return _Judged(status, disq, text, np.array(texts, dtype=object))


def authority(titles: pd.Series, rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Status from job-title patterns; disqualifying patterns (students, interns) win.

    >>> from leadml.config import AuthorityRule
    >>> rule = AuthorityRule(column="t", met=[r"\\bvp\\b", r"\\bdirector\\b"],
    ...                      disqualify=[r"\\bintern\\b"])
    >>> authority(pd.Series(["V.P. Sales", "Sales Intern", "analyst", None]), rule)[0].tolist()
    ['met', 'not_met', 'not_met', 'unknown']
    """
    return _authority(titles, rule).per_lead()


def _authority(titles: pd.Series, rule, markers: tuple[str, ...] = ()) -> _Judged:
    met, out = _matcher(rule.met, rule.met_values), \
        _matcher(rule.disqualify, rule.disqualify_values)
    what = "job title" if "title" in rule.column.lower() else rule.column.replace("_", " ")

    def judge(title: str) -> tuple[str, bool, str]:
        plain = title.replace(".", "").strip()
        if not plain:
            return UNKNOWN, False, f"no {what}"
        if out(title.strip()) or out(plain):
            return NOT_MET, True, f"{what} '{title}' cannot sign (hard disqualifier)"
        if met(title.strip()) or met(plain):
            return MET, False, ""
        return NOT_MET, False, f"{what} '{title}' shows no buying authority"

    return _per_value(titles, judge, (UNKNOWN, False, f"no {what}"), markers)


def _matcher(patterns, values) -> Callable[[str], bool]:
    """True for text matching one of ``patterns`` (regular expressions) or equal to one
    of ``values``, both case-insensitive."""
    regex = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) \
        if patterns else None
    exact = {v.strip().lower() for v in values}
    return lambda text: text.strip().lower() in exact or bool(regex and regex.search(text))


def need(values: pd.Series, rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Status from value lists on the stated need.

    >>> from leadml.config import NeedRule
    >>> rule = NeedRule(column="n", met=["urgent pain"], disqualify=["no current need"])
    >>> need(pd.Series(["Urgent pain", "exploring", "no current need", None]), rule)[0].tolist()
    ['met', 'not_met', 'not_met', 'unknown']
    """
    return _need(values, rule).per_lead()


def _need(values: pd.Series, rule, markers: tuple[str, ...] = ()) -> _Judged:
    met = _matcher(rule.met_patterns, rule.met)
    out = _matcher(rule.disqualify_patterns, rule.disqualify)

    def judge(value: str) -> tuple[str, bool, str]:
        if out(value):
            return NOT_MET, True, f"need '{value}' (hard disqualifier)"
        if met(value):
            return MET, False, ""
        if rule.otherwise == UNKNOWN:
            return UNKNOWN, False, f"need '{value}' is not one the rules know"
        return NOT_MET, False, f"need '{value}' is not confirmed"

    return _per_value(values, judge, (UNKNOWN, False, "need not stated"), markers)


def timeline(values: pd.Series, rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Status from the stated purchase timeline.

    >>> from leadml.config import TimelineRule
    >>> timeline(pd.Series(["this quarter", "next year", "no plans", "whenever", None]),
    ...          TimelineRule(column="t", max_months=6))[0].tolist()
    ['met', 'not_met', 'not_met', 'unknown', 'unknown']
    """
    return _timeline(values, rule).per_lead()


def _timeline(values: pd.Series, rule, markers: tuple[str, ...] = ()) -> _Judged:
    def judge(value: str) -> tuple[str, bool, str]:
        months = timeline_months(value)
        if months is None:
            return UNKNOWN, False, f"timeline '{value}' is not readable"
        if rule.disqualify_no_plans and says_no_plans(value):
            return NOT_MET, True, f"timeline '{value}' (hard disqualifier)"
        if months <= rule.max_months:
            return MET, False, ""
        return NOT_MET, False, f"timeline '{value}' is beyond {rule.max_months:g} months"

    return _per_value(values, judge, (UNKNOWN, False, "timeline not stated"), markers)


def evaluate(leads: pd.DataFrame, rules: Rules, missing_values: tuple[str, ...] = ()
             ) -> pd.DataFrame:
    """BANT status per lead: ``bant_<criterion>`` columns, ``hard_disqualifier`` and the
    failed criteria in words (``bant_reasons``); the statuses and reasons are categoricals.
    ``leads`` holds typed values: numbers for the budget and strings for the rest, where
    missing or a placeholder in ``missing_values`` is not stated."""
    out, failed = judged(leads, rules, missing_values)
    out["bant_reasons"] = join_categorical(failed)
    return out


def judged(leads: pd.DataFrame, rules: Rules, missing_values: tuple[str, ...] = ()
           ) -> tuple[pd.DataFrame, list[pd.Categorical]]:
    """:func:`evaluate` without ``bant_reasons``, and instead per criterion what it says of
    each lead when not met ('' otherwise): the parts ``bant_reasons`` joins, for a caller
    joining them with reasons of its own."""
    n = len(leads)
    verdicts = {}
    for c in CRITERIA:
        rule = getattr(rules, c)
        if rule is None:  # not configured: unknown, said once elsewhere
            verdicts[c] = _Judged(np.full(n, 2, dtype=np.int8), np.zeros(n, bool),
                                np.zeros(n, dtype=np.int64), np.array([""], dtype=object))
        elif c == "budget":
            verdicts[c] = _budget(leads[rule.column], rule)
        else:
            judge = {"authority": _authority, "need": _need, "timeline": _timeline}[c]
            verdicts[c] = judge(leads[rule.column], rule, tuple(missing_values))
    out = pd.DataFrame({f"bant_{c}": pd.Categorical.from_codes(j.status, STATUSES)
                        for c, j in verdicts.items()}, index=leads.index)
    out["hard_disqualifier"] = np.logical_or.reduce([j.disqualifies for j in verdicts.values()])
    names = {"budget": "Budget", "authority": "Authority", "need": "Need",
             "timeline": "Timeline"}
    failed = []
    for c, j in verdicts.items():
        words = np.array(["", *(_criterion_text(names[c], t) for t in j.texts)],
                         dtype=object)
        unique, words = pd.factorize(words)
        shown = np.where(j.status == 0, 0, j.text + 1)
        failed.append(pd.Categorical.from_codes(unique[shown], np.asarray(words)))
    return out, failed


def _criterion_text(name: str, text: str) -> str:
    """A failed criterion's reason, its name said once: "Budget not stated", "Authority: job
    title 'Analyst' shows no buying authority".

    >>> _criterion_text("Budget", "budget not stated"), _criterion_text("Need", "")
    ('Budget not stated', '')
    """
    if not text:
        return ""
    if text.lower().startswith(name.lower() + " "):
        return name + text[len(name):]
    return f"{name}: {text}"


def criteria_met(bant: pd.DataFrame) -> np.ndarray:
    return sum((bant[f"bant_{c}"] == MET).to_numpy(dtype=int) for c in CRITERIA)


def label(probability: np.ndarray, bant: pd.DataFrame, policy: LabelPolicy,
          expected_value: np.ndarray | None = None,
          on_axes: dict | None = None) -> pd.Categorical:
    """One label per lead (a categorical of :data:`LABELS`), by the policy's stated
    precedence.

    1. a hard disqualifier -> ``disqualified`` (whatever the model says);
    2. probability below ``disqualify_below_probability`` -> ``disqualified``;
    3. at least ``min_criteria_met`` criteria met, probability at least
       ``sales_qualified.min_probability`` and expected value at least
       ``min_expected_value`` (those set) -> ``sales_qualified``;
    4. otherwise ``nurture``.

    With the fit and engagement axes (``on_axes``: :func:`leadml.rules.axes.columns`), a
    lead in one of ``disqualify_cells`` is disqualified after step 1, and step 3 also needs
    a fit grade of ``sales_qualified.min_fit_grade`` or better.

    A capacity, when the policy sets one, then keeps only the best of the
    ``sales_qualified`` leads (:mod:`leadml.rules.capacity`): it needs the whole run.
    Without a model (``leadml score --rules-only``) the probability is NaN and steps 2 and
    the probability half of 3 are skipped: the rules alone decide. A lead whose expected
    value is unknown (no deal value, no default) never passes ``min_expected_value`` and,
    when capacity ranks by expected value, is not a candidate.
    """
    p = np.asarray(probability, dtype=float)
    known = ~np.isnan(p)
    floor = policy.disqualify_below_probability
    low = known & (p < floor) if floor is not None else np.zeros(len(p), bool)
    sq = policy.sales_qualified
    qualified = criteria_met(bant) >= sq.min_criteria_met
    if sq.min_probability is not None:
        qualified &= ~known | (p >= sq.min_probability)
    uses_value = sq.min_expected_value is not None or \
        (sq.by_capacity and sq.rank_by == "expected_value")
    if uses_value and expected_value is not None:
        ev = np.asarray(expected_value, dtype=float)
        qualified &= ~known | (~np.isnan(ev) & (ev >= (sq.min_expected_value
                                                        if sq.min_expected_value is not None
                                                        else -np.inf)))
    outside = np.zeros(len(p), bool)
    if on_axes is not None:
        fit = np.asarray(on_axes["fit_grade"]).astype(str)
        if sq.min_fit_grade is not None:
            qualified &= fit <= sq.min_fit_grade  # (A < B < C < D)
        if policy.disqualify_cells:
            cell = np.char.add(fit, np.asarray(on_axes["engagement_level"]).astype(str))
            outside = np.isin(cell, policy.disqualify_cells)
    codes = np.select([bant["hard_disqualifier"].to_numpy(), outside, low, qualified],
                      [LABELS.index("disqualified")] * 3 + [LABELS.index("sales_qualified")],
                      LABELS.index("nurture")).astype(np.int8)
    return pd.Categorical.from_codes(codes, LABELS)


def meanings(policy: LabelPolicy) -> dict[str, str]:
    """What each label means under ``policy``, in words for the sales team.

    >>> from leadml.config import default_rules
    >>> said = meanings(default_rules().label_policy)
    >>> said["sales_qualified"]
    'hand to sales: at least 2 of the 4 BANT criteria met and a probability of 25% or more'
    >>> said["disqualified"].endswith("or a probability below 2%")
    True
    """
    sq = policy.sales_qualified
    tests = []
    if sq.min_criteria_met:
        tests.append(f"at least {sq.min_criteria_met} of the 4 BANT criteria met")
    if sq.min_probability is not None:
        tests.append(f"a probability of {sq.min_probability:.0%} or more")
    if sq.min_expected_value is not None:
        tests.append(f"an expected value of {sq.min_expected_value:,.0f} or more")
    if sq.min_fit_grade is not None:
        tests.append(f"a fit grade of {sq.min_fit_grade} or better")
    qualified = "hand to sales: " + (" and ".join(tests) or "every lead that is not "
                                     "disqualified")
    if sq.capacity is not None:
        qualified += f", the best {sq.capacity:,} of each run by {sq.rank_by.replace('_', ' ')}"
    elif sq.capacity_share is not None:
        qualified += (f", the best {sq.capacity_share:.0%} of each run's leads by "
                      f"{sq.rank_by.replace('_', ' ')}")
    floor = policy.disqualify_below_probability
    return {
        "sales_qualified": qualified,
        "nurture": "keep warming up: no disqualifier, but not sales-qualified"
                   + (" (or qualified beyond the capacity)" if sq.by_capacity else ""),
        "disqualified": "do not pursue: a BANT rule disqualifies the lead (for example a "
                        "budget below the floor)"
                        + (f", or a probability below {floor:.0%}" if floor is not None
                           else "")
                        + (f", or a lead in {', '.join(policy.disqualify_cells)} of the fit "
                           "and engagement matrix (outside the customer profile)"
                           if policy.disqualify_cells else ""),
    }


def score(probability: np.ndarray) -> np.ndarray:
    """Probability as a 1-99 score for people and CRMs.

    >>> score(np.array([0.0, 0.004, 0.5, 0.999])).tolist()
    [1, 1, 50, 99]
    """
    return np.clip(np.rint(np.asarray(probability) * 100), 1, 99).astype(int)


def grade_cutoffs(grades: Grades, reference: np.ndarray | None = None) -> tuple[float, ...]:
    """Lower probability bounds of A, B and C. For ``share`` grading, ``reference`` holds
    the probabilities of the model's newest window and the bounds are its quantiles."""
    if grades.method == "probability":
        return grades.A, grades.B, grades.C
    if reference is None or len(reference) == 0:
        raise ValueError("share grading needs the model's reference probabilities; retrain "
                         "the model with this leadml version or use grades.method: probability")
    shares = np.cumsum([grades.A, grades.B, grades.C])
    return tuple(float(np.quantile(reference, 1 - s)) for s in shares)


def grade(probability: np.ndarray, cutoffs: tuple[float, ...]) -> pd.Categorical:
    """A to D from lower bounds (A, B, C), a categorical.

    >>> grade(np.array([0.5, 0.3, 0.1, 0.01]), (0.4, 0.2, 0.08)).tolist()
    ['A', 'B', 'C', 'D']
    """
    a, b, c = cutoffs
    p = np.asarray(probability)
    codes = np.select([p >= a, p >= b, p >= c], [0, 1, 2], 3).astype(np.int8)
    return pd.Categorical.from_codes(codes, GRADES)
