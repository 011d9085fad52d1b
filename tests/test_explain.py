"""Per-lead reasons are faithful to the calibrated model that scores the lead."""

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadml.cli import app
from leadml.config import load_config
from leadml.data.reason_text import join_slots, join_texts
from leadml.data.schema import validate_history
from leadml.explain.effects import MIN_POINTS, Explainer, _tails, field_words, sentences
from leadml.model.encoded import field_columns
from leadml.registry import input_example, load_scoring_model
from leadml.scoring.chunks import typed_features
from leadml.training.fit import train
from tests.helpers import write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["logistic_regression", "gradient_boosting",
                                        "shifted"])
def fitted(request, tmp_path_factory, sample_files):
    """A trained model of each kind (and one with a drift shift), its leads and reference."""
    folder = tmp_path_factory.mktemp(request.param)
    kind = "logistic_regression" if request.param == "shifted" else request.param
    extra = {"drift": {"method": "known_rate", "base_rate": 0.3}} \
        if request.param == "shifted" else {}
    cfg = load_config(write_config(folder, sample_files / "leads.csv",
                                   model={"candidates": [kind]}, **extra))
    raw = pd.read_csv(sample_files / "leads.csv", dtype=str, keep_default_na=False)
    result = train(validate_history(raw, cfg), cfg)
    features = list(cfg.dataset.columns.features)
    reference = input_example(result.X_test[features], cfg.dataset.columns.numeric)
    X = result.X_test[features].reset_index(drop=True)
    for col in cfg.dataset.columns.numeric:
        X[col] = pd.to_numeric(X[col].replace("", np.nan))
    return result.model, X, reference.iloc[0].to_dict()


def test_probabilities_are_the_models_own(fitted):
    model, X, reference = fitted
    p, _ = Explainer(model, reference).effects(X)
    np.testing.assert_allclose(p, model.predict_proba(X)[:, 1], atol=1e-12)


def test_every_encoded_column_belongs_to_exactly_one_raw_field(fitted):
    model, X, reference = fitted
    explainer = Explainer(model, reference)
    cols = np.concatenate(list(explainer.fields.values()))
    width = explainer._encode.transform(X.head(1)).shape[1]
    assert sorted(cols) == list(range(width))
    assert set(explainer.fields) == set(X.columns)


@pytest.mark.parametrize("which", ["raised", "lowered"])
def test_replacing_the_top_field_by_the_reference_moves_the_probability_back(fitted, which):
    """The faithfulness test: set each lead's top raising (lowering) field to the reference
    value in the raw data and score again with the full model: the probability falls (rises)
    by exactly the effect the reason states."""
    model, X, reference = fitted
    p, effects = Explainer(model, reference).effects(X)
    values = effects.to_numpy()
    j = values.argmax(axis=1) if which == "raised" else values.argmin(axis=1)
    stated = values[np.arange(len(X)), j]
    relevant = np.abs(stated) >= 0.005  # leads with a field worth a reason
    replaced = X.astype(object)
    for k, field in enumerate(effects.columns):
        replaced.loc[j == k, field] = reference[field]
    p_new = model.predict_proba(replaced)[:, 1]
    moved = (p_new < p) if which == "raised" else (p_new > p)
    assert moved[relevant].mean() >= 0.99
    np.testing.assert_allclose(p - p_new, stated, atol=1e-9)


def test_every_fields_effect_equals_scoring_again_with_that_field_swapped(fitted):
    """Every field of every lead, not only the top ones: the effect is the probability minus
    the full model's probability with that raw field set to the reference (the trees' one
    walk per lead, leadml.model.trees, and the logistic regression's parts alike)."""
    model, X, reference = fitted
    X = X.head(500)
    p, effects = Explainer(model, reference).effects(X)
    assert list(effects.columns) == list(X.columns)
    for field in effects.columns:
        swapped = X.astype(object)
        swapped[field] = reference[field]
        np.testing.assert_allclose(p - model.predict_proba(swapped)[:, 1], effects[field],
                                   atol=1e-9, err_msg=field)


