"""A starting BANT rules file for any export, from its columns, values and outcomes.

``leadml rules init --config FILE`` reads the training config's history and writes a rules
file that sales ops then check: which column carries each criterion (by its name), and
which of its values meet or disqualify it (by how often leads with that value converted).
Every guess is a comment in the file, with the numbers behind it. A criterion with no
fitting column is left out (``unknown`` for every lead) and the comment says why.

The draft is checked against a model before it is written (:func:`check_against_model`): a
logistic regression fitted on the older leads ranks the newest fifth of the history, and a
criterion that would demote the model's best leads (the top 10%) while those leads convert
above the sales-qualified rate is left commented out, with its numbers. The file's header
says how many of the top 10%'s conversions stay ``sales_qualified`` under the rules kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

from leadml.config import Rules, TrainConfig
from leadml.data.schema import History
from leadml.data.values import is_missing
from leadml.model.pipeline import build_pipeline
from leadml.rules.bant import (
    TITLES_THAT_CANNOT,
    TITLES_THAT_SIGN,
    evaluate,
    label,
    timeline_months,
)

NAMES = {
    "budget": r"budget|revenue|spend|amount|deal.?size|annual|turnover|price",
    "authority": r"title|role|position|occupation|seniority|persona|authority|designation",
    "need": r"need|interest|pain|reason|use.?case|requirement|goal|what.?matters|challenge",
    "timeline": r"timeline|time.?frame|purchase.?time|when|horizon|buying.?stage",
}
MIN_LEADS = 30  # a value needs this many leads before its conversion rate is trusted
LIFT_MET, LIFT_LOW = 1.5, 0.4
NEWEST_SHARE = 0.2  # the newest leads the check ranks; the model is fitted on the others
TOPS = (0.05, 0.10, 0.20)  # the model's best leads, as shares of the ranked ones
MIN_DEMOTED = 10  # fewer demoted top leads than this cannot show a criterion is wrong
MAX_LOST = 0.10  # a criterion may cost the model's top 10% at most this share of conversions


@dataclass(frozen=True)
class Ranked:
    """The newest leads of a history as a model ranked them: their features, the model's
    probabilities and what they did."""

    features: pd.DataFrame
    p: np.ndarray
    y: np.ndarray

    def top(self, share: float) -> np.ndarray:
        """The positions of the best ``share`` of the leads by probability."""
        k = max(1, int(round(share * len(self.p))))
        return np.argsort(-self.p, kind="stable")[:k]


def ranked_newest(history: History, cfg: TrainConfig) -> Ranked | None:
    """A logistic regression fitted on the older leads scores the newest fifth of the
    history; None when there are too few leads of either outcome to fit it."""
    y = history.target
    cut = int(len(y) * (1 - NEWEST_SHARE))
    if min(y[:cut].sum(), (1 - y[:cut]).sum()) < 10 or len(y) - cut < 50:
        return None
    ds = cfg.dataset
    model = build_pipeline("logistic_regression", ds.columns, cfg.model,
                           missing_values=ds.missing_values)
    model.fit(history.features.iloc[:cut], y[:cut])
    newest = history.features.iloc[cut:].reset_index(drop=True)
    return Ranked(newest, model.predict_proba(newest)[:, 1], y[cut:])


def _typed(features: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """The columns the rules read, the budget as numbers."""
    out = features.copy()
    if rules.budget is not None:
        out[rules.budget.column] = pd.to_numeric(out[rules.budget.column], errors="coerce")
    return out


def demotions(rules: Rules, criterion: str, ranked: Ranked, markers) -> dict[float, dict]:
    """Per top share: the model's best leads the criterion alone would hold back (not met,
    or a hard disqualifier), and how those leads converted."""
    bant = evaluate(_typed(ranked.features, rules), rules, markers)
    held = (bant[f"bant_{criterion}"] == "not_met").to_numpy() | \
        bant["hard_disqualifier"].to_numpy()
    out = {}
    for share in TOPS:
        top = ranked.top(share)
        demoted = top[held[top]]
        out[share] = {"leads": len(top), "demoted": len(demoted),
                      "demoted_rate": float(ranked.y[demoted].mean()) if len(demoted)
                      else float("nan"),
                      "lost": int(ranked.y[demoted].sum()), "conversions": int(ranked.y[top].sum())}
    return out


def kept_conversions(rules: Rules, ranked: Ranked, markers, share: float = 0.10
                     ) -> tuple[int, int]:
    """(conversions among the model's top ``share`` that the rules label sales_qualified,
    conversions among them)."""
    bant = evaluate(_typed(ranked.features, rules), rules, markers)
    labels = np.asarray(label(ranked.p, bant, rules.label_policy))
    top = ranked.top(share)
    won = top[ranked.y[top] == 1]
    return int((labels[won] == "sales_qualified").sum()), len(won)


def _pick(candidates: list[str], criterion: str) -> str | None:
    pattern = re.compile(NAMES[criterion], re.IGNORECASE)
    return next((c for c in candidates if pattern.search(c)), None)


def _rates(values: pd.Series, y: np.ndarray, markers) -> pd.DataFrame:
    """Leads and conversion rate per stated value, most frequent first."""
    stated = ~is_missing(values, markers)
    frame = pd.DataFrame({"value": values[stated].astype(str).str.strip().to_numpy(),
                          "y": y[stated]})
    return (frame.groupby("value")["y"].agg(leads="size", rate="mean")
            .sort_values("leads", ascending=False))


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def _value_lines(key: str, rows: pd.DataFrame, base: float, indent: str = "  ") -> list[str]:
    lines = [f"{indent}{key}:"]
    for value, row in rows.iterrows():
        lines.append(f"{indent}  - {_q(value)}  # {int(row['leads']):,} leads, {row['rate']:.0%} "
                     f"converted ({row['rate'] / base:.1f}x the {base:.0%} overall)")
    return lines


def rules_text(history: History, cfg: TrainConfig, ranked: Ranked | None = None) -> str:
    """The YAML text of a starting rules file for this history (validated before return),
    each criterion checked against ``ranked`` (the model's view of the newest leads)."""
    ds, y = cfg.dataset, history.target
    base = float(y.mean())
    markers = ds.missing_values
    numeric = list(ds.columns.numeric)
    words = [*ds.columns.categorical, *ds.columns.text]
    out = [
        "# BANT rules written by `leadml rules init` from "
        f"{ds.path.name} ({len(y):,} leads, {base:.1%} converted).",
        "# Every choice below is a guess from column names and conversion rates: check each",
        "# one with sales ops before scoring with it. A criterion left out is 'unknown' for",
        "# every lead (said once in each scoring manifest). Regular expressions are",
        "# case-insensitive; dots are removed from titles first (\"V.P.\" reads as \"VP\").",
        "",
    ]
    configured = 0
    for criterion, (lines, used) in (
            ("budget", _budget_lines(history, numeric)),
            *((c, _word_lines(c, history, words, markers, base)) for c in ("authority", "need")),
            ("timeline", _timeline_lines(history, words, markers))):
        if used and ranked is not None:
            lines, used = _checked(criterion, lines, ranked, markers, base)
        out += lines
        configured += used
    out += _policy_lines(base, configured)
    out += axes_lines([*numeric, *words])
    text = "\n".join(out)
    rules = Rules.model_validate(yaml.safe_load(text))  # a bug here, not a user's bad file
    if ranked is not None:
        kept, won = kept_conversions(rules, ranked, markers)
        out.insert(5, f"# Checked against a model: of the {won:,} conversions among its top 10% "
                      f"of the newest {len(ranked.p):,} leads, {kept:,} "
                      f"({kept / max(won, 1):.0%}) are sales_qualified under these rules.")
        text = "\n".join(out)
    return text


def _sql_rate(base: float) -> float:
    """The drafted min_probability of a sales-qualified lead: twice the overall rate."""
    return min(0.9, float(f"{max(2 * base, 0.05):.2g}"))


def _checked(criterion: str, lines: list[str], ranked: Ranked, markers, base: float
             ) -> tuple[list[str], bool]:
    """The criterion's lines, kept with the numbers of the check, or commented out when it
    would hold back the model's best leads while they convert above the sales-qualified
    rate."""
    alone = Rules.model_validate(yaml.safe_load("\n".join(lines + _policy_lines(base, 1))))
    numbers = demotions(alone, criterion, ranked, markers)
    said = "; ".join(f"top {share:.0%} ({n['leads']:,} leads): holds back {n['demoted']:,}"
                     + (f", who converted at {n['demoted_rate']:.0%}" if n["demoted"] else "")
                     for share, n in numbers.items())
    ten, sql = numbers[0.10], _sql_rate(base)
    above = ten["demoted"] >= MIN_DEMOTED and ten["demoted_rate"] > sql
    costly = ten["lost"] > MAX_LOST * max(ten["conversions"], 1)
    if above or costly:
        why = (f"convert above the {sql:.0%} sales-qualified rate" if above else
               f"hold {ten['lost']} of the top 10%'s {ten['conversions']} conversions (more "
               f"than {MAX_LOST:.0%})")
        return [f"# {criterion}: left out after checking it against a model (a logistic "
                f"regression ranking the newest {len(ranked.p):,} leads): it would hold back "
                f"the model's best leads, who {why} ({said}). Uncomment it only if sales "
                "agree:",
                *(f"# {line}" if line else "" for line in lines)], False
    return [f"# checked against a model's ranking of the newest leads: {said}", *lines], True


def _budget_lines(history: History, numeric: list[str]) -> tuple[list[str], bool]:
    """The budget criterion: the numeric feature named like a budget, its median as min."""
    column = _pick(numeric, "budget")
    if column is None:
        return ["# budget: left out. No numeric feature is named like a budget "
                f"({NAMES['budget'].replace('|', ', ')}); numeric features: {numeric}.",
                ""], False
    stated = pd.to_numeric(history.features[column], errors="coerce").dropna()
    stated = stated[stated > 0]
    median = float(stated.median()) if len(stated) else 0.0
    minimum = float(f"{median:.2g}") if median else 0.0
    return [f"budget:                      # guessed from the column name '{column}'",
            f"  column: {_q(column)}",
            f"  min: {minimum:g}                   # the median stated value "
            f"({len(stated):,} leads state one)", ""], True


def _word_lines(criterion: str, history: History, words: list[str], markers, base: float
                ) -> tuple[list[str], bool]:
    """The authority or need criterion: the categorical or text feature named like it, its
    values by conversion rate (titles that can sign, for authority)."""
    y = history.target
    column = _pick(words, criterion)
    if column is None:
        return [f"# {criterion}: left out. No categorical or text feature is named like "
                f"it ({NAMES[criterion].replace('|', ', ')}); candidates: {words}.", ""], False
    rates = _rates(history.features[column], y, markers)
    trusted = rates[rates["leads"] >= MIN_LEADS]
    met = trusted[trusted["rate"] >= LIFT_MET * base].head(15)
    low = trusted[trusted["rate"] <= LIFT_LOW * base].head(15)
    titles = history.features[column].astype(str)
    patterns = criterion == "authority" and \
        titles.str.contains(TITLES_THAT_SIGN, case=False, regex=True).mean() >= 0.05
    if met.empty and not patterns:
        return [f"# {criterion}: left out. In '{column}' no value with at least "
                f"{MIN_LEADS} leads converts at {LIFT_MET}x the overall rate.", ""], False
    out = [f"{criterion + ':':<29}# guessed from the column name '{column}'; "
            "values by conversion rate", f"  column: {_q(column)}"]
    if patterns:
        out += ["  met:                       # titles that can sign",
                f"    - {_q(TITLES_THAT_SIGN)}",
                "  disqualify:",
                f"    - {_q(TITLES_THAT_CANNOT)}"]
    key = "met_values" if criterion == "authority" else "met"
    if not met.empty:
        out += _value_lines(key, met, base)
    if not low.empty:
        out += ["  # converting at most "
                f"{LIFT_LOW}x the overall rate; disqualify only if sales agree:"]
        out += ["  # " + line.strip() for line in
                _value_lines("disqualify_values" if criterion == "authority"
                             else "disqualify", low, base)]
    if criterion == "need":
        out += ["  otherwise: not_met          # other stated values"]
    out.append("")
    return out, True


def _timeline_lines(history: History, words: list[str], markers) -> tuple[list[str], bool]:
    """The timeline criterion, when its column holds phrases leadml reads as months."""
    column = _pick(words, "timeline")
    readable = 0.0
    if column is not None:
        distinct = history.features[column][~is_missing(history.features[column], markers)]
        distinct = distinct.astype(str).unique()
        readable = float(np.mean([timeline_months(v) is not None for v in distinct])) \
            if len(distinct) else 0.0
    if column is None or readable < 0.5:
        why = "no categorical or text feature is named like it" if column is None else \
            f"'{column}' holds few timeline phrases leadml reads ({readable:.0%} of values)"
        return [f"# timeline: left out; {why}.", ""], False
    return [f"timeline:                    # guessed from the column name '{column}'",
            f"  column: {_q(column)}", "  max_months: 6", "  disqualify_no_plans: true",
            ""], True


#: Column names that say a field describes the customer (fit) or what the lead did
#: (engagement); a CRM's names vary, so these are read as words, in any case.
FIT_WORDS = re.compile(r"industr|sector|vertical|company|employee|size|revenue|country|"
                       r"region|(?<![a-z])(city|state|role)(?![a-z])|title|seniority|"
                       r"department|budget|specializ|occupation|profile", re.IGNORECASE)
ENGAGEMENT_WORDS = re.compile(r"visit|view|open|click|download|form|meeting|call|email|"
                              r"webinar|demo|event|activity|page|time.?spent|session|"
                              r"engag|reply|response|last.?notable", re.IGNORECASE)


def axes_lines(fields: list[str]) -> list[str]:
    r"""The fit and engagement axes proposed from the model's field names, each with why; a
    commented suggestion when the names give one axis only.

    >>> print("\n".join(axes_lines(["industry", "web_visits", "channel"])))
    axes:                        # fit (who the lead is) and engagement (what it did)
      fit: ["industry"]  # names like industry, size, country, title, budget
      engagement: ["web_visits"]  # names like visits, opens, forms, meetings, activity
      # neither, reported as other fields: channel
      method: share               # cut on the model's test window: a quarter of its leads
      fit_grades: {A: 0.25, B: 0.25, C: 0.25}        # in each fit grade,
      engagement_levels: {1: 0.25, 2: 0.25, 3: 0.25}  # and each engagement level
    <BLANKLINE>
    """
    fit = [f for f in fields if FIT_WORDS.search(f) and not ENGAGEMENT_WORDS.search(f)]
    engaged = [f for f in fields if ENGAGEMENT_WORDS.search(f) and f not in fit]
    other = [f for f in fields if f not in fit and f not in engaged]
    lines = ["axes:                        # fit (who the lead is) and engagement (what it did)",
             f"  fit: [{', '.join(map(_q, fit))}]  # names like industry, size, country, "
             "title, budget",
             f"  engagement: [{', '.join(map(_q, engaged))}]  # names like visits, opens, "
             "forms, meetings, activity",
             *([f"  # neither, reported as other fields: {', '.join(other)}"] if other else []),
             "  method: share               # cut on the model's test window: a quarter of "
             "its leads",
             "  fit_grades: {A: 0.25, B: 0.25, C: 0.25}        # in each fit grade,",
             "  engagement_levels: {1: 0.25, 2: 0.25, 3: 0.25}  # and each engagement level",
             ""]
    if fit and engaged:
        return lines
    return ["# Fit and engagement axes: the field names suggest no "
            f"{'fit' if not fit else 'engagement'} field; name them yourself:",
            *[f"# {line}" for line in lines if line], ""]


def _policy_lines(base: float, configured: int) -> list[str]:
    """The label policy and grades, from the overall conversion rate."""
    floor = float(f"{base / 5:.2g}")
    sql = _sql_rate(base)
    return [
        "label_policy:                # precedence: disqualifier > low probability > SQL > "
        "nurture",
        "  sales_qualified:",
        f"    min_probability: {sql:g}        # twice the {base:.1%} overall rate",
        f"    min_criteria_met: {min(2, configured)}        # of the {configured} criteria "
        "configured above",
        "    # capacity_share: 0.1     # instead of min_probability: the best tenth of each "
        "run's leads (leadml plan --config ... shows what each capacity captures)",
        f"  disqualify_below_probability: {floor:g}  # a fifth of the overall rate",
        "",
        "grades:                      # shares of the model's newest window: A = top 10%",
        "  method: share",
        "  A: 0.10",
        "  B: 0.20",
        "  C: 0.30",
        "",
        "# output:                    # how the scored file reads (docs/configuration.md)",
        "#   carry: [company, owner]  # the export's own columns, copied after the lead id",
        "#   style: people            # a CSV in words: Sales-qualified, 69.5%, reasons in 255",
        "",
    ]
