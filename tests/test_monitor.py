"""`leadml monitor` and `leadml recalibrate`: realised against predicted conversion of past
scoring runs as outcomes mature, the alert exit code, and the loop that fixes a moved rate."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadml.cli import app
from leadml.monitoring.monitor import mature
from leadml.monitoring.outcomes import read_scored
from leadml.monitoring.statistics import wilson
from leadml.setup.synthetic import make_leads
from tests.helpers import CHROMIUM, REPO, images_in_chromium, screenshot

MONTHS = ["2026-07-01T06:00:00Z", "2026-08-01T06:00:00Z", "2026-09-01T06:00:00Z",
          "2026-10-01T06:00:00Z"]


def test_wilson_interval_covers_the_rate_and_narrows_with_leads():
    lo, hi = wilson(20, 100)
    assert lo < 0.2 < hi
    lo2, hi2 = wilson(200, 1000)
    assert hi2 - lo2 < hi - lo


def test_a_lead_matures_a_horizon_after_it_was_scored():
    t0 = pd.Timestamp("2026-07-01", tz="UTC")
    scored = pd.DataFrame({"lead_id": ["a", "b", "c", "d"], "scored_at": [t0] * 4,
                           "conversion_probability": [0.2] * 4})
    outcomes = pd.DataFrame({"lead_id": ["a", "b", "c"], "converted_at": pd.to_datetime(
        ["2026-07-10", "2026-09-15", None], utc=True)})
    early = mature(scored, outcomes, horizon_days=30, as_of=t0 + pd.Timedelta(days=10))
    assert not early["matured"].any()  # a conversion seen early is not a matured lead
    late = mature(scored, outcomes, horizon_days=30, as_of=t0 + pd.Timedelta(days=31))
    assert late["matured"].all()
    # b converted after the horizon: not a conversion "within 30 days"; d is not listed
    assert late["converted"].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_a_lead_converted_before_it_was_scored_never_counts():
    """A nightly file that held customers already won: their conversions are not the model's
    foresight. Left out of realised rates (and recalibration), and counted; a conversion
    hours before the run (a CRM's local time read as UTC) still counts."""
    from leadml.monitoring.monitor import summarize

    t0 = pd.Timestamp("2026-07-01 06:00", tz="UTC")
    scored = pd.DataFrame({"lead_id": list("abcde"), "scored_at": [t0] * 5,
                           "conversion_probability": [0.2] * 5, "run": "r", "model": "m v1",
                           "grade": "C", "label": "nurture"})
    outcomes = pd.DataFrame({"lead_id": list("abcd"), "converted_at": pd.to_datetime(
        ["2026-05-02 00:00", "2026-06-30 20:00", "2026-07-09 00:00", None], utc=True)})
    out = mature(scored, outcomes, horizon_days=30, as_of=t0 + pd.Timedelta(days=31))
    assert out["converted_before_scoring"].tolist() == [True, False, False, False, False]
    assert out["matured"].tolist() == [False, True, True, True, True]
    assert out["converted"].tolist()[1:] == [1.0, 1.0, 0.0, 0.0]
    row = summarize(out, pd.DataFrame({"run": ["r"], "unseen": [{}], "scored": [5]})
                    ).periods.iloc[0]
    assert (row["matured"], row["converted"], row["converted_before_scoring"]) == (4, 2, 1)
    assert row["unmatured"] == 0  # (nor estimated among the young)


def test_input_drift_is_measured_per_field_against_the_models_reference():
    from leadml.monitoring.statistics import field_psi, field_reference

    base = make_leads(4000, seed=1)
    ref = field_reference(base, ["estimated_budget", "web_visits"], ["industry"], ("", "-"))
    same = field_psi(make_leads(4000, seed=2), ref, ("", "-"))
    assert max(same.values()) < 0.05
    moved = make_leads(4000, seed=3)
    moved["industry"] = "software"  # every lead from one industry
    moved.loc[::2, "estimated_budget"] = np.nan  # half the budgets gone
    drifted = field_psi(moved, ref, ("", "-"))
    assert drifted["industry"] > 0.25 and drifted["estimated_budget"] > 0.25
    assert drifted["web_visits"] < 0.05


def _month(k: int, jump: float, n: int = 1500) -> pd.DataFrame:
    leads = make_leads(n, seed=500 + k, drift=0.45 + jump, drift_at=1.0,
                       start=pd.Timestamp(MONTHS[k][:10]) - pd.Timedelta(days=1), days=0.9)
    leads["lead_id"] = f"M{k}-" + leads["lead_id"]
    return leads


@pytest.fixture
def runs(champion, tmp_path):
    """Three monthly scoring runs of the champion, the third after the rate jumped (base
    log-odds +1.2), and their outcomes."""
    return _score_months(tmp_path, [_month(k, jump) for k, jump in enumerate([0.0, 0.0, 1.2])])


def _score_months(tmp_path, months: list[pd.DataFrame]):
    """Month k's leads scored by the champion at MONTHS[k] (runs m0.csv, m1.csv, ... in
    ``runs/``), and their outcomes in one table."""
    folder = tmp_path / "runs"
    for k, leads in enumerate(months):
        leads.drop(columns=["true_probability", "converted", "converted_at"]).to_csv(
            tmp_path / f"m{k}.csv", index=False)
        result = CliRunner().invoke(app, ["score", str(tmp_path / f"m{k}.csv"), "--output",
                                          str(folder / f"m{k}.csv"), "--scored-at", MONTHS[k],
                                          "--no-reasons"])
        assert result.exit_code == 0, result.output
    pd.concat(m[["lead_id", "converted"]] for m in months).to_csv(
        tmp_path / "outcomes.csv", index=False)
    return folder, tmp_path / "outcomes.csv"


@pytest.fixture
def private_store(trained_store, tmp_path, monkeypatch):
    """A copy of the session's store, for tests that register versions and move aliases
    (the shared champion stays version 1 for every other test)."""
    copy = tmp_path / "private.db"
    shutil.copy(trained_store.removeprefix("sqlite:///"), copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{copy}")
    return copy


def _monitor(folder, outcomes, out, *extra):
    return CliRunner().invoke(app, ["monitor", "--scored", str(folder), "--outcomes",
                                    str(outcomes), "--converted-column", "converted",
                                    "--horizon-days", "30", "--output", str(out),
                                    "--max-gap", "0.05", *extra])


@pytest.mark.slow
def test_monitor_flags_the_run_after_the_rate_jumped_and_exits_7(runs, tmp_path):
    folder, outcomes = runs
    result = _monitor(folder, outcomes, tmp_path / "mon", "--as-of", "2026-10-05")
    assert result.exit_code == 7, result.output
    report = json.loads((tmp_path / "mon" / "monitor.json").read_text())
    flagged = {a["period"] for a in report["alerts"] if a["kind"] == "calibration"}
    assert flagged == {f"{MONTHS[2]} m2.csv"}  # the jump, and nothing before it
    rows = {r["period"]: r for r in report["periods"]}
    jumped, before = rows[f"{MONTHS[2]} m2.csv"], rows[f"{MONTHS[0]} m0.csv"]
    assert jumped["predicted_rate"] < jumped["realised_low"]
    assert jumped["realised_rate"] - jumped["predicted_rate"] > 0.10
    assert abs(before["realised_rate"] - before["predicted_rate"]) < 0.05
    assert all(r["matured"] == r["scored"] == 1500 for r in report["periods"])
    assert before["qualification_rate"] > 0 and before["sql_over_nurture"] > 1
    assert before["score_psi"] is not None and before["score_psi"] < 0.25
    # Input drift per field, from the nightly files the manifests name (still unchanged).
    assert set(before["input_psi"]) >= {"estimated_budget", "industry", "lead_source"}
    assert max(before["input_psi"].values()) < 0.25
    grades = report["breakdowns"][f"{MONTHS[0]} m0.csv | leadml v1"]["grade"]
    assert [g["grade"] for g in grades] == sorted(g["grade"] for g in grades)
    assert "ALERT" in result.output and "leadml recalibrate" in result.output
    assert (tmp_path / "mon" / "periods.csv").exists()
    page = (tmp_path / "mon" / "monitor.html").read_text()
    assert "leads converted more often than predicted" in page.split("Per grade")[1]
    assert page.index(f"{MONTHS[2][:10]} m2.csv: grade") < page.index("<details>")


@pytest.mark.slow
def test_a_run_whose_export_left_a_field_empty_is_an_alert(champion, tmp_path):
    """The night the export lost a field (every lead's industry blank), the run's warning
    is an alert of that run in the monitoring, beside its outcomes, and exits 7."""
    lost = _month(1, 0.0, n=400).assign(industry="")
    folder, outcomes = _score_months(tmp_path, [_month(0, 0.0, n=400), lost])
    result = _monitor(folder, outcomes, tmp_path / "mon", "--as-of", "2026-10-05",
                      "--max-gap", "1")
    assert result.exit_code == 7, result.output
    alerts = json.loads((tmp_path / "mon" / "monitor.json").read_text())["alerts"]
    empty = [a for a in alerts if a["kind"] == "empty_field"]
    assert [a["period"] for a in empty] == [f"{MONTHS[1]} m1.csv"]
    assert "'industry' is empty for 100% of the 400 leads scored" in empty[0]["message"]


@pytest.mark.slow
def test_a_lead_scored_by_overlapping_runs_counts_once_per_week_and_in_recalibration(
        champion, tmp_path):
    """Nightly exports of the leads changed in the last two days score a lead twice: each
    run still shows it, but a week counts it once and recalibration fits on it once (it
    weighed twice before)."""
    leads = _month(0, 0.0, n=600)
    leads.drop(columns=["true_probability", "converted", "converted_at"]).to_csv(
        tmp_path / "m.csv", index=False)
    leads[["lead_id", "converted"]].to_csv(tmp_path / "outcomes.csv", index=False)
    folder = tmp_path / "runs"
    for night, when in enumerate(("2026-07-01T06:00:00Z", "2026-07-02T06:00:00Z")):
        result = CliRunner().invoke(app, ["score", str(tmp_path / "m.csv"), "--output",
                                          str(folder / f"n{night}.csv"), "--scored-at", when,
                                          "--no-reasons"])
        assert result.exit_code == 0, result.output
    for by, scored in (("run", [600, 600]), ("week", [600])):
        result = _monitor(folder, tmp_path / "outcomes.csv", tmp_path / by, "--as-of",
                          "2026-10-05", "--by", by, "--max-gap", "1")
        report = json.loads((tmp_path / by / "monitor.json").read_text())
        assert [r["scored"] for r in report["periods"]] == scored, by
        assert report["note"].startswith("600 leads scored in 2 run(s) (600 of the scorings "
                                         "repeat a lead)")
    result = CliRunner().invoke(app, [
        "recalibrate", "--scored", str(folder), "--outcomes", str(tmp_path / "outcomes.csv"),
        "--converted-column", "converted", "--horizon-days", "30", "--as-of", "2026-10-05",
        "--min-leads", "1000"])
    assert result.exit_code == 3 and "600 matured leads were scored by the champion" in \
        result.output, result.output


@pytest.mark.slow
def test_leads_not_yet_matured_are_estimated_never_counted(runs, tmp_path):
    folder, outcomes = runs
    result = _monitor(folder, outcomes, tmp_path / "mon", "--as-of", "2026-09-20")
    assert result.exit_code == 0, result.output  # the jumped run has not matured: no alert
    rows = {r["period"]: r for r in json.loads(
        (tmp_path / "mon" / "monitor.json").read_text())["periods"]}
    young = rows[f"{MONTHS[2]} m2.csv"]
    assert young["matured"] == 0 and young["unmatured"] == 1500
    assert young["estimated_conversions_unmatured"] > 0
    assert "estimate" in (tmp_path / "mon" / "monitor.html").read_text()


def test_the_first_night_page_says_outcomes_are_not_known_yet_and_draws_no_empty_chart(
        runs, tmp_path):
    """Monitoring the night after the first scoring: nothing has matured, so no chart, no
    'nan', the terms explained beside the table and a sentence in their place."""
    folder, outcomes = runs
    first = tmp_path / "first"
    first.mkdir()
    for name in ("m0.csv", "m0.manifest.json", "m0.rejects.csv"):
        (first / name).write_bytes((folder / name).read_bytes())
    result = _monitor(first, outcomes, tmp_path / "mon", "--as-of", "2026-07-02")
    assert result.exit_code == 0, result.output
    assert "nan" not in result.output and "not enough outcomes yet" in result.output
    page = (tmp_path / "mon" / "monitor.html").read_text()
    assert "<img" not in page and "nan" not in page.replace("nance", "")
    assert "Not enough outcomes yet" in page and "What the columns mean" in page
    for term in ("outcome known", "calibration error", "ranking (ROC AUC)",
                 "sales-qualified vs nurture"):
        assert page.count(term) >= 2, term  # a column, and its sentence


def test_chart_labels_are_whole_dates_and_files():
    from leadml.monitoring.outcomes import period_words as tick

    assert tick("week of 2026-04-06") == "week of 2026-04-06"
    assert tick("2026-07-01T02:15:00Z nightly.csv") == "2026-07-01 nightly.csv"
    assert tick("2026-07-01T02:15:00Z scored.csv in /data/eu") == "2026-07-01 scored.csv"


@pytest.mark.slow
def test_a_failed_or_changed_run_is_skipped_with_its_reason(runs, tmp_path):
    folder, _ = runs
    manifest = folder / "m0.manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "status": "failed: interrupted"}))
    (folder / "m1.csv").write_text((folder / "m1.csv").read_text() + "\n")
    scored = read_scored([folder])
    assert len(scored.runs) == 1 and len(scored.skipped) == 2
    assert any("not valid" in s for s in scored.skipped)
    assert any("changed since" in s for s in scored.skipped)


@pytest.mark.slow
def test_recalibrate_fixes_the_next_month_and_keeps_its_lineage(runs, private_store,
                                                                tmp_path):
    from leadml.registry import model_version, tracking_uri
    from leadml.registry.store import client
    from leadml.training.metrics import expected_calibration_error

    folder, outcomes = runs
    result = CliRunner().invoke(app, [
        "recalibrate", "--scored", str(folder / "m2.csv"), "--outcomes", str(outcomes),
        "--converted-column", "converted", "--horizon-days", "30", "--as-of", "2026-10-05"])
    assert result.exit_code == 0, result.output
    assert "version 2 promoted to champion" in result.output
    champion = model_version("models:/leadml@champion")
    assert champion["version"] == "2"
    mv = client(tracking_uri()).get_model_version("leadml", "2")
    assert mv.tags["parent_version"] == "1"
    assert int(mv.tags["recalibrated_on_leads"]) == 1050  # 70% of the run, 30% held out
    # The next month, the rate still high: the recalibrated champion against the first.
    nxt = _month(3, 1.2)
    nxt.drop(columns=["true_probability", "converted", "converted_at"]).to_csv(
        tmp_path / "m3.csv", index=False)
    for model, out in (("models:/leadml/1", "first.csv"), ("models:/leadml@champion",
                                                            "recal.csv")):
        done = CliRunner().invoke(app, ["score", str(tmp_path / "m3.csv"), "--output",
                                        str(tmp_path / out), "--model", model,
                                        "--scored-at", MONTHS[3], "--no-reasons"])
        assert done.exit_code == 0, done.output
    y = nxt["converted"].to_numpy()
    ece = {out: expected_calibration_error(y, pd.read_csv(tmp_path / out)[
        "conversion_probability"].to_numpy()) for out in ("first.csv", "recal.csv")}
    assert ece["recal.csv"] <= 0.5 * ece["first.csv"], ece
    # The report of the recalibrated version works (its parent's, shifted).
    report = CliRunner().invoke(app, ["report", "--output", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output


@pytest.mark.slow
def test_recalibrate_needs_enough_matured_leads(runs, private_store, tmp_path):
    folder, outcomes = runs
    result = CliRunner().invoke(app, [
        "recalibrate", "--scored", str(folder / "m2.csv"), "--outcomes", str(outcomes),
        "--converted-column", "converted", "--horizon-days", "30", "--as-of", "2026-09-20"])
    assert result.exit_code == 3 and "needs at least 500" in result.output


def test_outcomes_with_a_repeated_lead_or_an_unreadable_time_stop(tmp_path):
    from leadml.errors import LeadDataError
    from leadml.monitoring.outcomes import read_outcomes

    (tmp_path / "o.csv").write_text("lead_id,won_at\na,2026-01-01\na,\n")
    with pytest.raises(LeadDataError, match="more than once"):
        read_outcomes(tmp_path / "o.csv", converted_at="won_at")
    (tmp_path / "o.csv").write_text("lead_id,won_at\na,01/02/2026\nb,\n")
    with pytest.raises(LeadDataError, match="--time-format"):
        read_outcomes(tmp_path / "o.csv", converted_at="won_at")
    found = read_outcomes(tmp_path / "o.csv", converted_at="won_at", time_format="%d/%m/%Y")
    assert found["converted_at"].notna().tolist() == [True, False]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")
def test_monitoring_page_renders_in_headless_chromium(runs, tmp_path):
    folder, outcomes = runs
    _monitor(folder, outcomes, tmp_path / "mon", "--as-of", "2026-10-05")
    decoded, total, dom = images_in_chromium((tmp_path / "mon" / "monitor.html").read_text(),
                                             tmp_path)
    assert decoded == total >= 1, dom[:300]
    assert "the conversion rate has moved" in dom
    shot = screenshot(tmp_path / "mon" / "monitor.html", tmp_path / "monitor.png", "1200,1600")
    assert shot.exists() and shot.stat().st_size > 20_000
    assert np.isfinite(json.loads((tmp_path / "mon" / "monitor.json").read_text())[
        "periods"][0]["ece"])


@pytest.mark.slow
def test_monitor_arguments_that_cannot_work_are_refused_before_anything_is_written(
        runs, tmp_path):
    folder, outcomes = runs
    both = CliRunner().invoke(app, ["monitor", "--scored", str(folder), "--outcomes",
                                    str(outcomes), "--output", str(tmp_path / "m")])
    assert both.exit_code == 2 and "--converted-at-column" in both.output
    (tmp_path / "file").write_text("x")
    clash = _monitor(folder, outcomes, tmp_path / "file")
    assert clash.exit_code == 2 and "is a file" in clash.output
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = _monitor(empty, outcomes, tmp_path / "m")
    assert nothing.exit_code == 3 and "no scoring manifests" in nothing.output
    missing = _monitor(folder, tmp_path / "nope.csv", tmp_path / "m")
    assert missing.exit_code == 3 and "does not exist" in missing.output
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_without_a_horizon_open_leads_are_never_read_as_lost(runs, tmp_path):
    """The model has no horizon: tonight's open leads read Converted=0, and monitor used
    to count them as matured (0.0% realised, "run leadml recalibrate"). Now it refuses
    with exit 2, unless the outcomes are declared final."""
    folder, outcomes = runs
    args = ["monitor", "--scored", str(folder), "--outcomes", str(outcomes),
            "--converted-column", "converted", "--output", str(tmp_path / "m")]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "--horizon-days" in refused.output \
        and "--outcomes-final" in refused.output, refused.output
    assert not (tmp_path / "m").exists()
    final = CliRunner().invoke(app, [*args, "--outcomes-final", "--max-gap", "1"])
    assert final.exit_code in (0, 7), final.output
    again = CliRunner().invoke(app, ["recalibrate", "--scored", str(folder), "--outcomes",
                                     str(outcomes), "--converted-column", "converted"])
    assert again.exit_code == 2 and "--horizon-days" in again.output


@pytest.mark.slow
def test_outcomes_that_match_nothing_stop_the_job_instead_of_reading_as_a_finding(
        runs, tmp_path):
    """Unknown ids, a table with a header only, a Y/N flag read with the default values:
    each read as "0% realised against 13% predicted" and exit 7 (and recalibrate
    registered a near-zero challenger). Now exit 3 with the counts and examples; a
    Parquet id column pandas made float (1001.0) matches as the same ids."""
    folder, outcomes = runs
    table = pd.read_csv(outcomes, dtype=str)
    cases = {
        "unknown": table.assign(lead_id="X" + table["lead_id"]),
        "header only": table.head(0),
        "won/lost": table.assign(converted=np.where(table["converted"] == "1", "Won",
                                                    "Lost")),
    }
    for name, frame in cases.items():
        path = tmp_path / f"{name.replace(' ', '_').replace('/', '')}.csv"
        frame.to_csv(path, index=False)
        result = _monitor(folder, path, tmp_path / "m")
        assert result.exit_code == 3, (name, result.output)
        assert not (tmp_path / "m").exists()
    assert "of the 4,500 scored leads whose outcome is due" in _monitor(
        folder, tmp_path / "unknown.csv", tmp_path / "m").output
    flags = _monitor(folder, tmp_path / "wonlost.csv", tmp_path / "m")
    assert "'won': " in flags.output and "--positive-value" in flags.output
    fixed = _monitor(folder, tmp_path / "wonlost.csv", tmp_path / "m", "--positive-value",
                     "won", "--negative-value", "lost", "--as-of", "2026-10-05")
    plain = _monitor(folder, outcomes, tmp_path / "plain", "--as-of", "2026-10-05")
    assert fixed.exit_code == plain.exit_code == 7, fixed.output
    # A Y/N flag reads by default (it read as never converted before).
    table.assign(converted=np.where(table["converted"] == "1", "Y", "N")).to_csv(
        tmp_path / "yn.csv", index=False)
    yn = _monitor(folder, tmp_path / "yn.csv", tmp_path / "yn", "--as-of", "2026-10-05")
    assert yn.exit_code == 7
    assert json.loads((tmp_path / "yn" / "monitor.json").read_text())["periods"] == \
        json.loads((tmp_path / "plain" / "monitor.json").read_text())["periods"]
    recal = CliRunner().invoke(app, [
        "recalibrate", "--scored", str(folder), "--outcomes", str(tmp_path / "unknown.csv"),
        "--converted-column", "converted", "--horizon-days", "30", "--as-of", "2026-10-05"])
    assert recal.exit_code == 3, recal.output


@pytest.mark.slow
def test_numeric_ids_match_however_the_files_typed_them(champion, tmp_path):
    leads = _month(0, 0.0, n=400)
    leads["lead_id"] = np.arange(1001, 1401)
    folder, _ = _score_months(tmp_path, [leads])
    outcomes = leads[["lead_id", "converted"]].astype({"lead_id": float})
    outcomes.to_parquet(tmp_path / "outcomes.parquet")  # 1001.0, as pandas writes a float id
    result = _monitor(folder, tmp_path / "outcomes.parquet", tmp_path / "m", "--as-of",
                      "2026-10-05", "--max-gap", "1")
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "m" / "monitor.json").read_text())["periods"][0]
    assert row["matured"] == 400 and row["converted"] == int(leads["converted"].sum())


@pytest.mark.slow
def test_runs_that_share_a_name_are_told_apart_and_a_moved_folder_is_found(runs, tmp_path):
    """Two regions each writing scored.csv at the same --scored-at, and one run passed
    twice under two spellings: monitor exited 1 ("Categorical categories must be
    unique"). A runs folder archived elsewhere was refused as "output gone"."""
    folder, outcomes = runs
    for region in ("north", "south"):
        (tmp_path / region).mkdir()
        for name in ("m0.csv", "m0.manifest.json"):
            shutil.copy(folder / name, tmp_path / region / name)
    archive = tmp_path / "archive"
    shutil.copytree(folder, archive)
    shutil.rmtree(folder)
    result = CliRunner().invoke(app, [
        "monitor", "--scored", str(tmp_path / "north"), "--scored", str(tmp_path / "south"),
        "--scored", str(archive), "--scored", str(archive / "." / "m1.csv"), "--outcomes",
        str(outcomes), "--converted-column", "converted", "--horizon-days", "30",
        "--output", str(tmp_path / "mon"), "--as-of", "2026-10-05", "--max-gap", "1"])
    assert result.exit_code in (0, 7), result.output
    report = json.loads((tmp_path / "mon" / "monitor.json").read_text())
    periods = [r["period"] for r in report["periods"]]
    assert len(periods) == len(set(periods)) == 5, periods  # north, south, m0, m1, m2
    assert "skipped" not in report["note"]
    assert "{'" not in (tmp_path / "mon" / "periods.csv").read_text()
    assert "NaN" not in (tmp_path / "mon" / "monitor.json").read_text()


@pytest.mark.slow
def test_recalibration_never_promotes_behind_a_newer_champion(runs, private_store):
    """A version promoted while a recalibration ran was never compared with it: the
    recalibration registers, stays challenger, and says why."""
    from leadml.jobs import OutcomeSource, recalibrate
    from leadml.registry import model_version
    from leadml.registry.recalibration import register_recalibrated
    from leadml.registry.store import client, tracking_uri

    folder, outcomes = runs
    source = OutcomeSource(outcomes, converted_column="converted")
    first = recalibrate([folder / "m2.csv"], source, horizon_days=30, as_of="2026-10-05")
    assert first["promoted"] and model_version("models:/leadml@champion")["version"] == "2"
    mv = client(tracking_uri()).get_model_version("leadml", "2")
    assert mv.tags["parent_version"] == "1"  # registered with its lineage
    run = client(tracking_uri()).get_run(first["run_id"])
    assert run.data.tags["leadml.pid"] and run.info.status == "FINISHED"
    # A recalibration of version 1 that started before version 2 was promoted:
    from leadml.registry import load_model

    late = register_recalibrated(
        load_model("models:/leadml/2"), parent_uri="models:/leadml/1",
        lineage={"leads_fitted": 1}, shift=lambda p: p, promote=True,
        decision="version (recalibrated) promoted to champion", numbers={})
    assert not late["promoted"] and "version 2 became champion while it ran" in \
        late["decision"]
    assert model_version("models:/leadml@champion")["version"] == "2"


def test_the_recalibration_gate_refuses_a_worse_ranking_too_few_leads_and_empty_labels():
    from leadml.config import PromotionConfig
    from leadml.registry.promotion import recalibration

    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.6, 3000)
    y = (rng.random(3000) < p).astype(int)
    shifted = np.clip(p * 0.9, 0, 1)
    common = {"champion_version": "1", "cfg": PromotionConfig()}
    ok = recalibration("(r)", y=y, p_champion=p * 1.3, p_new=shifted, recorded_auc=0.70,
                       labels=({"sales_qualified": 300, "nurture": 2000, "disqualified": 700},
                               {"sales_qualified": 280, "nurture": 2000, "disqualified": 720}),
                       **common)
    assert ok.promote, ok.message
    worse = recalibration("(r)", y=y, p_champion=p * 1.3, p_new=shifted, recorded_auc=0.95,
                          labels=({"nurture": 10}, {"nurture": 10}), **common)
    assert not worse.promote and "ranking is worse" in worse.message
    few = recalibration("(r)", y=y[:50], p_champion=p[:50], p_new=shifted[:50],
                        recorded_auc=None, labels=({}, {}), **common)
    assert not few.promote and "min_held_out_leads" in few.message
    emptied = recalibration("(r)", y=y, p_champion=p * 1.3, p_new=shifted, recorded_auc=None,
                            labels=({"sales_qualified": 291, "disqualified": 1709},
                                    {"sales_qualified": 0, "disqualified": 2000}), **common)
    assert not emptied.promote and "none of the held-out leads sales_qualified" in \
        emptied.message
    unknown = recalibration("(r)", y=y, p_champion=p * 1.3, p_new=shifted,
                            recorded_auc=None, labels=None, **common)
    assert not unknown.promote and "--rules" in unknown.message


def test_training_is_not_promoted_on_a_handful_of_test_leads():
    """The promotion gate accepted a challenger on 12 test leads."""
    from leadml.config import PromotionConfig
    from leadml.registry.promotion import decide

    y = np.array([0, 1] * 6)
    ours = {"log_loss": 0.1, "roc_auc": 0.99}
    few = decide("2", ours, champion_version="1", y_test=y, p_champion=np.full(12, 0.5),
                 cfg=PromotionConfig(), test_first_time="", champion_train_end=None)
    assert not few.promote and "12 leads with 6 conversions" in few.message


@pytest.mark.slow
def test_monitoring_tracks_realised_against_predicted_per_fit_and_engagement_cell(
        champion, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text((REPO / "pipelines" / "configs" / "bant.yaml").read_text()
                     + "\naxes:\n  fit: [industry, company_size, job_title]\n"
                     "  engagement: [web_visits, email_opens, meetings]\n")
    folder = tmp_path / "runs"
    months = [_month(k, jump) for k, jump in enumerate([0.0, 1.2])]
    for k, leads in enumerate(months):
        leads.drop(columns=["true_probability", "converted", "converted_at"]).to_csv(
            tmp_path / f"m{k}.csv", index=False)
        done = CliRunner().invoke(app, ["score", str(tmp_path / f"m{k}.csv"), "--output",
                                        str(folder / f"m{k}.csv"), "--scored-at", MONTHS[k],
                                        "--rules", str(rules)])
        assert done.exit_code == 0, done.output
    pd.concat(m[["lead_id", "converted"]] for m in months).to_csv(tmp_path / "o.csv",
                                                                  index=False)
    result = _monitor(folder, tmp_path / "o.csv", tmp_path / "mon", "--as-of", "2026-10-05")
    assert result.exit_code == 7, result.output  # (the jump)
    report = json.loads((tmp_path / "mon" / "monitor.json").read_text())
    for key, parts in report["breakdowns"].items():
        cells = parts["cell"]
        assert {r["cell"] for r in cells} <= {f"{g}{e}" for g in "ABCD" for e in "1234"}
        assert sum(r["matured"] for r in cells) == 1500, key
    page = (tmp_path / "mon" / "monitor.html").read_text()
    assert "leads (fit and engagement) converted more often than predicted" in page
