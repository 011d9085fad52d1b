"""The transformers of a leadml pipeline, from a lead file as read to numbers.

:class:`LeadCleaner` makes the pipeline accept a lead file as read (strings, CRM
placeholders such as ``Select``), so the saved model needs no separate preprocessing;
:class:`PerDistinct` encodes each distinct value once; :class:`SignedLog` tames numbers that
span orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from sklearn.utils.validation import check_is_fitted

from leadml.data.values import plain_numbers
from leadml.model.sklearn_compat import output_widths


class LeadCleaner(TransformerMixin, BaseEstimator):
    """Select the feature columns and give each its type.

    Placeholders in ``missing_values`` become missing, numeric columns become floats,
    categorical and text columns become trimmed strings (text: empty when missing).
    Values that cannot be read as numbers become missing here; ``leadml.data.schema``
    rejects such rows before they reach a model, so this only guards direct use.

    Examples
    --------
    >>> raw = pd.DataFrame({"budget": ["100", "Select"], "industry": [" retail", "-"]})
    >>> LeadCleaner(numeric=("budget",), categorical=("industry",),
    ...             missing_values=("Select", "-")).fit_transform(raw)
       budget industry
    0   100.0   retail
    1     NaN      NaN
    """

    def __init__(
        self,
        *,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        text: Sequence[str] = (),
        missing_values: Sequence[str] = ("",),
        decimal: str = ".",
        thousands: str | None = None,
    ):
        self.numeric = numeric
        self.categorical = categorical
        self.text = text
        self.missing_values = missing_values
        self.decimal = decimal
        self.thousands = thousands

    def __setstate__(self, state: dict) -> None:
        state.setdefault("decimal", ".")  # a model saved before the options
        state.setdefault("thousands", None)
        super().__setstate__(state)

    def fit(self, X: pd.DataFrame, y=None) -> LeadCleaner:
        self.feature_names_in_ = np.array(
            [*self.numeric, *self.categorical, *self.text], dtype=object
        )
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"lead data is missing columns {missing} that the model uses")
        return pd.DataFrame({col: self.clean_column(col, X[col])
                             for col in self.feature_names_in_}, index=X.index)

    def clean_column(self, col: str, values: pd.Series) -> pd.Series:
        """Column ``col`` of the output from its raw ``values``: each column is cleaned on
        its own, so a column's distinct values can be cleaned without the others."""
        markers = set(self.missing_values)
        if col in self.numeric:
            if values.dtype.kind not in "iufb":  # text: each distinct value read once
                codes, uniques = pd.factorize(values, use_na_sentinel=True)
                text = pd.Series(uniques, dtype=object)
                read = plain_numbers(text, self.decimal, self.thousands)
                numbers = pd.to_numeric(read.where(~text.isin(markers), np.nan),
                                        errors="coerce").astype("float64").to_numpy()
                values = pd.Series(np.append(numbers, np.nan)[codes], index=values.index)
            values = values.astype("float64")
            return values.where(np.isfinite(values), np.nan)
        # Each distinct value is cleaned once: a million leads repeat a few thousand.
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        text = pd.Series(uniques, dtype=object).astype(str).str.strip()
        clean = text.astype("object").where(~text.isin(markers).to_numpy(), np.nan)
        missing = "" if col in self.text else np.nan
        table = np.append(clean.to_numpy(dtype=object), missing)  # code -1: missing
        if col in self.text:
            table[pd.isna(table)] = ""
        return pd.Series(table[codes], index=values.index, dtype=object)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        return self.feature_names_in_.copy()


