"""The statistics monitoring reads: intervals for a realised rate (Wilson), population
stability (PSI) of the probabilities and of each input field against the model's reference,
and the reference itself, stored with the model at training."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leadml.data.values import is_missing, parse_numbers

Z95 = 1.959964


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a rate of ``k`` in ``n``.

    >>> [round(x, 3) for x in wilson(30, 100)]
    [0.219, 0.396]
    """
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two distributions over the same bins.

    >>> round(psi(np.array([.5, .5]), np.array([.5, .5])), 6)
    0.0
    """
    e = np.clip(np.asarray(expected, float), 1e-4, None)
    a = np.clip(np.asarray(actual, float), 1e-4, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def score_psi(p: np.ndarray, reference_quantiles, bins: int = 10) -> float | None:
    """PSI of probabilities against the model's reference probabilities, over the
    ``bins`` equal-mass bins of the reference (its deciles, the usual PSI).

    ``reference_quantiles``: evenly spaced quantiles (0 to 1) of the reference."""
    q = np.asarray(reference_quantiles, float)
    if len(q) < bins + 1 or len(p) == 0:
        return None
    levels = np.linspace(0, 1, len(q))
    edges = np.interp(np.linspace(0, 1, bins + 1), levels, q)[1:-1]
    if len(np.unique(edges)) < len(edges):  # many tied probabilities: too coarse to bin
        return None
    counts = np.bincount(np.searchsorted(edges, p, side="right"), minlength=bins)
    return psi(np.full(bins, 1 / bins), counts / counts.sum())


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
        known = x[np.isfinite(x)]
        if len(known) < 20:
            continue
        edges = np.unique(np.quantile(known, np.linspace(0, 1, 11))[1:-1]).tolist()
        out[col] = {"kind": "numeric", "edges": edges,
                    "shares": _numeric_shares(x, edges).tolist()}
    for col in categorical:
        values = X[col].astype(object).where(~is_missing(X[col], tuple(missing_values)),
                                             MISSING).astype(str).str.strip()
        shares = values.value_counts(normalize=True)
        kept = shares.head(top)
        out[col] = {"kind": "categorical", "values": kept.index.tolist(),
                    "shares": [*kept.round(6).tolist(), round(float(1 - kept.sum()), 6)]}
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


def _numeric_shares(x: np.ndarray, edges) -> np.ndarray:
    known = np.isfinite(x)
    counts = np.bincount(np.searchsorted(np.asarray(edges), x[known], side="right"),
                         minlength=len(edges) + 1).astype(float)
    return np.append(counts, (~known).sum()) / max(len(x), 1)


def field_psi(X: pd.DataFrame, reference: dict, missing_values, *, decimal: str = ".",
              thousands: str | None = None) -> dict[str, float]:
    """PSI of each field of ``X`` (leads as read; numbers with the ``decimal`` and
    ``thousands`` marks) against the model's reference."""

    out = {}
    for col, ref in reference.items():
        if col not in X.columns or len(X) == 0:
            continue
        if ref["kind"] == "numeric":
            x = parse_numbers(X[col], tuple(missing_values), decimal=decimal,
                              thousands=thousands)[0].to_numpy(float)
            actual = _numeric_shares(x, ref["edges"])
        else:
            values = X[col].astype(object).where(~is_missing(X[col], tuple(missing_values)),
                                                 MISSING).astype(str).str.strip()
            shares = values.value_counts(normalize=True)
            kept = [float(shares.get(v, 0.0)) for v in ref["values"]]
            actual = np.array([*kept, max(0.0, 1 - sum(kept))])
        out[col] = round(psi(np.asarray(ref["shares"], float), actual), 6)
    return out
