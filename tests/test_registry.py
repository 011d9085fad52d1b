"""End to end through a real MLflow SQLite store in a temporary folder."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from leadml.cli import app
from leadml.config import load_config, load_rules
from leadml.errors import ModelUnavailableError
from leadml.jobs import train as train_job
from leadml.registry import TRUSTED_TYPES, input_example, load_model, model_version, tracking_uri
from tests.helpers import REPO, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def config(tmp_path, sample_files):
    return write_config(tmp_path, sample_files / "leads.csv")


def test_train_registers_and_promotes_the_first_champion(config, sample_files):
    result, reg = train_job(load_config(config))
    assert reg.promoted and reg.version == "1"
    model = load_model("models:/leadml@champion")
    nightly = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    p = model.predict_proba(nightly)[:, 1]
    assert p.shape == (600,) and ((p > 0) & (p < 1)).all()
    assert model_version("models:/leadml@champion")["version"] == "1"

    client = MlflowClient()
    run = client.get_run(reg.run_id)
    assert run.data.metrics["test_roc_auc"] == pytest.approx(result.test_metrics["roc_auc"])
    for key in ("test_brier", "test_ece", "test_log_loss", "test_lift_10", "test_pr_auc",
                "test_roc_auc_ci_low", "test_uncalibrated_brier"):
        assert key in run.data.metrics
    assert run.data.params["data_rows"] == "8000"
    assert run.info.run_name.startswith("train leadml: ") and "(8,000 leads)" in \
        run.info.run_name
    assert len(run.data.params["data_sha256"]) == 64
    from leadml import __version__

    assert client.get_run(reg.run_id).data.tags["leadml.version"] == __version__
    artifacts = {a.path for a in client.list_artifacts(reg.run_id)}
    assert {"plots", "config", "evaluation", "model_card.md"} <= artifacts
    plots = {Path(a.path).name for a in client.list_artifacts(reg.run_id, "plots")}
    assert plots == {"reliability.png", "roc.png", "precision_recall.png", "cumulative_gain.png"}
    # MLflow's conventions: every setting a param, the data a dataset, candidates as child
    # runs, the experiment marked as model training.
    params = run.data.params
    assert params["config.model.C"] == "1.0" and params["config.split.test"] == "0.2"
    assert params["classifier_C"] == "1.0" or params["classifier_learning_rate"] == "0.06"
    (used,) = run.inputs.dataset_inputs
    assert used.dataset.name == "leads.csv" and used.dataset.digest == \
        params["data_sha256"][:16]
    assert json.loads(used.dataset.profile)["num_rows"] == 8000
    schema = json.loads(used.dataset.schema)["mlflow_colspec"]  # encoders.distinct_rows
    assert [(c["name"], c["type"]) for c in schema][-2:] == [("job_title", "string"),
                                                              ("converted", "long")]
    assert {t.key: t.value for t in used.tags}["mlflow.data.context"] == "training"
    children = client.search_runs([run.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{reg.run_id}'")
    assert sorted(c.data.params["model_kind"] for c in children) == \
        ["gradient_boosting", "logistic_regression"]
    assert [c.data.tags["leadml.chosen"] for c in children].count("True") == 1
    assert all("calibration_window_roc_auc" in c.data.metrics for c in children)
    assert client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == \
        "custom_model_development"
    assert reg.page().endswith(f"/runs/{reg.run_id}?workflowType=machine_learning")


def test_a_worse_model_stays_challenger_and_a_human_can_force_it(tmp_path, sample_files):
    good = write_config(tmp_path, sample_files / "leads.csv")
    train_job(load_config(good))
    weak_dir = tmp_path / "weak"
    weak_dir.mkdir()
    weak = write_config(weak_dir, sample_files / "leads.csv", model={
        "candidates": ["logistic_regression"]})
    raw = weak.read_text().replace(
        "numeric:\n    - estimated_budget\n    - web_visits\n    - email_opens\n"
        "    - form_fills\n    - meetings", "numeric:\n    - email_opens")
    weak.write_text(raw)
    _, reg = train_job(load_config(weak))
    assert not reg.promoted and "stays challenger" in reg.decision
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("leadml", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("leadml", "challenger").version) == "2"
    run = client.get_run(reg.run_id)
    assert run.data.metrics["champion_log_loss"] < run.data.metrics["challenger_log_loss"]

    _, forced = train_job(load_config(weak), force_promote=True)
    assert forced.promoted and "--force-promote" in forced.decision
    assert str(client.get_model_version_by_alias("leadml", "champion").version) == "3"


@pytest.mark.parametrize("drift", [None, {"method": "known_rate", "base_rate": 0.4}])
def test_saved_model_is_skops_with_a_complete_allow_list(tmp_path, sample_files, drift):
    config = write_config(tmp_path, sample_files / "leads.csv",
                          **({"drift": drift} if drift else {}))
    result, reg = train_job(load_config(config))
    if drift:  # the drift correction travels inside the registered model
        loaded = load_model(reg.uri)
        assert type(loaded).__name__ == "ConversionProbability"  # what MLflow serves
        assert type(loaded.model).__name__ == "RateShifted"
        np.testing.assert_allclose(loaded.predict_proba(result.X_test)[:, 1], result.p_test)
        assert result.p_test.mean() > 0.3
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=reg.uri))
    assert (local / "model.skops").exists() and not list(local.glob("*.pkl"))
    untrusted = skops.io.get_untrusted_types(file=local / "model.skops")
    assert set(untrusted) <= set(TRUSTED_TYPES)
    example = json.loads((local / "input_example.json").read_text())
    assert "lead_id" not in json.dumps(example)
    requirements = (local / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "skops==" in requirements


def test_input_example_is_made_up_not_a_real_row():
    frame = pd.DataFrame({"budget": ["1", "3", "100"], "title": ["CEO", "CEO", "Jane Doe, VP"]})
    example = input_example(frame, numeric=("budget",))
    assert example.to_dict("records") == [{"budget": 3.0, "title": "CEO"}]


def test_default_store_is_in_the_leadml_home_not_the_current_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("LEADML_HOME", str(tmp_path / "home"))
    assert tracking_uri() == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert tracking_uri("http://mlflow.example:5000") == "http://mlflow.example:5000"


def test_missing_model_is_a_clear_error():
    with pytest.raises(ModelUnavailableError, match="cannot find model 'models:/nope@champion'"):
        load_model("models:/nope@champion")


def test_cli_train_and_its_exit_codes(tmp_path, config, sample_files):
    runner = CliRunner()
    rules = tmp_path / "team_rules.yaml"  # the team's grades, not the shipped ones
    team = yaml.safe_load((REPO / "pipelines/configs/bant.yaml").read_text())
    team["grades"] = {"method": "probability", "A": 0.55, "B": 0.33, "C": 0.11}
    rules.write_text(yaml.safe_dump(team))
    ok = runner.invoke(app, ["train", "--config", str(config), "--rules", str(rules)])
    assert ok.exit_code == 0, ok.output
    assert "promotion: version 1 is the first champion" in ok.output
    assert "mlflow ui --backend-store-uri sqlite:///" in ok.output
    run_id = MlflowClient().get_model_version("leadml", "1").run_id
    page = Path(mlflow.artifacts.download_artifacts(run_id=run_id,
                                                    artifact_path="report/report.html"))
    assert "A from 55.0%, B from 33.0%, C from 11.0%" in page.read_text()
    assert MlflowClient().get_run(run_id).data.tags["leadml.report_rules_sha256"] == \
        load_rules(rules).sha256

    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text(config.read_text().replace("model:", "modle:"))
    out = runner.invoke(app, ["train", "--config", str(bad_config)])
    assert out.exit_code == 2 and "modle: unknown key" in out.output

    broken = tmp_path / "broken.csv"
    pd.read_csv(sample_files / "leads.csv").drop(columns=["meetings"]).to_csv(broken, index=False)
    out = runner.invoke(app, ["train", "--config", str(write_config(tmp_path, broken))])
    assert out.exit_code == 3 and "missing 1 column(s) ['meetings']" in out.output


def test_cli_sample_is_deterministic(tmp_path):
    runner = CliRunner()
    for name in ("a", "b"):
        out = runner.invoke(app, ["sample", "--out", str(tmp_path / name), "--rows", "300",
                                  "--seed", "5"])
        assert out.exit_code == 0, out.output
    for file in ("leads.csv", "nightly.csv"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    nightly = pd.read_csv(tmp_path / "a" / "nightly.csv")
    assert len(nightly) == 30 and "converted" not in nightly.columns
    assert np.isfinite(pd.read_csv(tmp_path / "a" / "leads.csv")["true_probability"]).all()


def test_mlflow_pyfunc_serving_accepts_a_lead_file_as_pandas_reads_it(
        config, sample_files, monkeypatch):
    """MLflow's own tools (pyfunc, models predict, serve) give the calibrated probability
    of converting, the same as leadml score, for a lead file read by pandas (floats, blank
    budgets) or read as text."""
    from leadml.model.wrappers import ConversionProbability

    _, reg = train_job(load_config(config))
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    pyfunc = mlflow.pyfunc.load_model(reg.uri)
    nightly = pd.read_csv(sample_files / "nightly.csv")
    assert nightly["estimated_budget"].isna().any() and nightly["job_title"].isna().any()
    predictions = np.asarray(pyfunc.predict(nightly), dtype=float).ravel()
    assert predictions.shape == (600,) and ((predictions > 0) & (predictions < 1)).all()
    model = load_model(reg.uri)
    assert isinstance(model, ConversionProbability)
    as_text = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    np.testing.assert_allclose(predictions, model.predict_proba(as_text)[:, 1], atol=1e-12)
    np.testing.assert_allclose(np.asarray(pyfunc.predict(as_text), dtype=float).ravel(),
                               predictions, atol=1e-12)
    with pytest.raises(TypeError, match="not refitted"):  # no quiet refit of a loaded model
        from sklearn.base import clone

        clone(model).fit(as_text, np.zeros(len(as_text)))


@pytest.mark.slow
def test_mlflow_models_serve_returns_the_probability_leadml_score_gives(
        champion, sample_files, tmp_path):
    """`mlflow models serve` on 127.0.0.1, three leads posted as exported (text): the same
    probabilities as `leadml score`."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    leads = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False).head(3)
    leads.to_csv(tmp_path / "three.csv", index=False)
    scored = CliRunner().invoke(app, ["score", str(tmp_path / "three.csv"), "--output",
                                      str(tmp_path / "out.csv"), "--no-reasons"])
    assert scored.exit_code == 0, scored.output
    expected = pd.read_csv(tmp_path / "out.csv")["conversion_probability"].to_numpy()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # MLflow starts uvicorn through a shell: the environment's bin folder goes on PATH.
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m",
         "models:/leadml@champion", "--host", "127.0.0.1", "--port", str(port),
         "--env-manager", "local", "--workers", "1"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        body = json.dumps({"dataframe_split": leads.to_dict(orient="split") | {
            "index": None}}).encode()
        for _ in range(120):
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations", data=body,
                    headers={"Content-Type": "application/json"})
                answer = json.loads(urllib.request.urlopen(request, timeout=5).read())
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("mlflow models serve did not answer within 60 s")
    finally:
        server.terminate()
        server.wait(timeout=30)
    served = np.asarray(answer["predictions"], dtype=float).ravel()
    np.testing.assert_allclose(served, expected, atol=1e-12)