class PerDistinct(TransformerMixin, BaseEstimator):
    """Apply a fitted column-wise ``transformer`` to each column's distinct values once and
    map every row to its value's output: the same numbers, for a fraction of the work when
    values repeat (a few thousand industries and titles across a million leads).

    ``transformer``: a ``OneHotEncoder`` or ``OrdinalEncoder`` (one or more columns, each
    encoded on its own) or a text vectorizer (one column). Fitting fits it as it is.

    Examples
    --------
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> X = pd.DataFrame({"a": ["x", "y", "x", "x"], "b": ["u", "u", "v", "u"]})
    >>> enc = PerDistinct(OneHotEncoder(sparse_output=False)).fit(X)
    >>> (enc.transform(X) == enc.transformer_.transform(X)).all()
    np.True_
    """

    def __init__(self, transformer=None):
        self.transformer = transformer

    def fit(self, X, y=None) -> PerDistinct:
        if isinstance(self.transformer, CountVectorizer):
            self.transformer_ = fit_vectorizer(self.transformer, X)
        else:
            rows = fitting_rows(self.transformer, X)
            self.transformer_ = clone(self.transformer).fit(X if rows is None else rows, y)
        self.n_features_in_ = getattr(self.transformer_, "n_features_in_", 1)
        if hasattr(self.transformer_, "feature_names_in_"):
            self.feature_names_in_ = self.transformer_.feature_names_in_
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # the encoders read a missing value as a category
        return tags

    def transform(self, X):
        check_is_fitted(self)
        found = self.distinct(X)
        if found is None:
            return self.transformer_.transform(X)  # its own errors and edge cases
        codes, encoded, widths = found
        if len(codes) == 1 and widths is None:  # text: a sparse row per distinct value
            return encoded[codes[0]]
        out = np.empty((len(codes[0]), encoded.shape[1]), dtype=encoded.dtype)
        start = 0
        for rows, width in zip(codes, widths, strict=True):
            out[:, start:start + width] = encoded[:, start:start + width][rows]
            start += width
        return out

    def distinct(self, X):
        """``(codes, encoded, widths)``: for each input column the code of every row's value
        (no missing code: a missing value is a value), the transformer's output for the
        distinct values (row ``k`` holds each column's ``k``-th distinct value, shorter
        columns repeating their last) and how many output columns each input column owns
        (None for text: one column, output sparse). None where the transformer is better
        left to itself (no rows or no columns)."""
        if not isinstance(self.transformer_, OneHotEncoder | OrdinalEncoder):  # text
            codes, uniques = pd.factorize(pd.Series(X), use_na_sentinel=False)
            return [codes], self.encode_rows(pd.Series(uniques, dtype=object)), None
        if not isinstance(X, pd.DataFrame):
            X = np.asarray(X)
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X) if X.ndim == 2 else None
        if frame is None or frame.shape[1] == 0 or len(frame) == 0:
            return None
        found = [pd.factorize(frame.iloc[:, j], use_na_sentinel=False)
                 for j in range(frame.shape[1])]
        rows = distinct_rows(frame, [u for _, u in found])
        encoded = self.encode_rows(rows if isinstance(X, pd.DataFrame) else rows.to_numpy())
        return [c for c, _ in found], encoded, self.widths(len(found))

    def encode_rows(self, rows):
        """The transformer's output for ``rows`` (distinct values, as :meth:`distinct` pads
        them): dense for the encoders, sparse for text."""
        encoded = self.transformer_.transform(rows)
        if not isinstance(self.transformer_, OneHotEncoder | OrdinalEncoder):
            return encoded
        return encoded.toarray() if hasattr(encoded, "toarray") else np.asarray(encoded)

    def widths(self, n_columns: int) -> list[int] | None:
        """How many output columns each of ``n_columns`` input columns owns (None for text:
        one input column)."""
        if not isinstance(self.transformer_, OneHotEncoder | OrdinalEncoder):
            return None

        return output_widths(self.transformer_, n_columns)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        return self.transformer_.get_feature_names_out(input_features)


def fitting_rows(encoder, X) -> pd.DataFrame | None:
    """Rows of ``X`` from which ``encoder`` (a ``OneHotEncoder`` or ``OrdinalEncoder``) learns
    exactly what it learns from ``X``, far fewer when values repeat; None where no such
    subset is known (the encoder is then fitted on ``X``).

    Such an encoder learns from the counts only whether each value reaches
    ``min_frequency`` (an integer), and, when a column has more such values than
    ``max_categories`` allows, which are the most frequent. So each value keeps
    ``min(count, min_frequency)`` of its rows (1 when ``min_frequency`` is None), and the
    shorter columns are padded with more rows of a value already frequent: every value is
    as frequent or infrequent as in ``X``, and the categories are the same. Where
    ``max_categories`` would cut a column, the counts' order matters and ``X`` is used.
    A million leads keep a few thousand rows: fitting the encoders was 40% of a training's
    fits at 300,000 leads.

    >>> from sklearn.preprocessing import OneHotEncoder
    >>> X = pd.DataFrame({"a": ["x"] * 50 + ["y"] * 3})
    >>> enc = OneHotEncoder(min_frequency=5, handle_unknown="infrequent_if_exist")
    >>> len(fitting_rows(enc, X)), enc.fit(fitting_rows(enc, X)).infrequent_categories_
    (8, [array(['y'], dtype=object)])
    """
    import numbers

    if not isinstance(encoder, OneHotEncoder | OrdinalEncoder) or not isinstance(
            X, pd.DataFrame) or len(X) == 0 or X.shape[1] == 0:
        return None
    cap = encoder.min_frequency
    if isinstance(cap, bool) or not (cap is None or isinstance(cap, numbers.Integral)) \
            or not isinstance(encoder.categories, str) \
            or getattr(encoder, "drop", None) is not None:
        return None
    cap = max(1, int(cap or 1))
    kept, top = [], []
    for j in range(X.shape[1]):
        column = X.iloc[:, j]
        if column.dtype == object and any(
                v is None for v in column.to_numpy()[column.isna().to_numpy()]):
            return None  # None and NaN are one value to factorize, two to an encoder
        codes, _ = pd.factorize(column, use_na_sentinel=False)
        counts = np.bincount(codes)
        frequent = int((counts >= cap).sum())
        if frequent == 0 or (encoder.max_categories is not None
                              and encoder.max_categories < frequent + 1):
            return None
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(len(codes)) - starts[codes[order]]
        kept.append(order[rank < cap])
        top.append(order[starts[int(np.argmax(counts))]])  # a row of its most frequent value
    length = max(len(k) for k in kept)
    if length * 2 > len(X):
        return None  # hardly fewer: not worth a copy
    return pd.DataFrame({
        X.columns[j]: X.iloc[np.concatenate([k, np.full(length - len(k), t)]), j]
        .reset_index(drop=True) for j, (k, t) in enumerate(zip(kept, top, strict=True))})


