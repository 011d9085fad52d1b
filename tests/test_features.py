import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from leadml.config import Columns, ModelConfig
from leadml.model.encoders import LeadCleaner, distinct_rows
from leadml.model.pipeline import build_pipeline
from leadml.setup.synthetic import make_leads

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


_ENCODERS = {
    "onehot": lambda m, k: __import__("sklearn.preprocessing").preprocessing.OneHotEncoder(
        handle_unknown="infrequent_if_exist", min_frequency=m, max_categories=k,
        sparse_output=False),
    "ordinal": lambda m, k: __import__("sklearn.preprocessing").preprocessing.OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan,
        encoded_missing_value=np.nan, min_frequency=m, max_categories=k),
}


@given(data=st.data(), kind=st.sampled_from(sorted(_ENCODERS)),
       min_frequency=st.sampled_from([None, 1, 2, 5, 20]),
       max_categories=st.sampled_from([None, 3, 250]))
@settings(max_examples=150, deadline=None)
def test_an_encoder_fitted_on_its_fitting_rows_learns_what_it_learns_from_all(
        data, kind, min_frequency, max_categories):
    """Fitting the encoders on fitting_rows (a value's first min_frequency rows, columns
    padded with a frequent value) gives the same categories, the same infrequent ones and
    the same output on every row as fitting on all rows: skewed counts, missing values,
    values just under and at min_frequency, columns of different lengths."""
    from leadml.model.encoders import fitting_rows

    n = data.draw(st.integers(1, 400), label="rows")
    values = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", np.nan])
    frame = pd.DataFrame({
        name: pd.Series(data.draw(st.lists(values, min_size=n, max_size=n), label=name),
                        dtype=object)
        for name in ("x", "y")})
    if data.draw(st.booleans(), label="a skewed column"):
        frame["y"] = np.where(np.arange(n) % 9 == 0, frame["y"], "common")
    encoder = _ENCODERS[kind](min_frequency, max_categories)
    rows = fitting_rows(encoder, frame)
    full = clone(encoder).fit(frame)
    if rows is None:
        return  # the encoder is fitted on every row
    assert len(rows) < len(frame)
    small = clone(encoder).fit(rows)
    for a, b in zip(full.categories_, small.categories_, strict=True):
        assert a.tolist() == b.tolist() or pd.isna(a[-1]) and a[:-1].tolist() == b[:-1].tolist()
    assert str(getattr(full, "infrequent_categories_", None)) == str(
        getattr(small, "infrequent_categories_", None))
    np.testing.assert_array_equal(full.transform(frame), small.transform(frame))


@given(titles=st.lists(st.sampled_from(
           ["VP Sales", "vp sales", "Head of Sales", "CTO", "", "Sales Manager", "Intern",
            "Chief Technology Officer", "V.P. Marketing", "owner", "Owner / Founder"]),
           min_size=1, max_size=300),
       min_df=st.sampled_from([1, 2, 5, 0.05]), max_df=st.sampled_from([1.0, 0.5, 40]),
       max_features=st.sampled_from([None, 1, 3, 40]), binary=st.booleans())
@settings(max_examples=200, deadline=None)
def test_a_vectorizer_fitted_per_distinct_title_learns_the_vocabulary_of_all(
        titles, min_df, max_df, max_features, binary):
    """fit_vectorizer reads each distinct title once and weighs it by how often it occurs:
    the vocabulary (terms and their columns) and the output equal a plain fit's on every
    title, or it raises the same error."""
    from sklearn.feature_extraction.text import CountVectorizer

    from leadml.model.encoders import fit_vectorizer

    titles = titles * 3  # repeats, so the distinct titles are fewer than half
    vec = CountVectorizer(binary=binary, token_pattern=r"(?u)\b\w+\b", min_df=min_df,
                          max_df=max_df, max_features=max_features)
    try:
        plain = clone(vec).fit(titles)
    except ValueError as error:
        with pytest.raises(ValueError, match=str(error)[:30]):
            fit_vectorizer(vec, titles)
        return
    ours = fit_vectorizer(vec, titles)
    assert ours.vocabulary_ == plain.vocabulary_
    assert (ours.transform(titles) != plain.transform(titles)).nnz == 0


