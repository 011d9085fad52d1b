"""The scikit-learn internals leadml reads or writes, in one place.

scikit-learn keeps the calibrators of a ``CalibratedClassifierCV`` and the fitted parts of a
``ColumnTransformer`` in attributes that are not all public API, and its private classes are
named in the skops allow-list (:data:`leadml.model.saved_paths.TRUSTED_TYPES`).
Everything of that kind is here, so that an upgrade breaks
one module, and ``tests/test_sklearn_compat.py`` fails the day scikit-learn changes them.
Imports no MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.calibration import _SigmoidCalibration
from sklearn.frozen import FrozenEstimator

from leadml.model.wrappers import RateShifted, unserved


def _calibrated(model):
    """The one (estimator, calibrator) pair of a ``CalibratedClassifierCV`` fitted on a
    ``FrozenEstimator`` (private class ``_CalibratedClassifier``)."""
    pairs = model.calibrated_classifiers_
    if len(pairs) != 1:
        raise ValueError(f"expected one calibrated classifier (a frozen estimator), got "
                         f"{len(pairs)}")
    return pairs[0]


def sigmoid_map(scores=None, y=None, *, sample_weight=None, a: float | None = None,
                b: float | None = None):
    """Platt's map as ``CalibratedClassifierCV`` holds it (private ``_SigmoidCalibration``):
    fitted on ``scores`` and outcomes ``y``, or with its ``a`` and ``b`` set."""
    cal = _SigmoidCalibration()
    if scores is not None:
        return cal.fit(scores, y, sample_weight=sample_weight)
    cal.a_, cal.b_ = a, b
    return cal


def calibrator(model):
    """The fitted calibration map of the positive class (``_SigmoidCalibration`` with
    ``a_``, ``b_``, or an ``IsotonicRegression``); ``.predict(decision)`` gives the
    probability."""
    return _calibrated(model).calibrators[0]


def set_calibrator(model, calibration_map) -> None:
    """Put a calibration map fitted elsewhere (on pooled out-of-fold scores) in place of
    the one ``model`` fitted on its calibration window, in place."""
    _calibrated(model).calibrators[0] = calibration_map


def sigmoid_slope(model) -> float:
    """``a`` of Platt's ``1 / (1 + exp(a * f + b))``: negative when higher scores mean
    likelier conversion, as they should."""
    return float(calibrator(model).a_)


def swap_estimator(model, refit) -> None:
    """Put ``refit`` (an estimator on the same score scale) under ``model``'s fitted
    calibrator, in place."""
    frozen = FrozenEstimator(refit)
    model.estimator = frozen
    _calibrated(model).estimator = frozen


def model_parts(model):
    """(pipeline, calibrator, (source, target) rate shift or None) of a leadml model."""

    model = unserved(model)
    shift = None
    if isinstance(model, RateShifted):
        shift = (model.source_rate, model.target_rate)
        model = model.estimator
    estimator = _calibrated(model).estimator
    pipeline = getattr(estimator, "estimator", estimator)  # inside the FrozenEstimator
    return pipeline, calibrator(model), shift


def fitted_transformer(pipeline, name: str):
    """The fitted transformer ``name`` of the pipeline's ``encode`` ColumnTransformer (the
    encoder itself, inside a :class:`leadml.model.encoders.PerDistinct`), or None."""
    return unwrapped(pipeline.named_steps["encode"].named_transformers_.get(name))


def unwrapped(transformer):
    """The encoder a :class:`leadml.model.encoders.PerDistinct` applies, or ``transformer``."""
    return getattr(transformer, "transformer_", transformer)


def output_widths(encoder, n_features: int) -> list[int]:
    """How many output columns each input column of a fitted column-wise encoder makes
    (``OneHotEncoder``: its private ``_n_features_outs``, infrequent and dropped categories
    counted; ``OrdinalEncoder``: one each)."""
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if isinstance(encoder, OneHotEncoder):
        return [int(w) for w in encoder._n_features_outs]
    if isinstance(encoder, OrdinalEncoder):
        return [1] * n_features
    raise TypeError(f"no column widths known for {type(encoder).__name__}")


@dataclass(frozen=True)
class Trees:
    """The fitted trees of a binary ``HistGradientBoostingClassifier`` as flat arrays, every
    tree's nodes one after another (``roots``: where each tree starts; ``left``, ``right``
    and ``bitset_idx`` index the whole arrays), with what its predictor reads beside them:
    the categories each split sends left (``raw_left``), the known categories of each
    categorical feature (``known``, indexed through ``f_idx_map``) and the baseline the
    leaves are added to. The trees read the classifier's own view of its input
    (:func:`hist_gradient_boosting_input`: categorical columns first, re-encoded); column
    ``c`` of that view is column ``columns[c]`` of the input. Private attributes:
    ``_predictors``, ``_bin_mapper``, ``_baseline_prediction``, ``_preprocess_X`` and the
    predictors' ``nodes`` records."""

    baseline: float
    roots: np.ndarray
    value: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    is_categorical: np.ndarray
    bitset_idx: np.ndarray
    raw_left: np.ndarray
    known: np.ndarray
    f_idx_map: np.ndarray
    columns: np.ndarray


