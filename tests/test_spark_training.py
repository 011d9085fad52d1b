"""Training and the audit on the Spark engine: the local engine's training, lead for lead,
when each window fits the fit budget; the newest leads of each window, cut on the cluster,
when not; and a bad history stopped with the local engine's exit codes and messages. Runs
with local[2] (PySpark from `.[spark]`, Java 17)."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadml import jobs
from leadml.cli import app
from leadml.config import load_config
from leadml.data.audit import audit_frame, conversion_times, time_to_convert
from leadml.data.schema import validate_history
from leadml.data.spark_history import OnSpark, reduce_history
from leadml.explain.importance import INSIGHT_BINS, field_insights, insights_from_counts
from leadml.training.fit import split_windows
from tests.helpers import write_config

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java")]
ON_SPARK = OnSpark(master="local[2]")


def _store(monkeypatch, folder):
    folder.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    monkeypatch.setenv("LEADML_HOME", str(folder))


def _same_training(local, spark):
    """Windows, chosen candidate, calibration choice, test metrics and probabilities."""
    assert {k: vars(w) for k, w in spark.windows.items()} == \
        {k: vars(w) for k, w in local.windows.items()}
    assert (spark.kind, spark.calibration_method, spark.drift) == \
        (local.kind, local.calibration_method, local.drift)
    assert spark.calibration_choice == local.calibration_choice
    for key, value in local.test_metrics.items():
        assert spark.test_metrics[key] == pytest.approx(value, abs=1e-9), key
    np.testing.assert_allclose(spark.p_test, local.p_test, atol=1e-12)
    assert [f.message for f in spark.audit.findings] == \
        [f.message for f in local.audit.findings]


def test_a_history_within_the_budget_trains_on_spark_as_on_one_machine(
        sample_files, tmp_path, monkeypatch):
    cfg = load_config(write_config(tmp_path, sample_files / "leads.csv"))
    _store(monkeypatch, tmp_path / "local")
    local, _ = jobs.train(cfg)
    _store(monkeypatch, tmp_path / "spark")
    spark, registered = jobs.train(cfg, spark=ON_SPARK)
    _same_training(local, spark)
    # the registered model is the one object both scoring engines load
    import leadml

    model = leadml.load_model(registered.uri)
    leads = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    scored = leadml.score_leads(leads, model)
    assert len(scored.leads) + len(scored.rejects) == len(leads)


def _crm_export(tmp_path, **model):
    """The CRM-style export (outcomes in a second table) under a 60-day horizon, its
    planted leaky fields excluded; its config."""
    from leadml.setup.synthetic_crm import write_crm_export

    export = tmp_path / "export"
    export.mkdir()
    write_crm_export(export, 4000, seed=5, nightly_rows=10)
    raw = yaml.safe_load((export / "train.yaml").read_text())
    raw["dataset"]["outcomes"]["horizon_days"] = 60
    raw["dataset"]["columns"]["excluded"] = ["Lead Quality", "Deal Amount", "Contract Type",
                                             "Activity Score", "Last Notable Activity",
                                             "Last Activity", "Lead Profile"]
    for role in ("numeric", "categorical"):
        raw["dataset"]["columns"][role] = [c for c in raw["dataset"]["columns"][role]
                                           if c not in raw["dataset"]["columns"]["excluded"]]
    raw["evaluation"] = {"bootstrap": 20}
    raw["model"] = {**raw.get("model", {}), **model}
    (export / "train.yaml").write_text(yaml.safe_dump(raw))
    return load_config(export / "train.yaml")


def test_an_export_with_outcomes_in_a_second_table_and_a_horizon_trains_alike(
        tmp_path, monkeypatch):
    cfg = _crm_export(tmp_path)
    _store(monkeypatch, tmp_path / "local")
    local, _ = jobs.train(cfg)
    _store(monkeypatch, tmp_path / "spark")
    spark, _ = jobs.train(cfg, spark=ON_SPARK)
    _same_training(local, spark)
    audit, _ = jobs.audit(cfg, spark=ON_SPARK)
    assert audit.to_dict() == jobs.audit(cfg)[0].to_dict()


def test_over_the_budget_the_driver_holds_the_newest_leads_of_each_window(
        sample_files, tmp_path):
    cfg = load_config(write_config(tmp_path, sample_files / "leads.csv",
                                   model={"max_fit_leads": 1000}))
    _, local = jobs.audited_history(cfg)
    windows = split_windows(local, cfg)
    reduced = reduce_history(cfg, ON_SPARK)
    assert reduced.facts["history_leads"] == 8000
    assert reduced.facts["windows_on_cluster"] == {w: windows[w].rows for w in windows}
    assert reduced.facts["kept_per_window"] == dict.fromkeys(windows, 1000)
    assert len(reduced.leads) == 3000
    kept_cfg = reduced.config(cfg)
    kept = validate_history(reduced.leads, kept_cfg)
    for name, window in split_windows(kept, kept_cfg).items():
        newest = local.ids.iloc[windows[name].stop - 1000:windows[name].stop]
        assert kept.ids.iloc[window.rows_slice].tolist() == newest.tolist(), name


@pytest.mark.parametrize("case", ["outcomes under a horizon", "open leads"])
def test_over_the_budget_windows_are_cut_among_the_leads_validation_labels(
        case, sample_files, tmp_path):
    # Leads too young for the horizon, and leads still open, are left out locally before
    # the windows are cut; on the cluster too, or every window would shift by their number.
    if case == "open leads":
        frame = pd.read_csv(sample_files / "leads.csv", dtype=str, keep_default_na=False)
        frame.loc[frame.index % 7 == 3, "converted"] = "open"
        frame.to_csv(tmp_path / "leads.csv", index=False)
        cfg = load_config(write_config(tmp_path, tmp_path / "leads.csv",
                                       model={"max_fit_leads": 1000}))
        target = cfg.dataset.target.model_copy(update={"negative_values": ("0",)})
        cfg = cfg.model_copy(update={"dataset": cfg.dataset.model_copy(
            update={"target": target})})
    else:
        cfg = _crm_export(tmp_path, max_fit_leads=1000)
    audit, local = jobs.audited_history(cfg)
    assert local.open_leads or local.unlabelled
    windows = split_windows(local, cfg)
    reduced = reduce_history(cfg, ON_SPARK, insight_bins=INSIGHT_BINS)
    try:
        assert reduced.split is not None  # over the budget: cut on the cluster
        assert reduced.facts["windows_on_cluster"] == {w: windows[w].rows for w in windows}
        kept_cfg = reduced.config(cfg)
        on_spark, kept = audit_frame(reduced.leads, kept_cfg, reduced.outcomes,
                                     counted=reduced.counted)
        assert (kept.as_of, kept.unlabelled, kept.open_leads, kept.outcome_values) == \
            (local.as_of, local.unlabelled, local.open_leads, local.outcome_values)
        # the audit's totals, its rate by tenth and time to convert are the whole history's
        assert (on_spark.rows, on_spark.conversions, on_spark.drift) == \
            (audit.rows, audit.conversions, audit.drift)
        assert on_spark.column_leads == len(kept.target) < audit.rows  # and says so
        assert f"the column statistics read the {len(kept.target):,} leads" in \
            on_spark.table()
        if cfg.dataset.horizon_days is None:
            whole = time_to_convert(local, conversion_times(local, cfg, None))
            assert whole is not None
            assert reduced.counted.maturity == {  # (lags in float seconds on the cluster)
                k: v if isinstance(v, str) else pytest.approx(v, rel=1e-9)
                for k, v in whole.items()}

        # and so are the field insights sales ops read
        cols, markers = cfg.dataset.columns, cfg.dataset.missing_values
        pd.testing.assert_frame_equal(
            insights_from_counts(reduced.counted.fields, cols,
                                 reduced.counted.conversions / reduced.counted.leads),
            field_insights(local.features, local.target, cols, markers))

        def whole_history(found):
            return [f.message for f in found.findings if f.kind in ("drift", "maturity")]

        assert whole_history(on_spark) == whole_history(audit)
        budget = cfg.model.max_fit_leads
        for name, window in split_windows(kept, kept_cfg).items():
            newest = local.ids.iloc[max(windows[name].start, windows[name].stop - budget):
                                    windows[name].stop]
            assert kept.ids.iloc[window.rows_slice].tolist() == newest.tolist(), name
    finally:
        reduced.close()


def test_over_the_budget_a_history_in_file_order_gets_the_whole_field_insights(
        sample_files, tmp_path):
    cfg = load_config(write_config(tmp_path, sample_files / "leads.csv",
                                   model={"max_fit_leads": 1000}))
    cfg = cfg.model_copy(update={"dataset": cfg.dataset.model_copy(
        update={"time_column": None})})  # (the file's order is the time order)
    _, local = jobs.audited_history(cfg)
    reduced = reduce_history(cfg, ON_SPARK, insight_bins=INSIGHT_BINS)
    try:
        assert reduced.split is not None and len(reduced.leads) == 3000
        assert reduced.counted.drift is None  # (no clock: the audit's rates are the kept's)
        pd.testing.assert_frame_equal(
            insights_from_counts(reduced.counted.fields, cfg.dataset.columns,
                                 reduced.counted.conversions / reduced.counted.leads),
            field_insights(local.features, local.target, cfg.dataset.columns,
                           cfg.dataset.missing_values))
    finally:
        reduced.close()


def test_over_the_budget_an_outcomes_table_without_the_configs_column_stops_as_locally(
        tmp_path, monkeypatch):
    cfg = _crm_export(tmp_path, max_fit_leads=1000)
    table = Path(cfg.dataset.outcomes.path)
    frame = pd.read_csv(table, dtype=str, keep_default_na=False)
    frame.rename(columns={cfg.dataset.outcomes.converted_at_column: "Closed"}).to_csv(
        table, index=False)
    _store(monkeypatch, tmp_path / "store")
    runner = CliRunner()
    config = str(cfg.source)
    local = runner.invoke(app, ["train", "--config", config])
    spark = runner.invoke(app, ["train", "--config", config, "--engine", "spark",
                                "--spark-master", "local[2]"])
    assert local.exit_code == spark.exit_code != 0, (local.output, spark.output)
    assert [x for x in spark.output.splitlines() if x.startswith("error:")] == \
        [x for x in local.output.splitlines() if x.startswith("error:")]


def _bad(folder, sample_files, change):
    frame = pd.read_csv(sample_files / "leads.csv", dtype=str, keep_default_na=False)
    frame = change(frame)
    path = folder / "leads.csv"
    frame.to_csv(path, index=False)
    return write_config(folder, path, model={"max_fit_leads": 1000})


@pytest.mark.parametrize("case", ["bad time", "missing column", "leaky field", "no outcome",
                                  "bad conversion time"])
def test_a_bad_history_stops_on_spark_with_the_local_exit_code_and_message(
        case, sample_files, tmp_path, monkeypatch):
    _store(monkeypatch, tmp_path / "store")
    if case == "bad time":  # an old row, far from any window the driver keeps
        config = _bad(tmp_path, sample_files,
                      lambda f: f.assign(created_at=f["created_at"].where(
                          f.index != 40, "yesterday")))
    elif case == "missing column":
        config = _bad(tmp_path, sample_files, lambda f: f.drop(columns=["industry"]))
    elif case == "no outcome":  # in an old row too
        config = _bad(tmp_path, sample_files, lambda f: f.assign(
            converted=f["converted"].where(f.index != 40, "")))
    elif case == "bad conversion time":  # read under a horizon, in an old row too
        config = _bad(tmp_path, sample_files, lambda f: f.assign(
            converted_at=f["converted_at"].where(f.index != 40, "soon")))
        raw = yaml.safe_load(config.read_text())
        raw["dataset"]["target"]["horizon_days"] = 60
        config.write_text(yaml.safe_dump(raw))
    else:
        config = _bad(tmp_path, sample_files, lambda f: f.assign(won_flag=f["converted"]))
        raw = yaml.safe_load(config.read_text())
        raw["dataset"]["columns"]["categorical"].append("won_flag")
        config.write_text(yaml.safe_dump(raw))
    runner = CliRunner()
    local = runner.invoke(app, ["train", "--config", str(config)])
    spark = runner.invoke(app, ["train", "--config", str(config), "--engine", "spark",
                                "--spark-master", "local[2]"])
    assert local.exit_code == spark.exit_code == 3, (local.output, spark.output)

    def said(result):
        line = next(x for x in result.output.splitlines() if x.startswith("error:"))
        return line if case != "bad time" else line.split(" of ")[0]  # (N of the leads read)

    assert said(spark) == said(local)
    assert "yesterday" in spark.output if case == "bad time" else True
    refused = runner.invoke(app, ["train", "--config", str(config), "--spark-master", "x"])
    assert refused.exit_code == 2 and "go with --engine spark" in refused.output


def test_the_training_commands_of_the_spark_docs_run(sample_files, tmp_path, monkeypatch):
    """docs/spark.md's audit and train commands, as written (the yarn one needs a cluster);
    a history read from a URI has no local digest, and the model card says why."""
    import shlex

    from tests.helpers import REPO

    doc = (REPO / "docs" / "spark.md").read_text()
    audit = "leadml audit --config train.yaml --engine spark"
    train = ("leadml train --config train.yaml --engine spark --input "
             "file://$PWD/history.parquet")
    assert audit in doc and train in doc
    _store(monkeypatch, tmp_path / "store")
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, sample_files / "leads.csv")
    pd.read_csv(sample_files / "leads.csv", dtype=str, keep_default_na=False).to_parquet(
        tmp_path / "history.parquet")
    runner = CliRunner()
    done = runner.invoke(app, shlex.split(audit)[1:])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, shlex.split(train.replace("$PWD", str(tmp_path)))[1:])
    assert done.exit_code == 0, done.output
    assert "registered: models:/leadml/1" in done.output
    from mlflow import MlflowClient

    card = MlflowClient().get_model_version("leadml", "1").description
    assert "Read on Spark: 8,000 leads, every one handed to the training" in card
    assert "read on Spark from cluster storage: no local digest" in card  # (a file:// URI)


def test_over_the_budget_the_test_metrics_are_those_of_the_whole_test_window(
        sample_files, tmp_path, monkeypatch):
    """The test window's older leads, not kept by the driver, are read back in chunks and
    scored: the metrics are the model's over every lead of the window, as the local engine
    would compute them for this model."""
    from leadml.explain.importance import permutation_importances
    from leadml.training import metrics as evaluation
    from leadml.training.metrics import bootstrap_intervals, metrics

    cfg = load_config(write_config(tmp_path, sample_files / "leads.csv",
                                   model={"max_fit_leads": 1000}))
    _store(monkeypatch, tmp_path / "store")
    monkeypatch.setattr(evaluation, "IMPORTANCE_LEADS", 500)  # a sample of the 1,600
    result, _ = jobs.train(cfg, spark=ON_SPARK)
    _, local = jobs.audited_history(cfg)
    test = split_windows(local, cfg)["test"]
    assert (result.windows["test"].rows, result.windows["test"].first_time) == \
        (test.rows, test.first_time)
    X = local.features.iloc[test.rows_slice][list(cfg.dataset.columns.features)]
    y = local.target[test.rows_slice]
    p = result.model.predict_proba(X)[:, 1]
    expected = metrics(y, p, bins=cfg.evaluation.calibration_bins)
    for key, value in expected.items():
        assert result.test_metrics[key] == pytest.approx(value, abs=1e-9), key
    assert result.intervals == bootstrap_intervals(y, p, n=cfg.evaluation.bootstrap,
                                                   seed=cfg.model.seed)
    assert len(result.p_test) == 1000  # the kept leads: the report's charts read them
    # the importances read the local engine's seeded sample of the whole window
    pd.testing.assert_frame_equal(result.importances, permutation_importances(
        result.model, X, y, seed=cfg.model.seed))


def test_a_backtest_on_spark_replays_a_history_the_driver_can_hold_as_locally(
        sample_files, tmp_path, monkeypatch):
    _store(monkeypatch, tmp_path / "store")
    config = write_config(tmp_path, sample_files / "leads.csv")
    runner = CliRunner()
    args = ["backtest", "--config", str(config), "--start", "0.6", "--window", "0.2"]
    local = runner.invoke(app, [*args, "-o", str(tmp_path / "local")])
    spark = runner.invoke(app, [*args, "-o", str(tmp_path / "spark"), "--engine", "spark",
                                "--spark-master", "local[2]"])
    assert local.exit_code == spark.exit_code == 0, spark.output
    def printed(result):  # every window's and the pooled numbers (not the log lines)
        return [line for line in result.output.split("files:")[0].splitlines()
                if not line.startswith("20")]

    assert printed(spark) == printed(local) and len(printed(local)) > 5
    raw = yaml.safe_load(config.read_text())
    raw["model"]["max_fit_leads"] = 1000
    config.write_text(yaml.safe_dump(raw))
    over = runner.invoke(app, [*args, "--engine", "spark", "--spark-master", "local[2]"])
    assert over.exit_code == 2 and "needs the whole history on the driver" in over.output


def test_a_config_may_name_its_history_and_outcomes_by_uri(tmp_path):
    """dataset.path and dataset.outcomes.path as URIs (kept as written, not folded into
    paths): the Spark engine reads them; the local engine says it cannot (exit 2)."""
    from leadml.setup.synthetic_crm import write_crm_export

    write_crm_export(tmp_path, 3000, seed=6, nightly_rows=10)
    raw = yaml.safe_load((tmp_path / "train.yaml").read_text())
    configs = {}
    for name, where in (("uri", Path.as_uri), ("path", str)):
        raw["dataset"]["path"] = where(tmp_path / "leads.csv")
        raw["dataset"]["outcomes"]["path"] = where(tmp_path / "outcomes.csv")
        (tmp_path / name).mkdir()
        configs[name] = tmp_path / name / "train.yaml"  # (the same lines in both)
        configs[name].write_text(yaml.safe_dump(raw))
    cfg = load_config(configs["uri"])
    assert cfg.dataset.path == (tmp_path / "leads.csv").as_uri()
    on_spark, _ = jobs.audit(cfg, spark=ON_SPARK)
    local, _ = jobs.audit(load_config(configs["path"]))
    assert on_spark.to_dict() == local.to_dict()
    refused = CliRunner().invoke(app, ["audit", "--config", str(configs["uri"])])
    assert refused.exit_code == 2 and "is a URI" in refused.output


def test_the_python_api_audits_on_spark_as_locally(sample_files, tmp_path):
    import leadml
    from leadml.errors import ConfigError

    config = write_config(tmp_path, sample_files / "leads.csv")
    on_spark = leadml.audit_leads(config, engine="spark", spark_master="local[2]",
                                  spark_conf={"spark.sql.shuffle.partitions": "4"})
    assert on_spark.to_dict() == leadml.audit_leads(config).to_dict()
    with pytest.raises(ConfigError, match="local or spark"):
        leadml.audit_leads(config, engine="dask")