def test_fitting_rows_leave_to_the_encoder_what_they_cannot_match():
    """A float min_frequency, a column where no value is frequent, max_categories that
    would cut a column, None beside NaN: no subset, every row fits."""
    from leadml.model.encoders import fitting_rows

    frame = pd.DataFrame({"x": pd.Series(["a"] * 50 + ["b"] * 50 + list("cdefgh"),
                                         dtype=object)})
    assert fitting_rows(_ENCODERS["onehot"](5, None), frame) is not None
    assert fitting_rows(_ENCODERS["onehot"](0.1, None), frame) is None
    assert fitting_rows(_ENCODERS["onehot"](60, None), frame) is None
    assert fitting_rows(_ENCODERS["onehot"](5, 2), frame) is None
    with_none = frame.copy()
    with_none.loc[3, "x"] = None
    assert fitting_rows(_ENCODERS["onehot"](5, None), with_none) is None


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown model kind 'svm'"):
        build_pipeline("svm", COLUMNS, ModelConfig(), missing_values=MISSING)


@pytest.mark.parametrize("kind", ["logistic_regression", "gradient_boosting"])
def test_encoding_each_distinct_value_once_gives_the_same_probabilities(kind, monkeypatch):
    """PerDistinct maps rows to their value's encoding, and a logistic regression scores as
    a sum of per-field parts (leadml.model.linear) with no encoded matrix: the probabilities equal
    the plain encoders' in a plain Pipeline (exactly for the trees, to rounding for the sum),
    with placeholders, blanks, unseen values and rare values mixed in."""
    from sklearn.pipeline import Pipeline

    from leadml.model import encoded
    from leadml.model.encoders import PerDistinct
    from leadml.model.pipeline import LeadPipeline

    train = raw_leads(3_000, seed=0)
    y = train["converted"].astype(int).to_numpy()
    pipe = build_pipeline(kind, COLUMNS, ModelConfig(), missing_values=MISSING).fit(train, y)
    new = raw_leads(5_000, seed=2)
    small = pipe.decision_function(new)  # below COMPILED_FROM: scikit-learn's own walk
    monkeypatch.setattr("leadml.model.pipeline.COMPILED_FROM", 0)  # the compiled walk
    np.testing.assert_array_equal(pipe.decision_function(new), small)
    new.loc[::7, "industry"] = "Select"
    new.loc[::11, "job_title"] = ""
    new.loc[::13, "lead_source"] = "carrier_pigeon"
    new.loc[::17, "industry"] = None
    new.loc[::19, "job_title"] = "Chief Pigeon Officer"
    fast = pipe.predict_proba(new)[:, 1]
    np.testing.assert_array_equal(encoded.matrix(pipe, new), pipe[:-1].transform(new))
    encode = pipe.named_steps["encode"]
    wrapped = [t for _, t, _ in encode.transformers_ if isinstance(t, PerDistinct)]
    assert len(wrapped) == 2  # the categorical encoder and the title vectorizer
    encode.transformers_ = [(n, t.transformer_ if isinstance(t, PerDistinct) else t, c)
                            for n, t, c in encode.transformers_]
    assert isinstance(pipe, LeadPipeline)
    plain = Pipeline(pipe.steps).predict_proba(new)[:, 1]
    if kind == "gradient_boosting":  # its trees walked compiled (leadml.model.trees), bit for bit
        np.testing.assert_array_equal(plain, fast)
        np.testing.assert_array_equal(pipe.decision_function(new),
                                      Pipeline(pipe.steps).decision_function(new))
    else:
        np.testing.assert_allclose(plain, fast, rtol=0, atol=1e-12)
        np.testing.assert_allclose(pipe.decision_function(new),
                                   Pipeline(pipe.steps).decision_function(new),
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["logistic_regression", "gradient_boosting"])
def test_encodings_kept_across_chunks_change_no_number(kind, monkeypatch):
    """Within encoded.memo() (a scoring run), a chunk encodes only the values new to the
    run: chunk after chunk, with values first met late, missing ones, a field that outgrows
    the memo (back to per-chunk encoding) and distinct values encoded in slices, every
    matrix and probability equals the one computed on its own."""
    from leadml.model import encoded

    train = raw_leads(3_000, seed=0)
    y = train["converted"].astype(int).to_numpy()
    pipe = build_pipeline(kind, COLUMNS, ModelConfig(), missing_values=MISSING).fit(train, y)
    leads = raw_leads(4_000, seed=3)
    leads.loc[2500:, "industry"] = "space_mining"  # first met in a late chunk
    leads.loc[3100:3200, "job_title"] = None
    leads.loc[::9, "meetings"] = ""
    chunks = [leads.iloc[i:i + 800].copy() for i in range(0, len(leads), 800)]
    alone = [(encoded.matrix(pipe, c), pipe.predict_proba(c)[:, 1]) for c in chunks]
    monkeypatch.setattr(encoded, "MEMO_MAX_BYTES", 5_000)  # the titles' words outgrow it
    monkeypatch.setattr(encoded, "SLICE_BYTES", 1)  # distinct values encoded 256 at a time
    with encoded.memo():
        for chunk, (matrix, p) in zip(chunks, alone, strict=True):
            np.testing.assert_array_equal(encoded.matrix(pipe, chunk), matrix)
            np.testing.assert_array_equal(pipe.predict_proba(chunk)[:, 1], p)
        kept = encoded._MEMO.get()
    assert None in kept.values()  # the titles went back to per-chunk encoding
    assert any(v is not None for v in kept.values())  # the others kept their values


