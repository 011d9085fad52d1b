"""The Spark engine's output equals the local engine's, row for row, bad rows included.
Runs with local[2] (PySpark from `.[spark]`, Java 17); skips where PySpark is absent."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from leadml.config import load_rules
from leadml.registry import load_scoring_model
from leadml.scoring import ScoreSettings, TooManyRejects, score_file
from leadml.synthetic import make_sample
from tests.conftest import REPO

pyspark = pytest.importorskip("pyspark")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java")]
PINNED = "2026-07-01T06:00:00Z"


@pytest.fixture(scope="module")
def spark():
    from leadml.spark import session

    s = session("local[2]")
    s.conf.set("spark.sql.files.maxPartitionBytes", "16k")  # several partitions per file
    s.conf.set("spark.sql.files.openCostInBytes", "1k")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def leads_with_bad_rows(tmp_path_factory):
    _, nightly = make_sample(3_000, seed=11, nightly_rows=3_000)
    bad = nightly.astype(str).replace("nan", "")
    bad.loc[5, "lead_id"] = ""  # missing id
    bad.loc[2_600, "lead_id"] = bad.loc[10, "lead_id"]  # duplicate, far apart
    bad.loc[2_601, "lead_id"] = bad.loc[10, "lead_id"]
    bad.loc[100, "estimated_budget"] = "lots"
    bad.loc[101, "estimated_budget"] = "inf"
    bad.loc[102, "estimated_budget"] = "-5"
    bad.loc[103, "created_at"] = "2099-01-01T00:00:00"
    bad.loc[104, "created_at"] = "yesterday"
    bad.loc[105, "web_visits"] = "NaN"  # missing, not bad
    bad.loc[106, "industry"] = "space mining"  # unseen category: scored and counted
    bad.loc[107, "job_title"] = 'Head of "Growth", EMEA\nand APAC'  # quotes, comma, newline
    path = tmp_path_factory.mktemp("spark") / "leads.csv"
    bad.to_csv(path, index=False)
    return path


def _run_both(spark, champion, path, tmp_path, **settings):
    from leadml.spark import score_spark

    model, contract = load_scoring_model("models:/leadml@champion")
    rules = load_rules(REPO / "pipelines" / "configs" / "bant.yaml")
    cfg = ScoreSettings(scored_at=PINNED, **settings)
    local = score_file(path, tmp_path / "local.parquet", model=model, contract=contract,
                       rules=rules, settings=cfg)
    remote = score_spark(path, tmp_path / "spark.parquet", model=model, contract=contract,
                         rules=rules, settings=cfg, spark=spark)
    return local, remote


def test_spark_output_equals_local_output_row_for_row(spark, champion, leads_with_bad_rows,
                                                       tmp_path):
    local, remote = _run_both(spark, champion, leads_with_bad_rows, tmp_path)
    a = pd.read_parquet(tmp_path / "local.parquet")
    b = pd.read_parquet(tmp_path / "spark.parquet")  # a folder of parts, in input order
    assert list(a.columns) == list(b.columns)
    assert a["lead_id"].tolist() == b["lead_id"].tolist()
    np.testing.assert_allclose(a["conversion_probability"], b["conversion_probability"],
                               atol=1e-9, rtol=0)
    for col in a.columns.drop(["conversion_probability"]):
        assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
    ra = pd.read_csv(tmp_path / "local.rejects.csv", dtype=str, keep_default_na=False)
    rb = pd.read_parquet(tmp_path / "spark.rejects.parquet").astype(str)
    assert ra["record"].tolist() == rb["record"].tolist()
    assert ra["reason"].tolist() == rb["reason"].tolist()
    assert ra["raw_record"].tolist() == rb["raw_record"].tolist()
    assert len(ra) == 8  # id, 2 duplicates, 3 budgets, 2 dates
    assert len(a) + len(ra) == 3_000 == remote["input"]["rows"]
    for key in ("scored", "rejected", "labels", "grades", "reject_reasons",
                "unseen_category_values", "field_reasons"):
        assert local[key] == remote[key], key
    assert remote["engine"] == "spark"
    assert json.loads((tmp_path / "spark.manifest.json").read_text())["status"] == "ok"


def test_parity_holds_across_many_partitions_of_a_parquet_file(spark, champion,
                                                               leads_with_bad_rows, tmp_path):
    """Record numbers and duplicate ids must be right when a file is split: the second
    occurrence of an id in a later partition is the rejected one, as locally."""
    frame = pd.read_csv(leads_with_bad_rows, dtype=str, keep_default_na=False)
    path = tmp_path / "leads.parquet"
    frame.to_parquet(path, row_group_size=250)
    assert spark.read.parquet(str(path)).rdd.getNumPartitions() > 1
    local, remote = _run_both(spark, champion, path, tmp_path)
    a = pd.read_parquet(tmp_path / "local.parquet")
    b = pd.read_parquet(tmp_path / "spark.parquet")
    assert a["lead_id"].tolist() == b["lead_id"].tolist()
    assert a["reasons"].tolist() == b["reasons"].tolist()
    np.testing.assert_allclose(a["conversion_probability"], b["conversion_probability"],
                               atol=1e-9, rtol=0)
    ra = pd.read_csv(tmp_path / "local.rejects.csv", dtype=str, keep_default_na=False)
    rb = pd.read_parquet(tmp_path / "spark.rejects.parquet").astype(str)
    assert ra[["record", "lead_id", "reason"]].values.tolist() == \
        rb[["record", "lead_id", "reason"]].values.tolist()
    assert local["reject_reasons"] == remote["reject_reasons"]


def test_too_many_rejects_leaves_no_output_folder(spark, champion, leads_with_bad_rows,
                                                   tmp_path):
    from leadml.spark import score_spark

    model, contract = load_scoring_model("models:/leadml@champion")
    rules = load_rules(REPO / "pipelines" / "configs" / "bant.yaml")
    with pytest.raises(TooManyRejects, match="no output was written"):
        score_spark(leads_with_bad_rows, tmp_path / "out.parquet", model=model,
                    contract=contract, rules=rules, spark=spark,
                    settings=ScoreSettings(max_reject_rate=0.001, scored_at=PINNED))
    assert not (tmp_path / "out.parquet").exists()
    assert (tmp_path / "out.rejects.parquet").exists()
    assert json.loads((tmp_path / "out.manifest.json").read_text())["status"].startswith(
        "failed")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary left (the .lock file stays)


def test_spark_engine_needs_a_parquet_output_name(spark, champion, leads_with_bad_rows,
                                                   tmp_path):
    from leadml.schema import LeadDataError
    from leadml.spark import score_spark

    model, contract = load_scoring_model("models:/leadml@champion")
    with pytest.raises(LeadDataError, match="writes Parquet"):
        score_spark(leads_with_bad_rows, tmp_path / "out.csv", model=model, contract=contract,
                    rules=load_rules(REPO / "pipelines" / "configs" / "bant.yaml"),
                    spark=spark)


def test_cli_engine_spark_and_a_wrong_engine(spark, champion, leads_with_bad_rows, tmp_path):
    from typer.testing import CliRunner

    from leadml.cli import app

    out = tmp_path / "scored.parquet"
    result = CliRunner().invoke(app, ["score", str(leads_with_bad_rows), "-o", str(out),
                                      "--engine", "spark", "--scored-at", PINNED])
    assert result.exit_code == 0, result.output
    assert f"rejects:  {tmp_path / 'scored.rejects.parquet'}" in result.output
    assert len(pd.read_parquet(out)) == 3_000 - 8
    wrong = CliRunner().invoke(app, ["score", str(leads_with_bad_rows), "-o",
                                     str(tmp_path / "x.csv"), "--engine", "dask"])
    assert wrong.exit_code == 2 and "local or spark" in wrong.output