def test_a_stopped_tracking_server_fails_fast_with_its_own_exit_code(
        config, sample_files, tmp_path, monkeypatch):
    """No server on the port: `leadml score` and `leadml train` exit 8 within seconds,
    saying the server does not answer, and change nothing (train stops before fitting)."""
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    for args in (["score", str(sample_files / "nightly.csv"), "--output",
                  str(tmp_path / "out.csv")], ["train", "--config", str(config)]):
        started = time.perf_counter()
        result = CliRunner().invoke(app, args)
        seconds = time.perf_counter() - started
        assert result.exit_code == 8, result.output
        assert "does not answer" in result.output and str(port) in result.output
        assert seconds < 15, seconds
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "out.manifest.json").exists()


@pytest.mark.slow
def test_a_hung_tracking_server_is_named_within_the_timeout(sample_files, tmp_path):
    """A server that accepts the connection and never answers (a hung process, a proxy
    with nothing behind it): `leadml score` exits 8 within LEADML_TRACKING_TIMEOUT plus
    2 s (it took 3 min 13 s and exit 5, "cannot find model", when the check was a TCP
    connect followed by MLflow's own 60 s timeouts and retries)."""
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # connections complete in the kernel; nobody reads or replies
        port = server.getsockname()[1]
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
               "LEADML_TRACKING_TIMEOUT": "3", "LEADML_HOME": str(tmp_path)}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "leadml.cli", "score",
                               str(sample_files / "nightly.csv"), "--output",
                               str(tmp_path / "out.csv")], env=env, capture_output=True,
                              text=True, timeout=120)
        seconds = time.perf_counter() - started
    assert done.returncode == 8, done.stderr[-2000:]
    assert "does not answer" in done.stderr and "timed out" in done.stderr
    assert seconds < 3 + 2, seconds
    assert not (tmp_path / "out.csv").exists()


