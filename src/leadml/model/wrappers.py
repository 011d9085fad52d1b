"""A leadml model as MLflow serves it: the probability that each lead converts.

MLflow's generic interface (``mlflow.pyfunc.load_model(...).predict``, ``mlflow models
serve``, ``mlflow models predict``, ``mlflow.pyfunc.spark_udf``) calls a scikit-learn
model's ``predict``, which for a classifier is a 0/1 label at 0.5: useless for leads, where
the calibrated probability is the product. So the registered object is the calibrated model
inside :class:`ConversionProbability`, whose ``predict`` is that probability. leadml's own
code calls ``predict_proba`` and takes the model apart with
:func:`leadml.model.sklearn_compat.model_parts`, which looks inside. No MLflow import here.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class ConversionProbability(BaseEstimator):
    """``predict(leads)``: the calibrated probability that each lead converts (a float per
    lead); ``predict_proba``: the model's own two columns.

    It wraps a fitted model and is not fitted again: ``fit`` raises, so that
    ``clone(model).fit(...)`` cannot quietly reuse a model fitted on other leads; retrain
    with ``leadml train``.
    """

    def __init__(self, model=None):
        self.model = model

    def fit(self, X, y=None):
        raise TypeError("a registered leadml model is served as it was trained and is not "
                        "refitted here: train a new one with `leadml train` (or "
                        "leadml.jobs.train)")

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    def __sklearn_is_fitted__(self) -> bool:
        return self.model is not None

    def predict(self, X) -> np.ndarray:
        return self.model.predict_proba(X)[:, 1]

    def predict_proba(self, X) -> np.ndarray:
        return self.model.predict_proba(X)


def served(model) -> ConversionProbability:
    """``model`` as it is registered (once wrapped)."""
    return model if isinstance(model, ConversionProbability) else ConversionProbability(model)


def unserved(model):
    """The calibrated model inside (or ``model`` itself, as registered before)."""
    return model.model if isinstance(model, ConversionProbability) else model


EPS = 1e-12


def shift_rate(p: np.ndarray, source: float, target: float) -> np.ndarray:
    """Move probabilities calibrated at base rate ``source`` to base rate ``target``.

    Bayes' rule with unchanged class-conditional densities: odds scale by
    ``odds(target) / odds(source)``.

    >>> shift_rate(np.array([0.1, 0.5]), 0.1, 0.1).round(3).tolist()
    [0.1, 0.5]
    >>> shift_rate(np.array([0.5]), 0.1, 0.5).round(3).tolist()
    [0.9]
    """
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    ratio = (target / (1 - target)) / (source / (1 - source))
    odds = p / (1 - p) * ratio
    return odds / (1 + odds)


class RateShifted(ClassifierMixin, BaseEstimator):
    """A fitted, calibrated classifier whose probabilities are moved to another base rate.

    Saved and registered as part of the model, so scoring needs nothing else.
    """

    def __init__(self, estimator=None, source_rate: float = 0.5, target_rate: float = 0.5):
        self.estimator = estimator
        self.source_rate = source_rate
        self.target_rate = target_rate

    def fit(self, X, y=None):  # the parts are fitted already; this only checks them
        self.classes_ = self.estimator.classes_
        return self

    def predict_proba(self, X) -> np.ndarray:
        p = shift_rate(self.estimator.predict_proba(X)[:, 1], self.source_rate,
                       self.target_rate)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
