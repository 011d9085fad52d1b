"""Models saved before the package was split into stages still load and score the same.

Their skops files name the classes by the 0.1.0 module paths (``leadml.features.*``,
``leadml.drift.RateShifted``, ``leadml.serving.ConversionProbability``);
tests/fixtures/saved_models_0_1_0/README.md says how they were made.
"""

import numpy as np
import pandas as pd
import pytest

import leadml
from tests.helpers import REPO

SAVED = REPO / "tests" / "fixtures" / "saved_models_0_1_0"


@pytest.mark.parametrize("kind", ["logistic_regression", "gradient_boosting"])
def test_a_model_saved_by_0_1_0_scores_as_it_did(kind):
    expected = pd.read_csv(SAVED / f"{kind}.expected.csv", dtype=str, keep_default_na=False)
    leads = pd.read_csv(SAVED / "leads.csv", dtype=str, keep_default_na=False)

    scored = leadml.score_leads(leads, model=str(SAVED / kind),
                                scored_at="2026-12-01T00:00:00Z").leads

    assert scored["lead_id"].tolist() == expected["lead_id"].tolist()
    np.testing.assert_allclose(scored["conversion_probability"].to_numpy(float),
                               expected["conversion_probability"].to_numpy(float),
                               rtol=0, atol=1e-12)
    for column in ["score", "grade", "label"]:
        assert scored[column].astype(str).tolist() == expected[column].tolist(), column
    # The reasons' field points are contributions that add up since issue 41 (0.1.0 wrote
    # one-field swaps): the failed BANT criteria are as 0.1.0 wrote them, and the fields'
    # points with "Other fields" add up to each lead's distance from the typical lead.
    for now, then in zip(scored["reasons"], expected["reasons"], strict=True):
        said = [r for r in now.split("; ") if " by " not in r]
        assert said == [r for r in then.split("; ") if " by " not in r]



def test_the_old_class_paths_are_allowed_and_importable():
    from leadml.model.saved_paths import MOVED, TRUSTED_TYPES

    for old, new in MOVED.items():
        assert old in TRUSTED_TYPES and new in TRUSTED_TYPES
        module, name = old.rsplit(".", 1)
        assert getattr(__import__(module, fromlist=[name]), name).__name__ == new.rsplit(".")[-1]