def _hostile(X: pd.DataFrame, reference: dict, seed: int) -> pd.DataFrame:
    """Leads with values the model never saw: missing, unseen categories, extremes."""
    rng = np.random.default_rng(seed)
    out = X.astype(object).copy()
    for field in out.columns:
        rows = rng.random(len(out)) < 0.15
        if isinstance(reference[field], float | int | np.floating | np.integer):
            out.loc[rows, field] = rng.choice([np.nan, -1e6, 1e9, 0.0], int(rows.sum()))
        else:
            out.loc[rows, field] = rng.choice(["", "never seen before", None], int(rows.sum()))
    for field in out.columns:
        if isinstance(reference[field], float | int | np.floating | np.integer):
            out[field] = pd.to_numeric(out[field])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contributions_add_up_to_the_probability_minus_the_typical_leads(fitted, seed):
    """Every lead, hostile values included: the typical lead's probability plus the fields'
    contributions is the lead's probability, to 1e-9, for every model kind."""
    model, X, reference = fitted
    leads = _hostile(X.head(400), reference, seed)
    p, p_ref, contributions = Explainer(model, reference).contributions(leads)
    np.testing.assert_allclose(p, model.predict_proba(leads)[:, 1], atol=1e-12)
    typical = pd.DataFrame([reference])[list(X.columns)]
    assert abs(p_ref - model.predict_proba(typical)[0, 1]) < 1e-12
    assert list(contributions.columns) == list(X.columns)
    np.testing.assert_allclose(p_ref + contributions.sum(axis=1).to_numpy(), p, atol=1e-9)


def test_contributions_are_shapley_values_of_the_swaps_against_the_typical_lead(fitted):
    """Against brute force: for a few leads, every coalition of fields taken from the lead
    (the rest from the typical lead) scored by the model's own decision function; each
    field's Shapley value of those, scaled as the contributions are, is its contribution."""
    from itertools import product
    from math import factorial

    from leadml.model.sklearn_compat import model_parts

    model, X, reference = fitted
    pipeline = model_parts(model)[0]
    fields = list(X.columns)
    n = len(fields)
    leads = _hostile(X.head(3), reference, 5)
    p, p_ref, contributions = Explainer(model, reference).contributions(leads)
    masks = np.array(list(product([False, True], repeat=n)))
    weight = {k: factorial(k) * factorial(n - k - 1) / factorial(n) for k in range(n)}
    for i in range(len(leads)):
        lead = leads.iloc[i]
        rows = pd.DataFrame([{f: lead[f] if m[j] else reference[f]
                              for j, f in enumerate(fields)} for m in masks])
        for f in fields:
            if isinstance(reference[f], float | int | np.floating | np.integer):
                rows[f] = pd.to_numeric(rows[f])
        v = dict(zip(map(tuple, masks), pipeline.decision_function(rows), strict=True))
        phi = np.zeros(n)
        for m, value in v.items():
            for j in range(n):
                if m[j]:
                    without = m[:j] + (False,) + m[j + 1:]
                    phi[j] += weight[sum(m) - 1] * (value - v[without])
        gap = v[(True,) * n] - v[(False,) * n]
        assert abs(phi.sum() - gap) < 1e-9
        if abs(gap) > 1e-6:  # contributions are phi scaled by (p - p_ref) / gap
            np.testing.assert_allclose(contributions.iloc[i].to_numpy(),
                                       phi * (p[i] - p_ref) / gap, atol=1e-9)