def is_binary_hist_gradient_boosting(classifier) -> bool:
    """Whether ``classifier`` is a fitted binary ``HistGradientBoostingClassifier`` (whose
    trees :mod:`leadml.model.trees` walks)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return isinstance(classifier, HistGradientBoostingClassifier) \
        and hasattr(classifier, "_predictors") and len(classifier.classes_) == 2


def check_trees(model) -> None:
    """Refuse the trees of a leadml model's gradient boosting when a damaged or crafted
    file holds what no fitted model has: a child outside its tree or not after its parent
    (a walk that reads past the nodes, or never ends), a split on a column the model does
    not read, a category split without its bitset, a leaf or baseline that is not a finite
    number. scikit-learn's prediction and :mod:`leadml.model.trees` index the nodes without bounds
    checks, which is why skops does not trust ``TreePredictor`` by default; leadml trusts
    it (:data:`TRUSTED_TYPES`) and checks it here. Raises ValueError naming the node."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    try:
        pipeline = model_parts(model)[0]
    except (AttributeError, ValueError):  # not shaped as leadml trains: leadml will not walk it
        return
    classifier = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    if not isinstance(classifier, HistGradientBoostingClassifier) \
            or not hasattr(classifier, "_predictors"):
        return
    if not np.all(np.isfinite(classifier._baseline_prediction)):
        raise ValueError("its baseline prediction is not a finite number")
    width = classifier.n_features_in_
    for t, per_class in enumerate(classifier._predictors):
        for predictor in per_class:
            nodes, splits = predictor.nodes, len(predictor.raw_left_cat_bitsets)
            k = np.arange(len(nodes))
            inner = nodes["is_leaf"] == 0
            left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
            feature = nodes["feature_idx"].astype(np.int64)
            category = inner & (nodes["is_categorical"] == 1)
            bad = inner & ((left <= k) | (left >= len(nodes)) | (right <= k)
                           | (right >= len(nodes)) | (feature < 0) | (feature >= width))
            bad |= category & (nodes["bitset_idx"].astype(np.int64) >= splits)
            bad |= ~inner & ~np.isfinite(nodes["value"])
            if len(nodes) == 0 or bad.any():
                node = int(np.flatnonzero(bad)[0]) if bad.any() else 0
                raise ValueError(f"tree {t} is malformed at node {node} of {len(nodes)} "
                                 "(a child outside the tree or before its parent, a column "
                                 f"beyond the model's {width}, a category split without its "
                                 "bitset, or a leaf that is not a finite number)")


def hist_gradient_boosting_input(classifier, X) -> np.ndarray:
    """The array a fitted ``HistGradientBoostingClassifier``'s trees read for ``X``."""
    return np.ascontiguousarray(classifier._preprocess_X(X, reset=False), dtype=np.float64)


def hist_gradient_boosting_trees(classifier) -> Trees:
    """:class:`Trees` of a fitted binary ``HistGradientBoostingClassifier``."""
    if len(classifier._predictors) and len(classifier._predictors[0]) != 1:
        raise ValueError("expected one tree per iteration (a binary classifier)")
    predictors = [trees[0] for trees in classifier._predictors]
    known, f_idx_map = classifier._bin_mapper.make_known_categories_bitsets()
    categorical = classifier.is_categorical_ if classifier._preprocessor is not None else None
    sizes = np.array([len(p.nodes) for p in predictors], dtype=np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    splits = np.array([len(p.raw_left_cat_bitsets) for p in predictors], dtype=np.int64)
    first_split = np.concatenate([[0], np.cumsum(splits)[:-1]]).astype(np.int64)
    nodes = np.concatenate([p.nodes for p in predictors])
    shift = np.repeat(roots, sizes)
    raw_left = np.concatenate([p.raw_left_cat_bitsets for p in predictors]) if \
        splits.sum() else np.zeros((1, 8), dtype=np.uint32)
    return Trees(
        baseline=float(np.ravel(classifier._baseline_prediction)[0]), roots=roots,
        value=np.ascontiguousarray(nodes["value"], dtype=np.float64),
        feature=nodes["feature_idx"].astype(np.int64),
        threshold=np.ascontiguousarray(nodes["num_threshold"], dtype=np.float64),
        missing_left=nodes["missing_go_to_left"].astype(np.uint8),
        left=nodes["left"].astype(np.int64) + shift,
        right=nodes["right"].astype(np.int64) + shift,
        is_leaf=nodes["is_leaf"].astype(np.uint8),
        is_categorical=nodes["is_categorical"].astype(np.uint8),
        bitset_idx=nodes["bitset_idx"].astype(np.int64) + np.repeat(first_split, sizes),
        raw_left=np.ascontiguousarray(raw_left, dtype=np.uint32),
        known=np.ascontiguousarray(known, dtype=np.uint32),
        f_idx_map=np.asarray(f_idx_map, dtype=np.int64),
        columns=np.arange(classifier.n_features_in_) if categorical is None else
        np.concatenate([np.flatnonzero(categorical), np.flatnonzero(~categorical)]))