def test_version_is_printed_and_is_the_one_version_string():
    from importlib.metadata import version

    import leadml

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"leadml {leadml.__version__}"
    assert version("leadml") == leadml.__version__  # pyproject.toml reads __version__


def test_an_exported_model_keeps_its_name_and_version_in_scored_files(tmp_path, config,
                                                                      sample_files):
    import shutil

    train_job(load_config(config))
    runner = CliRunner()
    folder = tmp_path / "export" / "leadml-champion"
    out = runner.invoke(app, ["export", "--to", str(folder)])
    assert out.exit_code == 0, out.output
    facts = json.loads((folder / "leadml_provenance.json").read_text())
    assert (facts["name"], facts["version"]) == ("leadml", "1") and facts["run_id"]
    assert runner.invoke(app, ["export", "--to", str(folder)]).exit_code == 6  # not over it

    bare = tmp_path / "bare"  # a copy without provenance: the name, and the run it came from
    shutil.copytree(folder, bare)
    (bare / "leadml_provenance.json").unlink()
    (bare / "registered_model_meta").unlink(missing_ok=True)
    for model, version in ((folder, "1"), (bare, f"unknown (run {facts['run_id'][:8]})")):
        scored = tmp_path / f"{model.name}.csv"
        done = runner.invoke(app, ["score", str(sample_files / "nightly.csv"), "-o",
                                   str(scored), "--model", str(model)])
        assert done.exit_code == 0, done.output
        frame = pd.read_csv(scored, dtype=str)
        assert set(frame["model_name"]) == {"leadml"}
        assert set(frame["model_version"]) == {version}


