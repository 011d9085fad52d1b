"""Capacity and value in the label policy: expected value, and the best leads a team can work.

A sales team works as many leads as it has people for. With ``capacity`` (leads per scoring
run) or ``capacity_share`` (a share of the run's scored leads) in
``label_policy.sales_qualified``, the leads that pass every other test of the policy
(:func:`leadml.rules.bant.label`) are ranked by probability or expected value, and only the best
``capacity`` stay ``sales_qualified``; the rest become ``nurture`` and say why. Ties are
broken by lead id, ascending, so the local and Spark engines pick the same leads.

The cut-off needs the whole run, so it is found after every row is scored: the engines
collect the ranking key and id of each candidate (:class:`Candidates`), find the last lead
inside the capacity (:func:`cutoff`), and relabel the rest (:func:`inside`). Pure
functions; no IO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadml.config import SalesQualified, Value


def expected_value(probability: np.ndarray, values: np.ndarray | None, value: Value
                   ) -> np.ndarray:
    """``probability x value - cost_per_contact``; ``values`` holds each lead's deal value
    (NaN where not stated), or is None when the rules give only ``value.default``. NaN where
    neither a value nor a default is known.

    >>> expected_value(np.array([0.1, 0.5]), np.array([1000.0, np.nan]),
    ...                Value(column="deal", default=200, cost_per_contact=10)).tolist()
    [90.0, 90.0]
    """
    p = np.asarray(probability, dtype=float)
    v = np.full(len(p), np.nan) if values is None else np.asarray(values, dtype=float).copy()
    if value.default is not None:
        v[np.isnan(v)] = value.default
    return p * v - value.cost_per_contact


def limit(policy: SalesQualified, scored: int) -> int | None:
    """How many leads of a run with ``scored`` leads may be sales-qualified (None: no cap).

    >>> limit(SalesQualified(capacity_share=0.1), 1234), limit(SalesQualified(capacity=50), 9)
    (123, 50)
    """
    if policy.capacity is not None:
        return policy.capacity
    if policy.capacity_share is not None:
        return math.floor(policy.capacity_share * scored + 1e-9)
    return None


def rank_keys(policy: SalesQualified, probability: np.ndarray,
              expected: np.ndarray | None) -> np.ndarray:
    """What capacity ranks by: the probability, or the expected value."""
    return np.asarray(expected if policy.rank_by == "expected_value" else probability,
                      dtype=float)


@dataclass(frozen=True)
class Cutoff:
    """The last lead inside the capacity: a lead is inside when its key is higher, or equal
    with a lead id that sorts no later. ``None`` key: everyone is inside."""

    key: float | None
    lead_id: str | None
    limit: int
    candidates: int

    @property
    def filled(self) -> int:
        return min(self.limit, self.candidates)


def cutoff(keys: np.ndarray, ids: np.ndarray, k: int) -> Cutoff:
    """The ``k``-th best of the candidates by (key descending, lead id ascending).

    >>> c = cutoff(np.array([.2, .9, .5, .5]), np.array(["d", "a", "c", "b"]), 3)
    >>> (c.key, c.lead_id)
    (0.5, 'c')
    >>> inside(np.array([.2, .9, .5, .5]), np.array(["d", "a", "c", "b"]), c).tolist()
    [False, True, True, True]
    """
    n = len(keys)
    found = unranked_cutoff(k, n)
    if found is not None:
        return found
    order = pd.DataFrame({"key": keys, "id": ids}).sort_values(
        ["key", "id"], ascending=[False, True], kind="mergesort")
    last = order.iloc[k - 1]
    return Cutoff(float(last["key"]), str(last["id"]), k, n)


def unranked_cutoff(k: int, n: int) -> Cutoff | None:
    """The cut-off when no ranking is needed: every one of ``n`` candidates fits in ``k``,
    or ``k`` is 0; None otherwise. Both engines start here."""
    if k >= n:
        return Cutoff(None, None, k, n)
    if k == 0:
        return Cutoff(math.inf, "", 0, n)
    return None


def inside(keys: np.ndarray, ids: np.ndarray, cut: Cutoff) -> np.ndarray:
    """True for candidates inside the capacity."""
    keys = np.asarray(keys, dtype=float)
    if cut.key is None:
        return np.ones(len(keys), bool)
    ids = np.asarray(ids, dtype=object)
    return (keys > cut.key) | ((keys == cut.key) & (ids <= cut.lead_id))


def note(k: int, policy: SalesQualified) -> str:
    """The reason a qualified lead beyond the capacity gives."""
    by = "expected value" if policy.rank_by == "expected_value" else "probability"
    return f"Qualified, but not among the {k:,} best leads by {by} this run can staff"


@dataclass
class Candidates:
    """The leads a run would label sales-qualified before the capacity: their key, id and
    (local engine) their row in the output file, collected chunk by chunk."""

    keys: list = field(default_factory=list)
    ids: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    probability: list = field(default_factory=list)
    expected: list = field(default_factory=list)

    def add(self, result: pd.DataFrame, policy: SalesQualified, first_row: int) -> None:
        mask = (result["label"] == "sales_qualified").to_numpy()
        if not mask.any():
            return
        p = result["conversion_probability"].to_numpy(dtype=float)[mask]
        ev = result["expected_value"].to_numpy(dtype=float)[mask] \
            if "expected_value" in result else None
        self.keys.append(rank_keys(policy, p, ev))
        self.ids.append(result["lead_id"].to_numpy(dtype=object)[mask])
        self.rows.append(first_row + np.flatnonzero(mask))
        self.probability.append(p)
        self.expected.append(ev if ev is not None else np.zeros(len(p)))

    def arrays(self) -> tuple[np.ndarray, ...]:
        def cat(parts, dtype):
            return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

        return (cat(self.keys, float), cat(self.ids, object), cat(self.rows, np.int64),
                cat(self.probability, float), cat(self.expected, float))