@pytest.mark.parametrize("encoder", ["onehot", "ordinal"])
def test_per_distinct_follows_scikit_learns_conventions(encoder):
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
    from sklearn.utils.estimator_checks import check_estimator

    from leadml.model.encoders import PerDistinct

    inner = OneHotEncoder(sparse_output=False, handle_unknown="ignore") \
        if encoder == "onehot" else OrdinalEncoder(handle_unknown="use_encoded_value",
                                                   unknown_value=-1)
    check_estimator(PerDistinct(inner))


def test_the_registered_model_scores_the_committed_sample_as_a_plain_pipeline(champion):
    """The fast paths change no probability: the champion's pipeline (a LeadPipeline) on the
    committed sample's leads, read as exported (text), against the same fitted steps in a
    plain Pipeline that builds the encoded matrix: equal to 1e-12 in probability."""
    from pathlib import Path

    from sklearn.pipeline import Pipeline

    from leadml.model.pipeline import LeadPipeline
    from leadml.model.sklearn_compat import model_parts
    from leadml.model.wrappers import shift_rate
    from leadml.registry import load_model

    root = Path(__file__).resolve().parents[1]
    leads = pd.concat([pd.read_csv(root / f"data/sample/{name}.csv", dtype=str,
                                   keep_default_na=False) for name in ("leads", "nightly")])
    model = load_model("models:/leadml@champion")
    pipeline, calibrator, shift = model_parts(model)
    assert isinstance(pipeline, LeadPipeline)
    fast = model.predict_proba(leads)[:, 1]
    plain = calibrator.predict(Pipeline(pipeline.steps).decision_function(leads))
    plain = shift_rate(plain, *shift) if shift else plain
    assert len(fast) == len(leads) > 10_000
    np.testing.assert_allclose(fast, np.clip(plain, 0, 1), rtol=0, atol=1e-12)


def test_mlflow_infers_the_same_schema_from_the_distinct_rows():
    # The training run's dataset schema is inferred from distinct_rows (1M leads: 20 s -> 0.3 s).
    from mlflow.models import infer_signature

    frame = make_leads(3000, seed=5).astype(str)
    frame["converted"] = frame["converted"].astype(int)
    frame["meetings"] = pd.to_numeric(frame["meetings"], errors="coerce")
    frame.loc[2999, "industry"] = None  # a missing value late in the file
    small = distinct_rows(frame)
    assert len(small) == frame["lead_id"].nunique() and set(small["converted"]) == {0, 1}
    with pytest.warns(UserWarning, match="integer"):
        schema = infer_signature(small).inputs
        assert schema == infer_signature(frame).inputs
    assert not [c for c in schema.to_dict() if c["name"] == "industry"][0]["required"]


def test_scores_kept_within_a_training_are_the_scores_computed_again():
    """scores_kept: the same pipeline on the same frame returns a copy of its first decision;
    another frame, or the pipeline refitted, is scored afresh."""
    from scipy.special import expit

    from leadml.model.pipeline import scores_kept

    train = raw_leads(2_000, seed=0)
    y = train["converted"].astype(int).to_numpy()
    pipe = build_pipeline("logistic_regression", COLUMNS, ModelConfig(),
                          missing_values=MISSING).fit(train, y)
    new = raw_leads(500, seed=1)
    plain = pipe.decision_function(new)
    with scores_kept():
        first = pipe.decision_function(new)
        first[:] = 0  # a caller's change does not reach the kept scores
        np.testing.assert_array_equal(pipe.decision_function(new), plain)
        np.testing.assert_array_equal(pipe.predict_proba(new)[:, 1], expit(plain))
        pipe.fit(train.iloc[:1_000], y[:1_000])
        refitted = pipe.decision_function(new)
    assert not np.array_equal(refitted, plain)
    np.testing.assert_array_equal(refitted, pipe.decision_function(new))
