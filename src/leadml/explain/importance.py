"""Which fields the model leans on, and how each field's values convert: for sales ops.

- :func:`permutation_importances`: how much ROC AUC the model loses on the test window when
  one raw field's values are shuffled across leads, with the spread over repeats. Fields are
  the raw input columns (a job title is one field, not forty word indicators).
- :func:`field_insights`: for each field, the conversion rate per value (or per quantile bin
  of a number) against the overall rate, with counts, over the whole labelled history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.config import Columns
from leadml.data.values import bin_of, field_values
from leadml.explain.effects import Explainer
from leadml.training.metrics import importance_sample

NOT_STATED = "(not stated)"
OTHER = "(other values)"
INSIGHT_BINS, INSIGHT_TOP = 5, 10  # a number's quantile bins; the most values shown per field


def permutation_importances(model, X: pd.DataFrame, y: np.ndarray, *, repeats: int = 5,
                            seed: int = 0, max_rows: int | None = None) -> pd.DataFrame:
    """Drop in ROC AUC when each raw field is shuffled, mean and spread over ``repeats``.

    The numbers of scikit-learn's ``permutation_importance`` (``random_state=seed``), to
    rounding: the same shuffles (:func:`shuffles`), but for a leadml model each shuffled
    field's probabilities come from one encoding of the leads and, per repeat, one walk
    of the trees or a swap of per-field parts (:meth:`leadml.explain.effects.Explainer.shuffled`),
    not from scoring the leads again for every field and repeat."""
    keep = importance_sample(len(y), seed, max_rows)  # (None: IMPORTANCE_LEADS)
    if keep is not None:
        X, y = X.iloc[keep], y[keep]
    drops = _shuffled_drops(model, X, y, repeats, seed)
    if drops is None:  # a model whose fields cannot be swapped: scikit-learn scores again
        from sklearn.inspection import permutation_importance  # 0.2 s to import: only here

        drops = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=repeats,
                                       random_state=seed, n_jobs=1).importances
    table = pd.DataFrame({"field": list(X.columns), "importance": drops.mean(axis=1),
                          "std": drops.std(axis=1), "low": drops.min(axis=1),
                          "high": drops.max(axis=1)})
    table = table.sort_values("importance", ascending=False, kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def shuffles(n: int, repeats: int, seed: int) -> list[np.ndarray]:
    """The orders of ``n`` leads that scikit-learn's ``permutation_importance`` with
    ``random_state=seed`` gives every column, one per repeat: in repeat ``r``, lead ``i``
    holds lead ``shuffles(...)[r][i]``'s value.

    >>> [order.tolist() for order in shuffles(5, 2, seed=0)]
    [[1, 0, 2, 3, 4], [4, 1, 3, 2, 0]]
    """
    seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
    rng, order, donor, out = np.random.RandomState(seed), np.arange(n), np.arange(n), []
    for _ in range(repeats):
        # As scikit-learn does: shuffle the last order again, and apply it to the column
        # as the last repeat left it.
        rng.shuffle(order)
        donor = donor[order]
        out.append(donor)
    return out


def _shuffled_drops(model, X: pd.DataFrame, y: np.ndarray, repeats: int, seed: int
                    ) -> np.ndarray | None:
    """(fields x repeats) drops in ROC AUC from :meth:`Explainer.shuffled`; None when the
    model's fields cannot be swapped that way."""
    from sklearn.metrics import roc_auc_score

    found = Explainer(model).shuffled(X, shuffles(len(y), repeats, seed))
    if found is None:
        return None
    p, repeated = found
    baseline = roc_auc_score(y, p)
    return np.array([[baseline - (roc_auc_score(y, probabilities[field])
                                  if field in probabilities else baseline)
                      for probabilities in repeated] for field in X.columns])