def test_permutation_importances_are_scikit_learns_without_scoring_again(fitted):
    """Fields shuffled as scikit-learn's permutation_importance shuffles them (the same
    orders, from the same seed), swapped in one walk per repeat: its very numbers; and each
    shuffled field's probabilities are the full model's on the shuffled raw leads."""
    from sklearn.inspection import permutation_importance

    from leadml.explain.importance import permutation_importances, shuffles

    model, X, _ = fitted
    X, y = X.head(1500), model.predict_proba(X.head(1500))[:, 1] > 0.2  # both outcomes
    ours = permutation_importances(model, X, y, repeats=3, seed=7).set_index("field")
    theirs = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=3,
                                    random_state=7)
    np.testing.assert_allclose(ours.loc[list(X.columns), "importance"],
                               theirs.importances_mean, atol=1e-9)
    np.testing.assert_allclose(ours.loc[list(X.columns), "std"], theirs.importances_std,
                               atol=1e-9)
    assert ours["importance"].max() > 0.01  # a model that leans on its fields
    orders = shuffles(len(X), 2, seed=3)
    p, repeated = Explainer(model).shuffled(X, orders)
    np.testing.assert_allclose(p, model.predict_proba(X)[:, 1], atol=1e-12)
    for order, probabilities in zip(orders, repeated, strict=True):
        for field in X.columns:
            shuffled = X.copy()
            shuffled[field] = X[field].to_numpy()[order]
            np.testing.assert_allclose(probabilities[field],
                                       model.predict_proba(shuffled)[:, 1], atol=1e-9,
                                       err_msg=field)


def test_sentences_name_the_value_and_the_size_in_points(fitted):
    model, X, reference = fitted
    _, effects = Explainer(model, reference).effects(X.head(50))
    text = sentences(X.head(50), effects)
    assert any("raised the chance of converting by" in t for t in text)
    assert all(t.count(" raised ") <= 3 and t.count(" lowered ") <= 3 for t in text)


def test_reasons_never_name_an_excluded_or_unknown_field(champion, sample_files, tmp_path):
    model, contract = load_scoring_model("models:/leadml@champion")
    assert set(field_columns(Explainer(model, contract.reference_lead).pipeline)) == \
        set(contract.features)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["score", str(sample_files / "nightly.csv"), "-o",
                                      str(out)])
    assert result.exit_code == 0, result.output
    reasons = " ".join(pd.read_csv(out, keep_default_na=False)["reasons"])
    for leaky in ("True probability", "Converted at", "Converted ", "Lead id", "Created at"):
        assert leaky not in reasons
    assert "raised the chance of converting" in reasons


def test_no_reasons_flag_skips_field_reasons(champion, sample_files, tmp_path):
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["score", str(sample_files / "nightly.csv"), "-o",
                                      str(out), "--no-reasons"])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out, keep_default_na=False)
    assert not scored["reasons"].str.contains("raised|lowered").any()


def test_cli_explain_prints_a_table(champion, sample_files):
    result = CliRunner().invoke(app, ["explain", str(sample_files / "nightly.csv"),
                                      "--rows", "3"])
    assert result.exit_code == 0, result.output
    assert "raised by" in result.output and "probability" in result.output
    nightly = pd.read_csv(sample_files / "nightly.csv", dtype=str)
    assert nightly["lead_id"].iloc[0] in result.output
    assert "Points add up from a typical lead" in result.output and "what if" in result.output


