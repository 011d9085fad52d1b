"""The scikit-learn internals leadml reads or writes, in one place.

scikit-learn keeps the calibrators of a ``CalibratedClassifierCV`` and the fitted parts of a
``ColumnTransformer`` in attributes that are not all public API, and its private classes are
named in the skops allow-list. Everything of that kind is here, so that an upgrade breaks
one module, and ``tests/test_sklearn_compat.py`` fails the day scikit-learn changes them.
Imports no MLflow (the Spark workers load models with :data:`TRUSTED_TYPES`).
"""

from __future__ import annotations

from sklearn.frozen import FrozenEstimator

#: Types beyond skops' defaults that a leadml model holds. A model with any other type
#: is refused at load time (tests/test_registry.py checks this list is complete).
TRUSTED_TYPES = [
    "functools.partial",
    "leadml.drift.RateShifted",
    "leadml.features.LeadCleaner",
    "leadml.features.LeadPipeline",
    "leadml.features.PerDistinct",
    "leadml.features._SignedLog",
    "leadml.serving.ConversionProbability",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


def _calibrated(model):
    """The one (estimator, calibrator) pair of a ``CalibratedClassifierCV`` fitted on a
    ``FrozenEstimator`` (private class ``_CalibratedClassifier``)."""
    pairs = model.calibrated_classifiers_
    if len(pairs) != 1:
        raise ValueError(f"expected one calibrated classifier (a frozen estimator), got "
                         f"{len(pairs)}")
    return pairs[0]


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
    from leadml.drift import RateShifted
    from leadml.serving import unserved

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
    encoder itself, inside a :class:`leadml.features.PerDistinct`), or None."""
    return unwrapped(pipeline.named_steps["encode"].named_transformers_.get(name))


def unwrapped(transformer):
    """The encoder a :class:`leadml.features.PerDistinct` applies, or ``transformer``."""
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