def _bin_labels(edges: np.ndarray) -> list[str]:
    def fmt(x: float) -> str:
        return f"{x:,.0f}" if abs(x) >= 10 or float(x).is_integer() else f"{x:,.2f}"

    return [f"{fmt(a)} to {fmt(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]


def field_counts(raw: pd.Series, y: np.ndarray, role: str, markers: tuple[str, ...], *,
                 bins: int = INSIGHT_BINS) -> tuple[pd.DataFrame, np.ndarray]:
    """One field's counts for :func:`insights_from_counts`, over the leads in ``raw`` (in
    time order) and their outcomes ``y``: per value (:func:`~leadml.data.values.
    field_values`; ``key`` None where missing) or per quantile bin of a number (``key`` the
    bin, -1 where missing), its leads, conversions and first lead (``first_time``, here its
    position), with the bins' edges. The Spark engine counts the same over a cluster
    (:func:`leadml.data.spark_counts.field_counts`)."""
    values = field_values(raw, role, markers)
    edges = np.array([])
    if role == "numeric":
        ok = ~np.isnan(values)
        if ok.any():
            edges = np.unique(np.quantile(values[ok], np.linspace(0, 1, bins + 1)))
        values = np.where(ok, bin_of(values, edges), -1)
    codes, keys = pd.factorize(values, use_na_sentinel=False)
    first = np.unique(codes, return_index=True)[1]  # codes count in order of appearance
    return pd.DataFrame({
        "key": keys, "leads": np.bincount(codes, minlength=len(keys)),
        "conversions": np.bincount(codes, weights=y, minlength=len(keys)).round().astype(int),
        "first_time": first.astype(float), "first_pos": np.zeros(len(keys), dtype=int)}), edges


def field_insights(features: pd.DataFrame, y: np.ndarray, columns: Columns,
                   missing_values: tuple[str, ...], *, bins: int = INSIGHT_BINS,
                   top: int = INSIGHT_TOP) -> pd.DataFrame:
    """Per field and value: leads, conversions, conversion rate and lift over the overall rate.

    >>> X = pd.DataFrame({"source": ["web", "web", "fair", ""]})
    >>> t = field_insights(X, np.array([1, 1, 0, 0]), Columns(categorical=("source",)), ("",))
    >>> t[["value", "leads", "conversion_rate", "lift"]].to_dict("records")[0]
    {'value': 'web', 'leads': 2, 'conversion_rate': 1.0, 'lift': 2.0}
    """
    counted = {field: field_counts(features[field], y, role, missing_values, bins=bins)
               for field, role in columns.roles.items()}
    return insights_from_counts(counted, columns, float(np.mean(y)), top=top)


def insights_from_counts(counted: dict, columns: Columns, overall: float, *,
                         top: int = INSIGHT_TOP) -> pd.DataFrame:
    """The field insights table from per-field counts: each value's or bin's leads,
    conversions and first lead in time order, and a number's bin edges, counted on one
    machine (:func:`field_counts`) or over a cluster
    (:func:`leadml.data.spark_counts.field_counts`). ``overall``: the conversion rate of
    every lead."""
    parts = []
    for field, role in columns.roles.items():
        frame, edges = counted[field]
        # one row per key, in the order the leads first show it (as a groupby of the leads)
        frame = frame.sort_values(["first_time", "first_pos"], kind="stable") \
            .groupby("key", sort=False, dropna=False) \
            .agg(leads=("leads", "sum"), conversions=("conversions", "sum")).reset_index()
        key = frame["key"]
        if role == "numeric":
            labels = _bin_labels(edges) if len(edges) >= 2 else \
                [f"{edges[0]:,.0f}"] if len(edges) == 1 else []
            value = [NOT_STATED if k < 0 else labels[int(k)] for k in key]
        else:
            stated = frame[key.notna()]
            common = pd.Series(stated["leads"].to_numpy(), index=stated["key"].to_numpy()) \
                .sort_values(ascending=False, kind="stable").index[:top]  # as value_counts()
            value = np.where(key.isna(), NOT_STATED,
                             np.where(key.isin(common), key, OTHER)).tolist()
        g = frame.assign(value=value).groupby("value", sort=False)
        counts = pd.DataFrame({"leads": g["leads"].sum(),
                               "conversions": g["conversions"].sum()}).reset_index()
        parts.append(_ordered(field, role, counts, overall))
    return _table(parts)


def _ordered(field: str, role: str, t: pd.DataFrame, overall: float) -> pd.DataFrame:
    """One field's rows (``value``, ``leads``, ``conversions``) with its rate and lift, in
    the order a reader scans them (bins by their start, values by their leads)."""
    t.insert(0, "field", field)
    t["conversion_rate"] = t["conversions"] / t["leads"]
    t["lift"] = t["conversion_rate"] / overall if overall else np.nan
    order = t["value"].isin([NOT_STATED, OTHER]).astype(int)  # those last
    if role == "numeric":
        first = t["value"].str.extract(r"^(-?[\d,.]+)")[0].str.replace(",", "")
        t = t.assign(_o=order, _k=pd.to_numeric(first, errors="coerce")) \
            .sort_values(["_o", "_k"], kind="stable")
    else:
        t = t.assign(_o=order, _k=-t["leads"]).sort_values(["_o", "_k"], kind="stable")
    return t.drop(columns=["_o", "_k"])


def _table(parts: list[pd.DataFrame]) -> pd.DataFrame:
    table = pd.concat(parts, ignore_index=True)
    table[["leads", "conversions"]] = table[["leads", "conversions"]].astype(int)
    return table


def importance_figure(table: pd.DataFrame):
    """Horizontal bars of the drop in ROC AUC per field, with the spread over repeats."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(t) + 1.2))
    ax.barh(t["field"], t["importance"], xerr=t["std"], color="#3b7dd8", ecolor="grey")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("drop in ranking quality (ROC AUC) when the field is shuffled")
    ax.set_title("Which fields the model leans on")
    fig.tight_layout()
    return fig
