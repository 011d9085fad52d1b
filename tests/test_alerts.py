"""Monitoring's alerts decide with the number of leads in view: no alert on leads drawn from
the model's own reference, ties cannot make drift, a change no small night shows is found
by pooling, and every kind stays within the stated false-alarm budget."""

import json

import numpy as np
import pandas as pd
import pytest

from leadml.monitoring.alerts import Thresholds
from leadml.monitoring.monitor import Reference, summarize
from leadml.monitoring.significance import homogeneity_p_value, per_test_level
from leadml.monitoring.statistics import (
    field_bins,
    field_reference,
    numeric_reference,
    quantile_reference,
    score_counts,
    shares_psi,
)
from leadml.setup.synthetic import make_leads

NUMERIC = ["estimated_budget", "web_visits", "email_opens", "form_fills", "meetings"]
CATEGORICAL = ["lead_source", "channel", "industry", "company_size", "country",
               "purchase_timeline", "stated_need", "product_interest"]
MISSING = ("", "Select", "N/A", "-")


@pytest.fixture(scope="module")
def window():
    """A reference window (4,000 leads) with probabilities, as a model stores it."""
    leads = make_leads(4000, seed=11).reset_index(drop=True)
    p = np.clip(leads["true_probability"].to_numpy(float), 0.005, 0.995)
    reference = Reference(score=numeric_reference(p),
                          fields=field_reference(leads, NUMERIC, CATEGORICAL, MISSING),
                          unseen={})
    return leads, p, reference


def _nights(leads, p, reference, *, nights=30, n=120, seed=0, factor=lambda t: 1.0):
    """``nights`` runs of ``n`` leads drawn from the window, outcomes from ``p`` times
    ``factor(night)``: the frames ``summarize`` reads."""
    rng = np.random.default_rng(seed)
    frames, runs = [], []
    for t in range(nights):
        idx = rng.choice(len(p), size=n, replace=False)
        y = (rng.random(n) < np.clip(p[idx] * factor(t), 0, 1)).astype(float)
        run = f"night {t + 1:02d}"
        frames.append(pd.DataFrame({
            "run": run, "scored_at": pd.Timestamp("2026-03-01", tz="UTC")
            + pd.Timedelta(days=t), "model": "m v1", "lead_id": [f"{t}-{i}" for i in range(n)],
            "conversion_probability": p[idx], "grade": "C", "label": "nurture",
            "matured": True, "converted": y, "converted_before_scoring": False}))
        runs.append({"run": run, "scored": n, "warnings": [], "unseen": {},
                     "input_bins": field_bins(leads.iloc[idx], reference.fields, MISSING)})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(runs)


def test_nights_drawn_from_the_reference_raise_no_alert(window):
    """30 nightly runs of 120 leads from the model's own reference window, outcomes from
    its own probabilities: before, 'industry' and 'country' alerted at PSI 0.27 and 0.28
    (a PSI over tens of categories on a hundred leads reaches 0.25 by chance)."""
    leads, p, reference = window
    frame, runs = _nights(leads, p, reference)
    result = summarize(frame, runs, references={"m v1": reference})
    assert result.alerts == []
    # The noise is there: several nights' PSI is as large as the old threshold read as drift.
    psi = pd.DataFrame(list(result.periods["input_psi"]))
    assert psi.max().max() > 0.2


def test_ties_and_rounding_cannot_make_score_drift():
    """A funnel with few fields: most leads share a probability. Against its own window,
    binned between distinct values, the PSI is near zero; a model saved before the score
    reference (101 percentiles rounded to 6 digits) is binned by the same rule."""
    rng = np.random.default_rng(3)
    levels = np.array([0.0312345678, 0.0812345678, 0.1312345678, 0.4012345678])
    p = rng.choice(levels, size=5000, p=[0.55, 0.25, 0.15, 0.05])
    tonight = rng.choice(p, size=800)
    ref = numeric_reference(p)
    assert shares_psi(ref["shares"][:-1], score_counts(tonight, ref)) < 0.02
    old = quantile_reference([round(float(q), 6) for q in np.quantile(p, np.linspace(0, 1, 101))])
    counts = score_counts(tonight, old)
    assert shares_psi(old["shares"][:-1], counts) < 0.05
    assert homogeneity_p_value(counts, old["shares"][:-1], None) > 0.01


