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
from sklearn.base import BaseEstimator, TransformerMixin
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
        from sklearn.base import clone

        self.transformer_ = clone(self.transformer).fit(X, y)
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
