"""The statistics monitoring reads: intervals for a realised rate (Wilson), population
stability (PSI) of the probabilities and of each input field against the model's reference,
and the reference itself, stored with the model at training."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.data.values import is_missing, parse_numbers
from leadml.training.metrics import Z95, wilson  # noqa: F401 (monitoring's; the report's too)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two distributions over the same bins.

    >>> round(psi(np.array([.5, .5]), np.array([.5, .5])), 6)
    0.0
    """
    e = np.clip(np.asarray(expected, float), 1e-4, None)
    a = np.clip(np.asarray(actual, float), 1e-4, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def cut_points(known: np.ndarray, bins: int = 10) -> list[float]:
    """Edges near the ``bins``-quantiles of ``known``, each halfway between two distinct
    values: tied values never straddle an edge, and a value rounded a little (a CSV's
    digits, another engine's arithmetic) stays on its side.

    >>> [round(e, 6) for e in cut_points(np.array([0.1] * 6 + [0.2, 0.3, 0.4, 0.5]), bins=5)]
    [0.15, 0.35]
    """
    values = np.unique(known)
    if len(values) < 2:
        return []
    q = np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])
    i = np.unique(np.searchsorted(values, q, side="right"))
    i = i[(i > 0) & (i < len(values))]
    return ((values[i - 1] + values[i]) / 2).tolist()


def numeric_reference(x: np.ndarray, bins: int = 10) -> dict:
    """A number's reference: edges (:func:`cut_points`), the share of leads in each bin
    with the share missing last, and the number of leads ``n`` it was measured on."""
    x = np.asarray(x, float)
    edges = cut_points(x[np.isfinite(x)], bins)
    return {"kind": "numeric", "edges": edges,
            "shares": (numeric_counts(x, edges) / max(len(x), 1)).tolist(), "n": len(x)}


def numeric_counts(x: np.ndarray, edges) -> np.ndarray:
    """Leads per bin of ``edges`` (the missing last)."""
    x = np.asarray(x, float)
    known = np.isfinite(x)
    counts = np.bincount(np.searchsorted(np.asarray(edges, float), x[known], side="right"),
                         minlength=len(edges) + 1).astype(float)
    return np.append(counts, (~known).sum())


def quantile_reference(quantiles) -> dict | None:
    """The score reference of a model saved before leadml stored one: its 101 stored
    percentiles (rounded to 6 digits) taken as the reference sample, tonight's
    probabilities rounded the same way (:func:`score_counts`), so that a tie at a
    percentile falls on the same side in both."""
    q = np.asarray(quantiles, float)
    if len(q) < 11:
        return None
    ref = numeric_reference(q)
    return {**ref, "n": None, "digits": 6}


def score_counts(p: np.ndarray, reference: dict) -> np.ndarray:
    """Leads per bin of the score reference (the missing bin dropped: a probability is
    always there)."""
    p = np.asarray(p, float)
    if reference.get("digits") is not None:
        p = np.round(p, reference["digits"])
    return numeric_counts(p, reference["edges"])[:-1]


def shares_psi(reference_shares, counts) -> float | None:
    """PSI of ``counts`` against the reference shares (None without leads)."""
    counts = np.asarray(counts, float)
    if counts.sum() == 0:
        return None
    return round(psi(np.asarray(reference_shares, float)[:len(counts)], counts / counts.sum()),
                 6)


MISSING = "(missing)"


OTHER = "(other)"


def field_reference(X: pd.DataFrame, numeric, categorical, missing_values, *, top: int = 20
                    ) -> dict:
    """What each field looked like in the newest leads a model was tested on, stored with
    the model for input drift: numbers by their deciles (edges and shares, missing apart),
    categories by the ``top`` commonest values' shares (the rest as one)."""

    out: dict = {}
    for col in numeric:
        x = parse_numbers(X[col], tuple(missing_values))[0].to_numpy(float)
        if np.isfinite(x).sum() < 20:
            continue
        out[col] = numeric_reference(x)
    for col in categorical:
        values = X[col].astype(object).where(~is_missing(X[col], tuple(missing_values)),
                                             MISSING).astype(str).str.strip()
        shares = values.value_counts(normalize=True)
        kept = shares.head(top)
        out[col] = {"kind": "categorical", "values": kept.index.tolist(),
                    "shares": [*kept.round(6).tolist(), round(float(1 - kept.sum()), 6)],
                    "n": len(values)}
    return out


def unseen_shares(X: pd.DataFrame, categories: dict[str, set[str]], missing_values
                  ) -> dict[str, float]:
    """The share of each categorical field's values in ``X`` (stated, not empty) that
    training never saw: a model tested on leads with new values meets them at that rate
    every night, which is no change.

    >>> unseen_shares(pd.DataFrame({"c": ["a", "b", "z", ""]}), {"c": {"a", "b"}}, ("",))
    {'c': 0.25}
    """
    out = {}
    for col, known in categories.items():
        if col not in X.columns or len(X) == 0:
            continue
        values = X[col].astype(object)
        stated = ~is_missing(values, tuple(missing_values))
        new = stated & ~values.astype(str).str.strip().isin(known)
        out[col] = round(float(new.mean()), 6)
    return out


def reference_missing_share(reference: dict) -> float:
    """The share of the model's newest training leads missing a field, from its
    :func:`field_reference` (a category below the commonest kept: at most the least
    common kept share).

    >>> reference_missing_share({"kind": "numeric", "edges": [1.0], "shares": [0.5, 0.3, 0.2]})
    0.2
    >>> reference_missing_share({"kind": "categorical", "values": ["a", "(missing)"],
    ...                          "shares": [0.9, 0.1, 0.0]})
    0.1
    """
    shares = reference["shares"]
    if reference["kind"] == "numeric":
        return float(shares[-1])
    values = reference["values"]
    if MISSING in values:
        return float(shares[values.index(MISSING)])
    return float(min(shares[:len(values)], default=0.0)) if shares[-1] > 0 else 0.0


def field_bins(X: pd.DataFrame, reference: dict, missing_values, *, decimal: str = ".",
               thousands: str | None = None) -> dict[str, list[int]]:
    """Leads per bin of each field of ``X`` (leads as read; numbers with the ``decimal``
    and ``thousands`` marks) in the model's reference bins: numbers by its edges (the
    missing last), categories by its kept values (the rest last)."""

    out = {}
    for col, ref in reference.items():
        if col not in X.columns or len(X) == 0:
            continue
        if ref["kind"] == "numeric":
            x = parse_numbers(X[col], tuple(missing_values), decimal=decimal,
                              thousands=thousands)[0].to_numpy(float)
            counts = numeric_counts(x, ref["edges"])
        else:
            values = X[col].astype(object).where(~is_missing(X[col], tuple(missing_values)),
                                                 MISSING).astype(str).str.strip()
            found = values.value_counts()
            kept = [int(found.get(v, 0)) for v in ref["values"]]
            counts = np.array([*kept, len(values) - sum(kept)])
        out[col] = [int(c) for c in counts]
    return out


def field_psi(X: pd.DataFrame, reference: dict, missing_values, **marks) -> dict[str, float]:
    """PSI of each field of ``X`` against the model's reference (:func:`field_bins`)."""
    return {col: shares_psi(reference[col]["shares"], counts)
            for col, counts in field_bins(X, reference, missing_values, **marks).items()}
