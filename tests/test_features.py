import numpy as np
import pandas as pd
import pytest

from leadml.config import Columns, ModelConfig
from leadml.features import LeadCleaner, build_pipeline
from leadml.synthetic import make_leads

COLUMNS = Columns(numeric=("estimated_budget", "meetings"),
                  categorical=("industry", "lead_source"), text=("job_title",))
MISSING = ("", "Select", "N/A", "-")


def raw_leads(n: int, seed: int) -> pd.DataFrame:
    leads = make_leads(n, seed=seed)
    return leads.astype(str).replace("nan", "")


def test_cleaner_types_and_placeholders_without_touching_the_input():
    raw = pd.DataFrame({"estimated_budget": ["10", "N/A", " 7 "], "meetings": ["1", "2", "-"],
                        "industry": ["Select", " retail ", None], "lead_source": list("abc"),
                        "job_title": ["VP Sales", None, ""], "other": [1, 2, 3]})
    before = raw.copy()
    out = LeadCleaner(numeric=COLUMNS.numeric, categorical=COLUMNS.categorical,
                      text=COLUMNS.text, missing_values=MISSING).fit_transform(raw)
    pd.testing.assert_frame_equal(raw, before)
    assert list(out.columns) == [*COLUMNS.features]
    assert out["estimated_budget"].tolist()[::2] == [10.0, 7.0]
    assert np.isnan(out["estimated_budget"][1]) and np.isnan(out["meetings"][2])
    assert out["industry"].isna().tolist() == [True, False, True]
    assert out["industry"][1] == "retail"
    assert out["job_title"].tolist() == ["VP Sales", "", ""]


@pytest.mark.parametrize("kind", ["logistic_regression", "gradient_boosting"])
def test_pipeline_scores_unseen_categories_reordered_and_extra_columns(kind):
    train = raw_leads(1_500, seed=0)
    y = train["converted"].astype(int).to_numpy()
    pipe = build_pipeline(kind, COLUMNS, ModelConfig(), missing_values=MISSING).fit(train, y)
    new = raw_leads(50, seed=1)
    p = pipe.predict_proba(new)[:, 1]
    shuffled = new[new.columns[::-1]].assign(extra_column="x")
    np.testing.assert_allclose(pipe.predict_proba(shuffled)[:, 1], p)
    unseen = new.assign(industry="space_mining", lead_source="carrier_pigeon")
    q = pipe.predict_proba(unseen)[:, 1]
    assert np.isfinite(q).all() and ((q > 0) & (q < 1)).all()


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown model kind 'svm'"):
        build_pipeline("svm", COLUMNS, ModelConfig(), missing_values=MISSING)