@pytest.mark.slow
def test_an_exported_folder_cannot_be_edited_into_another_version(tmp_path, config,
                                                                 sample_files):
    """Editing leadml_provenance.json made scored files, manifests, monitoring and
    recalibration call the model "leadml-prod v99". The provenance now records the sha256
    of the files it describes; a folder whose files or provenance were changed is exit 5
    and nothing is written."""
    import shutil

    train_job(load_config(config))
    runner = CliRunner()
    folder = tmp_path / "export"
    assert runner.invoke(app, ["export", "--to", str(folder)]).exit_code == 0
    facts = json.loads((folder / "leadml_provenance.json").read_text())
    assert set(facts["sha256"]) == {"model.skops", "MLmodel"}

    def tampered(name, change):
        copy = tmp_path / name
        shutil.copytree(folder, copy)
        change(copy)
        return copy

    def edit(path, **facts_update):
        data = json.loads((path / "leadml_provenance.json").read_text())
        (path / "leadml_provenance.json").write_text(json.dumps({**data, **facts_update}))

    cases = [
        tampered("other_model", lambda p: shutil.copy(p / "MLmodel", p / "model.skops")),
        tampered("edited_mlmodel", lambda p: (p / "MLmodel").write_text(
            (p / "MLmodel").read_text().replace("horizon_days", "horizon_days_"))),
        tampered("not_json", lambda p: (p / "leadml_provenance.json").write_text("{oops")),
        tampered("a_list", lambda p: (p / "leadml_provenance.json").write_text("[1, 2]")),
    ]
    # The provenance edited to another model, with the model's own sha256 kept:
    cases.append(tampered("renamed", lambda p: edit(p, name="leadml-prod", version="99",
                                                     sha256={"model.skops": "0" * 64})))
    for model in cases:
        out = tmp_path / f"{model.name}.csv"
        done = runner.invoke(app, ["score", str(sample_files / "nightly.csv"), "-o", str(out),
                                   "--model", str(model)])
        assert done.exit_code == 5, (model.name, done.output)
        assert not out.exists()
    # Without a provenance to check against: a missing or unreadable MLmodel, a model file
    # that is not one (emptied, truncated, a folder) is still exit 5, never a traceback.
    def bare(name, change):
        return tampered(name, lambda p: ((p / "leadml_provenance.json").unlink(), change(p)))

    for model in (bare("no_mlmodel", lambda p: (p / "MLmodel").unlink()),
                  bare("mlmodel_not_yaml", lambda p: (p / "MLmodel").write_text("a: [b")),
                  bare("emptied", lambda p: (p / "model.skops").write_bytes(b"")),
                  bare("truncated", lambda p: (p / "model.skops").write_bytes(
                      (p / "model.skops").read_bytes()[:500])),
                  bare("a_folder", lambda p: ((p / "model.skops").unlink(),
                                              (p / "model.skops").mkdir()))):
        done = runner.invoke(app, ["score", str(sample_files / "nightly.csv"), "-o",
                                   str(tmp_path / "x.csv"), "--model", str(model)])
        assert done.exit_code == 5, (model.name, done.output)
    # A 0.1 export (no sha256): scored, but its version is not vouched for.
    old = tampered("old_export", lambda p: edit(p, sha256=None))
    done = runner.invoke(app, ["score", str(sample_files / "nightly.csv"), "-o",
                               str(tmp_path / "old.csv"), "--model", str(old)])
    assert done.exit_code == 0, done.output
    assert set(pd.read_csv(tmp_path / "old.csv", dtype=str)["model_version"]) == \
        {"1 (unverified)"}


def test_the_training_runs_duration_covers_the_training(tmp_path, config):
    """The run opened after fitting: its duration read 9.7 s for a 60 s training. It now
    opens before the fit: its start is before the fit's and its duration at least the
    training's own timings."""
    import time

    started = time.time() * 1000
    result, reg = train_job(load_config(config))
    run = mlflow.MlflowClient().get_run(reg.run_id)
    took = (run.info.end_time - run.info.start_time) / 1000
    assert run.info.start_time >= started  # (a run of this training, not an older one)
    assert took >= result.timings["train_seconds"] + result.timings["importance_seconds"]
    assert run.data.tags["mlflow.runName"].startswith("train leadml: ")