def fit_vectorizer(vectorizer: CountVectorizer, documents) -> CountVectorizer:
    """``clone(vectorizer).fit(documents)``, each distinct document analysed once.

    The vocabulary a ``CountVectorizer`` learns depends on each term's document frequency
    and total count; both are sums over the distinct documents weighted by how often each
    occurs. So the terms are read from the distinct documents, their frequencies summed
    with those weights, and scikit-learn's pruning (``min_df``, ``max_df``,
    ``max_features``, ``CountVectorizer._limit_features``) applied to the same numbers in
    the same order: the same vocabulary. A million titles hold a few thousand distinct
    ones. Falls back to the plain fit where it would raise (no terms left)."""
    from numbers import Integral

    fitted = clone(vectorizer)
    docs = pd.Series(documents, dtype=object) if not isinstance(documents, pd.Series) \
        else documents.astype(object)
    codes, uniques = pd.factorize(docs, use_na_sentinel=False)
    if vectorizer.vocabulary is not None or len(uniques) * 2 > len(docs) or any(
            not isinstance(u, str) for u in uniques):
        return fitted.fit(documents)
    weights = np.bincount(codes).astype(np.float64)
    every = clone(vectorizer).set_params(min_df=1, max_df=1.0, max_features=None)
    try:
        D = every.fit_transform(list(uniques)).tocsc()
    except ValueError:  # no term at all: the plain fit says so in its own words
        return fitted.fit(documents)
    terms = sorted(every.vocabulary_, key=every.vocabulary_.get)
    order = np.array(sorted(range(len(terms)), key=terms.__getitem__), dtype=np.int64)
    present = D.copy()
    present.data[:] = 1
    dfs = (weights @ present).ravel()[order]
    tfs = dfs if vectorizer.binary else (weights @ D).ravel()[order]
    n_doc = len(docs)
    high = vectorizer.max_df if isinstance(vectorizer.max_df, Integral) \
        else vectorizer.max_df * n_doc
    low = vectorizer.min_df if isinstance(vectorizer.min_df, Integral) \
        else vectorizer.min_df * n_doc
    if high < low:
        return fitted.fit(documents)
    mask = (dfs <= high) & (dfs >= low)
    limit = vectorizer.max_features
    if limit is not None and mask.sum() > limit:
        chosen = (-tfs[mask]).argsort()[:limit]
        keep = np.zeros(len(dfs), dtype=bool)
        keep[np.where(mask)[0][chosen]] = True
        mask = keep
    if not mask.any():
        return fitted.fit(documents)
    kept = [terms[i] for i in order[mask]]  # in sorted order
    index = np.arange(len(kept))
    fitted.vocabulary_ = {t: (int(i) if limit is None else np.int64(i))
                          for t, i in zip(kept, index, strict=True)}
    fitted.fixed_vocabulary_ = False
    return fitted


def distinct_rows(frame: pd.DataFrame, uniques: list | None = None) -> pd.DataFrame:
    """Each column's distinct values (a missing value is one), one row per distinct value of
    the longest column, shorter columns repeating their last: the same set of values per
    column as ``frame``, for anything that depends on which values occur, not how often.
    ``uniques``: each column's distinct values when already found.

    >>> distinct_rows(pd.DataFrame({"a": ["x", "y", "x"], "b": ["u", "u", "u"]}))
       a  b
    0  x  u
    1  y  u
    """
    if uniques is None:
        uniques = [pd.unique(frame.iloc[:, j]) for j in range(frame.shape[1])]
    return padded({col: pd.Series(u, dtype=frame.iloc[:, j].dtype)
                   for j, (col, u) in enumerate(zip(frame.columns, uniques, strict=True))})


def padded(columns: dict[str, pd.Series]) -> pd.DataFrame:
    """Columns of different lengths as one frame, a row per value of the longest, the
    shorter repeating their last value."""
    rows = max((len(v) for v in columns.values()), default=0)
    return pd.DataFrame({c: v.take(np.minimum(np.arange(rows), len(v) - 1)).to_numpy()
                         for c, v in columns.items()})


class SignedLog(TransformerMixin, BaseEstimator):
    """``sign(x) * log1p(|x|)``: tames budgets and counts spanning orders of magnitude."""

    def fit(self, X, y=None) -> SignedLog:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return np.sign(X) * np.log1p(np.abs(X))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)
