"""The one factory of unfitted pipelines, from raw lead columns to a probability.

The first step, :class:`LeadCleaner`, makes the pipeline accept a lead file as read
(strings, CRM placeholders such as ``Select``), so the saved model needs no separate
preprocessing: ``model.predict_proba(raw_leads)`` is the whole contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from leadml.config import Columns, ModelConfig
from leadml.model import encoded, linear
from leadml.model.encoders import LeadCleaner, PerDistinct, SignedLog
from leadml.model.sklearn_compat import is_binary_hist_gradient_boosting


def _text_vectorizer(cfg: ModelConfig) -> CountVectorizer:
    # Word tokens, single letters kept: "V.P." gives "v" and "p", "VP" gives "vp" and "Vice
    # President" gives "vice" and "president", each a feature of its own (the BANT rules,
    # not the model, read "V.P." as "VP"); binary because a title says a word once.
    return CountVectorizer(
        binary=True,
        lowercase=True,
        token_pattern=r"(?u)\b\w+\b",
        max_features=cfg.text_max_features,
        min_df=min(cfg.min_category_count, 5),
        dtype=np.float64,
    )


def build_pipeline(
    kind: str, columns: Columns, cfg: ModelConfig, *, missing_values: Sequence[str],
    decimal: str = ".", thousands: str | None = None,
) -> Pipeline:
    """Unfitted pipeline of the given ``kind``, from raw lead columns to a probability.

    Parameters
    ----------
    kind : {"logistic_regression", "gradient_boosting"}
        The classifier at the end of the pipeline.
    columns : Columns
        Column roles from the dataset config.
    cfg : ModelConfig
        Hyper-parameters and the seed.
    missing_values : sequence of str
        CRM placeholders read as missing.
    decimal, thousands : str
        The decimal mark and thousands separator of numbers given as text (a served lead
        file).
    """
    cleaner = LeadCleaner(
        numeric=tuple(columns.numeric),
        categorical=tuple(columns.categorical),
        text=tuple(columns.text),
        missing_values=tuple(missing_values),
        decimal=decimal,
        thousands=thousands,
    )
    text_parts = [(f"text_{c}", PerDistinct(_text_vectorizer(cfg)), c) for c in columns.text]
    if kind == "logistic_regression":
        encode = ColumnTransformer(
            [
                ("numeric", make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    SignedLog(),
                    StandardScaler(),
                ), list(columns.numeric)),
                ("categorical", PerDistinct(OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    min_frequency=cfg.min_category_count,
                    sparse_output=False,
                )), list(columns.categorical)),
                *text_parts,
            ],
            sparse_threshold=0.0,
        )
        clf = LogisticRegression(C=cfg.C, max_iter=2000)
    elif kind == "gradient_boosting":
        encode = ColumnTransformer(
            [
                ("numeric", "passthrough", list(columns.numeric)),
                ("categorical", PerDistinct(OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    min_frequency=cfg.min_category_count,
                    max_categories=250,
                )), list(columns.categorical)),
                *text_parts,
            ],
            sparse_threshold=0.0,
        )
        n_num, n_cat = len(columns.numeric), len(columns.categorical)
        clf = HistGradientBoostingClassifier(
            learning_rate=cfg.learning_rate,
            max_iter=cfg.max_iter,
            max_leaf_nodes=cfg.max_leaf_nodes,
            l2_regularization=cfg.l2_regularization,
            categorical_features=list(range(n_num, n_num + n_cat)) or None,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=20,
            random_state=cfg.seed,
        )
    else:
        raise ValueError(f"unknown model kind '{kind}'; use one of logistic_regression, "
                         "gradient_boosting")
    return LeadPipeline([("clean", cleaner), ("encode", encode), ("classifier", clf)])


_KEPT: ContextVar[dict | None] = ContextVar("leadml_kept_scores", default=None)


@contextmanager
def scores_kept():
    """Within this block, a pipeline scoring the same frame object again returns the
    decision it computed the first time (a copy), instead of encoding and walking the leads
    again: training scores its test window through the calibrated model and through the raw
    one (1.8 s at 1M leads). The frames and pipelines are held until the block ends, so an
    id cannot be reused for another object; nothing in training changes a frame in place."""
    token = _KEPT.set({})
    try:
        yield
    finally:
        _KEPT.reset(token)


#: From how many leads a gradient boosting's trees are walked compiled: below, scikit-learn's
#: own walk takes as long (0.03 s for 3,000 leads, 0.11 s for 20,000, against 0.19 s and
#: 0.30 s at 50,000) and a process never pays the compiled walk's loading (0.5 to 1.2 s),
#: with the same sums (bit for bit, :mod:`leadml.model.trees`).
COMPILED_FROM = 20_000


class LeadPipeline(Pipeline):
    """A :class:`~sklearn.pipeline.Pipeline` that scores without the ColumnTransformer's
    copies: ending in a logistic regression, it sums per-field parts computed once per
    distinct value (:mod:`leadml.model.linear`; the same probabilities to rounding); ending in
    another classifier, it builds the encoded matrix straight into one array
    (:mod:`leadml.model.encoded`; the same values), and a binary gradient boosting on
    :data:`COMPILED_FROM` leads or more walks its trees in one compiled pass
    (:mod:`leadml.model.trees`; bit for bit). Calls with routed parameters, and pipelines of
    another shape, take Pipeline's own path.
    """

    def _path(self, X, params) -> str:
        if params or len(X) == 0 or not encoded.is_direct(self):
            return "pipeline"
        if linear.is_linear(self):
            return "linear"
        if len(X) < COMPILED_FROM or not is_binary_hist_gradient_boosting(self.steps[-1][1]):
            return "matrix"
        return "trees"

    def fit(self, X, y=None, **params):
        kept = _KEPT.get()
        if kept is not None:  # refitted: what it scored before is not what it scores now
            for key in [k for k in kept if k[0] == id(self)]:
                del kept[key]
        return super().fit(X, y, **params)

    def decision_function(self, X, **params):
        kept = _KEPT.get()
        if kept is None or params:
            return self._decision(X, params)
        found = kept.get((id(self), id(X)))
        if found is None:
            found = kept[id(self), id(X)] = (self, X, self._decision(X, params))
        return found[2].copy()

    def _decision(self, X, params):
        path = self._path(X, params)
        if path == "linear":
            return linear.decision(self, linear.field_parts(self, X))
        if path == "trees":
            from leadml.model import trees  # lazy: numba, for gradient boosting only

            return trees.decisions(self.steps[-1][1], encoded.matrix(self, X))
        if path == "matrix":
            return self.steps[-1][1].decision_function(encoded.matrix(self, X))
        return super().decision_function(X, **params)

    def predict_proba(self, X, **params):
        path = self._path(X, params)
        if path in ("linear", "trees"):  # both classifiers' binary predict_proba
            p = expit(self.decision_function(X))
            return np.vstack([1 - p, p]).T
        if path == "matrix":
            return self.steps[-1][1].predict_proba(encoded.matrix(self, X))
        return super().predict_proba(X, **params)


