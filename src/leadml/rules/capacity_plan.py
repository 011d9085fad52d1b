"""How many leads to hand to sales: a capacity plan from the model's test window.

For each capacity (a share of the leads of a run), the leads the capacity policy would make
sales-qualified on the test window (the newest leads, never seen in training), and what
they did: conversions captured against the capacity (the gain curve), the probability that
fills the capacity, the qualification rate, the conversion sales-qualified leads can
expect, and the rules lines that set it. The capacity replaces ``min_probability``; every
other test of the label policy (disqualifiers, the probability floor, the BANT minimum,
``min_expected_value``) still applies. Pure functions; the job is
:func:`leadml.jobs.plan`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leadml.config import LabelPolicy
from leadml.rules import capacity


def capacity_policy(policy: LabelPolicy) -> LabelPolicy:
    """``policy`` with the capacity in charge: no ``min_probability``, no capacity yet
    (the plan applies each capacity itself)."""
    sq = policy.sales_qualified.model_copy(update={
        "min_probability": None, "capacity": None, "capacity_share": 1.0})
    return policy.model_copy(update={"sales_qualified": sq})


def selected(keys: np.ndarray, ids: np.ndarray, eligible: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best eligible leads by key (ties by id), as :mod:`leadml.rules.capacity` picks
    them in a scoring run."""
    out = np.zeros(len(keys), bool)
    where = np.flatnonzero(eligible)
    cut = capacity.cutoff(keys[where], ids[where], k)
    out[where] = capacity.inside(keys[where], ids[where], cut)
    return out


def plan_table(y: np.ndarray, p: np.ndarray, ids: np.ndarray, eligible: np.ndarray,
               shares, *, keys: np.ndarray | None = None,
               oracle: np.ndarray | None = None) -> pd.DataFrame:
    """One row per capacity share: what the capacity policy would have done on these leads.

    ``keys`` is what capacity ranks by (default ``p``); ``oracle``, when the data carry the
    true probability of each lead (generated data), ranks the same eligible leads by it,
    for comparison.

    >>> t = plan_table(np.array([1, 0, 1, 0]), np.array([.9, .6, .4, .1]),
    ...                np.array(list("abcd")), np.ones(4, bool), [0.5])
    >>> t[["capacity", "conversions_captured", "share_of_conversions"]].values.tolist()
    [[2.0, 1.0, 0.5]]
    """
    y, p = np.asarray(y, int), np.asarray(p, float)
    keys = p if keys is None else np.asarray(keys, float)
    n, total = len(y), int(y.sum())
    rows = []
    for share in shares:
        k = math.floor(share * n + 1e-9)
        pick = selected(keys, ids, eligible, k)
        worked = int(pick.sum())
        rest = eligible & ~pick
        row = {
            "capacity_share": share,
            "capacity": k,
            "eligible": int(eligible.sum()),
            "sales_qualified": worked,
            "qualification_rate": worked / n if n else float("nan"),
            "probability_cutoff": float(p[pick].min()) if worked else float("nan"),
            "expected_conversions": float(p[pick].sum()),
            "conversions_captured": int(y[pick].sum()),
            "share_of_conversions": y[pick].sum() / total if total else float("nan"),
            "sql_conversion_rate": float(y[pick].mean()) if worked else float("nan"),
            "expected_sql_conversion_rate": float(p[pick].mean()) if worked else float("nan"),
            "nurture_conversion_rate": float(y[rest].mean()) if rest.any() else float("nan"),
        }
        if oracle is not None:
            best = selected(np.asarray(oracle, float), ids, eligible, k)
            row["oracle_conversions"] = int(y[best].sum())
            row["of_oracle"] = row["conversions_captured"] / row["oracle_conversions"] \
                if row["oracle_conversions"] else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def gain_curve(y: np.ndarray, keys: np.ndarray, points: int = 101) -> pd.DataFrame:
    """Share of conversions captured when working the best ``share`` of leads first.

    >>> gain_curve(np.array([1, 0, 1, 0]), np.array([.9, .6, .4, .1]), 3).values.tolist()
    [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]
    """
    y = np.asarray(y, float)
    order = np.argsort(-np.asarray(keys, float), kind="stable")
    captured = np.concatenate([[0.0], np.cumsum(y[order])]) / max(y.sum(), 1)
    share = np.linspace(0, 1, points)
    return pd.DataFrame({"share_of_leads": share,
                         "share_of_conversions": captured[np.rint(share * len(y)).astype(int)]})


def gain_figure(y: np.ndarray, keys: np.ndarray, shares, *, oracle: np.ndarray | None = None,
                policy_points: pd.DataFrame | None = None):
    """The gain chart with a line at each capacity (and, from :func:`plan_table`, what the
    capacity policy with the BANT rules captured there)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    g = gain_curve(y, keys)
    ax.plot(g["share_of_leads"], g["share_of_conversions"], c="#3b7dd8",
            label="best leads first (model)")
    if oracle is not None:
        o = gain_curve(y, oracle)
        ax.plot(o["share_of_leads"], o["share_of_conversions"], c="#2a9d5c", ls=":",
                label="true probability (generated data)")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", label="leads in random order")
    if policy_points is not None:
        ax.plot(policy_points["capacity_share"], policy_points["share_of_conversions"], "o",
                c="#d1495b", label="capacity policy with the BANT rules")
    for share in shares:
        ax.axvline(share, c="#d1495b", lw=1)
        ax.text(share, 0.03, f" capacity {share:.0%}", rotation=90, color="#d1495b",
                va="bottom", fontsize=8)
    ax.set(xlabel="share of leads worked", ylabel="share of conversions captured",
           xlim=(0, 1), ylim=(0, 1), title="Conversions captured against capacity")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def rules_lines(row: pd.Series, policy: LabelPolicy) -> str:
    """The ``label_policy`` lines that set this capacity, to paste into the rules file."""
    sq = policy.sales_qualified
    lines = [
        "label_policy:",
        "  sales_qualified:",
        f"    capacity_share: {row['capacity_share']:g}"
        f"  # {row['qualification_rate']:.1%} of the test window's leads",
        f"    min_criteria_met: {sq.min_criteria_met}",
    ]
    if sq.min_expected_value is not None:
        lines.append(f"    min_expected_value: {sq.min_expected_value:g}")
    if sq.rank_by != "probability":
        lines.append(f"    rank_by: {sq.rank_by}")
    if policy.disqualify_below_probability is not None:
        lines.append(f"  disqualify_below_probability: {policy.disqualify_below_probability:g}")
    if not math.isnan(row["probability_cutoff"]):
        lines.insert(3, f"    # or, instead, the fixed cut-off that filled it on the test "
                        f"window:\n    # min_probability: {row['probability_cutoff']:.3f}")
    return "\n".join(lines)