def test_a_doubled_rate_over_small_nights_is_found_and_dated(window):
    """The last 6 of 30 nights convert at twice the predicted rate, each night under
    --min-matured 200: no single night is judged, the pooled newest nights are, and the
    alert names when the change began."""
    leads, p, reference = window
    frame, runs = _nights(leads, p, reference, seed=5,
                          factor=lambda t: 2.0 if t >= 24 else 1.0)
    result = summarize(frame, runs, references={"m v1": reference})
    rate = [a for a in result.alerts if a["kind"] == "calibration"]
    assert len(rate) == 1 and "pooled" in rate[0]["message"]
    began = int(rate[0]["since"].split()[-1])
    assert 22 <= began <= 26, rate[0]["message"]
    assert "it began around" in rate[0]["message"]


def test_a_change_in_one_period_is_dated_by_that_period_not_a_window(window):
    leads, p, reference = window
    frame, runs = _nights(leads, p, reference, nights=5, n=1500, seed=9,
                          factor=lambda t: 2.0 if t == 4 else 1.0)
    alerts = summarize(frame, runs, references={"m v1": reference}).alerts
    assert [a["period"] for a in alerts if a["kind"] == "calibration"] == ["night 05"]
    assert not any("since" in a for a in alerts)


def test_a_category_whose_share_doubled_is_input_drift(window):
    leads, p, reference = window
    rng = np.random.default_rng(2)
    frame, runs = _nights(leads, p, reference, nights=3, n=500)
    moved = leads[leads["industry"] == "finance"].sample(200, random_state=1)
    runs["input_bins"] = [*runs["input_bins"][:2], field_bins(
        pd.concat([moved, leads.sample(300, random_state=int(rng.integers(99)))]),
        reference.fields, MISSING)]
    alerts = summarize(frame, runs, references={"m v1": reference}).alerts
    assert [(a["period"], a["field"]) for a in alerts if a["kind"] == "input_drift"] == \
        [("night 03", "industry")]


def test_the_budget_asks_more_of_each_test_the_more_tests_a_run_makes():
    few, many = per_test_level(0.01, {"rate": 3}), per_test_level(0.01, {"rate": 300})
    assert many["rate"] == few["rate"] / 100
    assert Thresholds().alpha == 0.01
    with pytest.raises(ValueError, match="--alpha"):
        Thresholds(alpha=0)


def test_small_samples_are_not_judged_on_empty_bins():
    """Fifty leads over twenty categories: the rare ones are merged before the test, so
    one lead in a 0.1% category is not a finding."""
    shares = [0.5, 0.2, 0.1, *[0.2 / 17] * 17]
    counts = [24, 11, 5, 1, *[0] * 15, 9]
    assert homogeneity_p_value(counts, shares, 4000, ordered=False) > 0.001


def test_strict_json_and_csv_cells(tmp_path):
    from leadml.data.tables import cells_as_json, write_json, write_table

    write_json({"a": float("nan"), "b": [np.float64("inf"), 1.0]}, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text(),
                      parse_constant=lambda c: pytest.fail(f"bare {c}")) == \
        {"a": None, "b": [None, 1.0]}
    write_table(cells_as_json(pd.DataFrame({"d": [{"industry": 0.1}], "w": [["x"]]})),
                tmp_path / "x.csv")
    row = pd.read_csv(tmp_path / "x.csv").iloc[0]
    assert json.loads(row["d"]) == {"industry": 0.1} and json.loads(row["w"]) == ["x"]


def test_outputs_written_together_or_not_at_all(tmp_path):
    from leadml.data.tables import written_together

    (tmp_path / "a.json").write_text("old a")
    (tmp_path / "b.html").write_text("old b")
    with pytest.raises(RuntimeError), written_together(tmp_path) as staging:
        (staging / "a.json").write_text("new a")
        raise RuntimeError("killed before the page was drawn")
    assert (tmp_path / "a.json").read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.html"]
    with written_together(tmp_path) as staging:
        (staging / "a.json").write_text("new a")
        (staging / "b.html").write_text("new b")
    assert [(tmp_path / n).read_text() for n in ("a.json", "b.html")] == ["new a", "new b"]


def test_ids_are_matched_however_a_file_typed_them():
    from leadml.data.values import id_text

    assert id_text(pd.Series([1001.0, 1002.0])).tolist() == ["1001", "1002"]
    assert id_text(pd.Series(pd.array([1001, None], dtype="Int64"))).tolist() == ["1001", ""]
    assert id_text(pd.Series(["L-1 ", "L-2"])).tolist() == ["L-1", "L-2"]