def test_cli_explain_shows_each_leads_fit_and_engagement_under_the_rules_axes(
        champion, sample_files, tmp_path):
    from tests.helpers import REPO

    rules = tmp_path / "rules.yaml"
    rules.write_text((REPO / "pipelines" / "configs" / "bant.yaml").read_text()
                     + "\naxes:\n  fit: [industry, job_title]\n  engagement: [meetings]\n")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["explain", str(sample_files / "nightly.csv"), "--rows", "3", "--rules",
              str(rules)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "fit, engagement" in result.output
    assert len(re.findall(r"[A-D][1-4]: fit [+-]", result.output)) == 3


def test_typed_features_reads_numbers_from_text(champion):
    _, contract = load_scoring_model("models:/leadml@champion")
    frame = pd.DataFrame({c: ["1,5" if c in contract.numeric else "x"] for c in
                          contract.features})
    typed = typed_features(frame, contract)
    assert typed[list(contract.numeric)].isna().all().all()  # unreadable -> missing


@pytest.mark.parametrize("kind", ["logistic_regression", "gradient_boosting"])
@pytest.mark.parametrize("roles", [{"numeric": ("estimated_budget", "meetings")},
                                   {"categorical": ("industry", "lead_source")},
                                   {"text": ("job_title",)},
                                   {"numeric": ("meetings",), "text": ("job_title",)}])
def test_exports_with_a_role_left_empty_score_and_explain(kind, roles):
    """An export with no text column, no categories or no numbers: the fast scoring paths
    equal a plain Pipeline, and every field's effect equals scoring again with it swapped."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    from leadml.config import Columns, ModelConfig
    from leadml.model.pipeline import build_pipeline
    from leadml.model.wrappers import RateShifted
    from leadml.setup.synthetic import make_leads

    leads = make_leads(2_000, seed=0).astype(str).replace("nan", "")
    y = leads["converted"].astype(int).to_numpy()
    columns = Columns(**roles)
    pipe = build_pipeline(kind, columns, ModelConfig(), missing_values=("",)).fit(leads, y)
    new = make_leads(300, seed=3).astype(str).replace("nan", "")[list(columns.features)]
    np.testing.assert_allclose(pipe.predict_proba(new), Pipeline(pipe.steps).predict_proba(new),
                               rtol=0, atol=1e-12)
    model = RateShifted(CalibratedClassifierCV(FrozenEstimator(pipe), method="sigmoid")
                        .fit(leads, y), source_rate=0.2, target_rate=0.3).fit(leads, y)
    reference = new.iloc[0].to_dict()
    p, effects = Explainer(model, reference).effects(new)
    for field in columns.features:
        swapped = new.assign(**{field: reference[field]})
        np.testing.assert_allclose(p - model.predict_proba(swapped)[:, 1], effects[field],
                                   atol=1e-9, err_msg=field)


def test_sentences_order_fields_as_a_stable_sort_of_all_effects_would():
    """The strongest fields are picked by repeated arg-max; ties (equal effects) and
    fields beyond the top fall as a stable sort of every effect orders them."""
    rng = np.random.default_rng(3)
    fields = [f"f{i}" for i in range(6)]
    effects = pd.DataFrame(rng.choice([-0.2, -0.05, 0.0, 0.001, 0.05, 0.2], (400, 6)),
                           columns=fields)  # many ties
    leads = pd.DataFrame({f: rng.choice(["a", "b"], 400) for f in fields})
    got = sentences(leads, effects)

    def words(field, value, effect, first, direction):
        tail = _tails(np.array([effect]), np.array([first]), direction)[0].as_py()
        return f'{field_words(field)} "{value}" {tail}'

    order = np.argsort(-effects.to_numpy(), axis=1, kind="stable")
    for i in range(len(effects)):
        row, parts = effects.iloc[i].to_numpy(), []
        raised = [j for j in order[i, :3] if row[j] >= MIN_POINTS / 100]
        parts += [words(fields[j], leads.iloc[i, j], row[j], k == 0, "raised")
                  for k, j in enumerate(raised)]
        lowered = [j for j in order[i, ::-1][:3] if row[j] <= -MIN_POINTS / 100]
        parts += [words(fields[j], leads.iloc[i, j], row[j], k == 0 and not raised, "lowered")
                  for k, j in enumerate(lowered)]
        assert got[i] == "; ".join(parts)


def test_slots_joined_in_arrow_read_as_joined_in_python():
    """:func:`leadml.data.reason_text.join_slots` gives per lead what joining the non-empty texts in
    Python gives, for any pattern of empty slots: leads with no text at all (also the
    last ones: pyarrow's own skipping join drops such rows), one slot, texts holding the
    separator, both Arrow string types."""
    import pyarrow as pa

    rng = np.random.default_rng(7)
    words = np.array(["a", "b; c", "Job title \"VP\" raised it by 1 point", "é ✓"], dtype=object)
    for n_slots in (1, 2, 5):
        texts = [np.where(rng.random(300) < 0.6, "", rng.choice(words, 300)).astype(object)
                 for _ in range(n_slots)]
        for t in texts:
            t[-3:] = ""  # the last leads have nothing to say
        slots = [pa.array(t, pa.string() if k % 2 else pa.large_string(), mask=t == "")
                 for k, t in enumerate(texts)]
        got = join_slots(slots).to_pylist()
        assert got == join_texts(texts).tolist()
        assert len(got) == 300 and got[-3:] == ["", "", ""]
