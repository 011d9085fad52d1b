"""The scikit-learn internals leadml touches (leadml.model.sklearn_compat), pinned: this file fails
the day scikit-learn renames or reshapes them, before any user's model does."""

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import OneHotEncoder

from leadml.config import Columns, ModelConfig
from leadml.model import sklearn_compat as compat
from leadml.model.pipeline import build_pipeline
from leadml.model.saved_paths import TRUSTED_TYPES
from leadml.model.wrappers import RateShifted
from leadml.setup.synthetic import make_leads

COLUMNS = Columns(numeric=["estimated_budget", "web_visits"],
                        categorical=["industry", "country"], text=["job_title"])


def pipeline_of(kind: str):
    return build_pipeline(kind, COLUMNS, ModelConfig(), missing_values=("",))


@pytest.fixture(scope="module")
def data():
    leads = make_leads(3_000, seed=3)
    X = leads[list(COLUMNS.features)]
    return X, leads["converted"].to_numpy()


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("kind", ["logistic_regression", "gradient_boosting"])
def test_the_calibrated_model_is_taken_apart_as_leadml_expects(data, method, kind):
    X, y = data
    pipe = pipeline_of(kind).fit(X[:2000], y[:2000])
    model = CalibratedClassifierCV(FrozenEstimator(pipe), method=method).fit(X[2000:],
                                                                              y[2000:])
    pipeline, calibrator, shift = compat.model_parts(model)
    assert pipeline is pipe and shift is None
    # The calibrator maps the pipeline's decision scores to the model's probabilities.
    scores = pipe.decision_function(X) if hasattr(pipe, "decision_function") else \
        pipe.predict_proba(X)[:, 1]
    np.testing.assert_allclose(calibrator.predict(scores), model.predict_proba(X)[:, 1],
                               atol=1e-12)
    if method == "sigmoid":
        a = compat.sigmoid_slope(model)
        assert a < 0  # higher scores, likelier conversion
        np.testing.assert_allclose(1 / (1 + np.exp(a * scores + calibrator.b_)),
                                   model.predict_proba(X)[:, 1], atol=1e-12)
    encoder = compat.fitted_transformer(pipeline, "categorical")
    if kind == "logistic_regression":
        assert isinstance(encoder, OneHotEncoder) and len(encoder.categories_) == 2
    shifted = RateShifted(model, source_rate=0.1, target_rate=0.2).fit(None)
    assert compat.model_parts(shifted)[2] == (0.1, 0.2)


def test_swapping_the_estimator_keeps_the_calibrator(data):
    X, y = data
    first = pipeline_of("logistic_regression").fit(X[:1500],
                                                                             y[:1500])
    model = CalibratedClassifierCV(FrozenEstimator(first), method="sigmoid").fit(X[1500:],
                                                                                 y[1500:])
    calibrator = compat.model_parts(model)[1]
    refit = pipeline_of("logistic_regression").fit(X, y)
    compat.swap_estimator(model, refit)
    pipeline, after, _ = compat.model_parts(model)
    assert pipeline is refit and after is calibrator
    np.testing.assert_allclose(model.predict_proba(X)[:, 1],
                               calibrator.predict(refit.decision_function(X)), atol=1e-12)


def test_the_allow_list_names_classes_that_exist_and_nothing_else_is_needed(data, tmp_path):
    import importlib

    for name in TRUSTED_TYPES:
        module, _, attr = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), name
    X, y = data
    for kind in ("logistic_regression", "gradient_boosting"):
        pipe = pipeline_of(kind).fit(X[:2000], y[:2000])
        model = RateShifted(CalibratedClassifierCV(FrozenEstimator(pipe)).fit(
            X[2000:], y[2000:]), source_rate=0.1, target_rate=0.2).fit(None)
        blob = skops.io.dumps(model)
        assert set(skops.io.get_untrusted_types(data=blob)) <= set(TRUSTED_TYPES)
        back = skops.io.loads(blob, trusted=TRUSTED_TYPES)
        pd.testing.assert_series_equal(pd.Series(back.predict_proba(X)[:, 1]),
                                       pd.Series(model.predict_proba(X)[:, 1]))


def test_output_widths_of_a_one_hot_encoder_count_infrequent_values_once():
    from sklearn.preprocessing import OneHotEncoder

    from leadml.model.sklearn_compat import output_widths

    X = pd.DataFrame({"a": list("aaabbbbc"), "b": list("xxxyyyzz")})
    enc = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=3,
                        sparse_output=False).fit(X)
    assert output_widths(enc, 2) == [3, 3] and sum(output_widths(enc, 2)) == \
        enc.transform(X).shape[1]


@pytest.mark.parametrize("damage", ["child outside the tree", "child before its parent",
                                    "column beyond the input", "category bitset missing",
                                    "leaf not a number"])
def test_damaged_trees_are_refused_at_load_with_the_node_named(data, tmp_path, damage):
    """skops distrusts TreePredictor because its node indices are read without bounds
    checks (a crafted file reads past the nodes, or walks forever); leadml trusts it and
    checks the trees when it loads a model: each damage is refused, naming the node."""
    from leadml.errors import ModelUnavailableError
    from leadml.registry import load_model

    X, y = data
    pipe = pipeline_of("gradient_boosting").fit(X[:2000], y[:2000])
    model = CalibratedClassifierCV(FrozenEstimator(pipe)).fit(X[2000:], y[2000:])
    good = tmp_path / "good"
    good.mkdir()
    skops.io.dump(model, good / "model.skops")
    assert load_model(str(good)).predict_proba(X).shape == (len(X), 2)

    nodes = pipe.steps[-1][1]._predictors[3][0].nodes
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    k = int(inner[0] if damage != "category bitset missing"
            else inner[nodes["is_categorical"][inner] == 1][0])
    if damage == "child outside the tree":
        nodes["left"][k] = len(nodes) + 5
    elif damage == "child before its parent":  # a cycle: the walk would never end
        nodes["right"][inner[1]] = inner[0]
        k = int(inner[1])
    elif damage == "column beyond the input":
        nodes["feature_idx"][k] = 10_000
    elif damage == "category bitset missing":
        nodes["bitset_idx"][k] = 999
    else:
        leaf = int(np.flatnonzero(nodes["is_leaf"] == 1)[0])
        nodes["value"][leaf] = np.nan
        k = leaf
    bad = tmp_path / "bad"
    bad.mkdir()
    skops.io.dump(model, bad / "model.skops")
    with pytest.raises(ModelUnavailableError, match=f"tree 3 is malformed at node {k} of "):
        load_model(str(bad))


def test_a_model_with_a_type_leadml_does_not_trust_is_refused(data, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    from leadml.errors import ModelUnavailableError
    from leadml.registry import load_model

    X, y = data
    forest = RandomForestClassifier(n_estimators=2).fit(X[["estimated_budget"]].fillna(0), y)
    skops.io.dump(forest, tmp_path / "model.skops")
    with pytest.raises(ModelUnavailableError, match=r"does not trust: \['sklearn.tree._tree"):
        load_model(str(tmp_path))
