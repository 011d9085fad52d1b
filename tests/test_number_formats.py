"""Numbers as real exports write them. With a decimal comma (spreadsheets in German, French
and most European locales: ``1.234,5``, ``;`` between fields), `dataset.csv.decimal: ","`
reads them as the numbers they are, in training, audit, scoring, MLflow serving and
monitoring alike; formatted numbers ($12,500.00) are refused with what to do."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadml.cli import app
from leadml.schema import parse_numbers
from leadml.synthetic import make_sample
from tests.conftest import REPO, write_config

RULES = REPO / "pipelines" / "configs" / "bant.yaml"
PINNED = "2026-11-30T00:00:00"


def test_numbers_with_a_decimal_comma_are_read_and_the_ambiguous_rejected():
    raw = ["13.300,50", "1 234,5", "1\u00a0234,5", "-0,25", "1.500", "12", "", "N/A",
           "NaN", "1.5", "1,2,3", "12,5.3", "abc"]
    for dtype in (object, "str"):  # pandas' path and the Arrow cast
        numbers, bad = parse_numbers(pd.Series(raw, dtype=dtype), ("", "N/A"), decimal=",")
        assert numbers.tolist()[:6] == [13300.5, 1234.5, 1234.5, -0.25, 1500.0, 12.0]
        assert np.isnan(numbers.to_numpy()[6:]).all()
        assert bad.tolist() == [False] * 9 + [True] * 4
    # A point-decimal reading is unchanged: "1.500" is one and a half there.
    assert parse_numbers(pd.Series(["1.500", "1,5"]), ("",))[0].tolist()[0] == 1.5


def _export(frame: pd.DataFrame, path, *, comma: bool) -> None:
    """``frame`` as a CSV export: with decimal commas and ';' (comma), or as written."""
    out = frame.copy()
    if comma:
        for col in ("estimated_budget",):
            out[col] = [f"{float(v):,.2f}".replace(",", "_").replace(".", ",")
                        .replace("_", ".") if v != "" else "" for v in out[col]]
    out.to_csv(path, index=False, sep=";" if comma else ",")


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory):
    """The same leads exported both ways, a model trained on each."""
    from leadml.config import load_config
    from leadml.jobs import train

    folder = tmp_path_factory.mktemp("decimal")
    history, nightly = make_sample(3_000, seed=33, nightly_rows=300)
    history, nightly = history.astype(str).replace("nan", ""), nightly.astype(str) \
        .replace("nan", "")
    stores = {}
    for comma in (False, True):
        name = "comma" if comma else "point"
        (folder / name).mkdir()
        _export(history, folder / name / "leads.csv", comma=comma)
        _export(nightly, folder / name / "nightly.csv", comma=comma)
        csv = {"delimiter": ";", "encoding": "utf-8", "decimal": ","} if comma else \
            {"delimiter": ",", "encoding": "utf-8"}
        config = write_config(folder / name, folder / name / "leads.csv",
                              dataset={"csv": csv},
                              model={"candidates": ["logistic_regression"], "seed": 0})
        uri = f"sqlite:///{folder / name / 'mlflow.db'}"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", uri)
            mp.setenv("LEADML_HOME", str(folder / name))
            train(load_config(config))
        stores[name] = (uri, folder / name, config)
    return stores


def _score(store, *extra):
    uri, folder, _ = store
    comma = folder.name == "comma"
    out = folder / "scored.csv"
    result = CliRunner(env={"MLFLOW_TRACKING_URI": uri}).invoke(app, [
        "score", str(folder / "nightly.csv"), "-o", str(out), "--rules", str(RULES),
        "--scored-at", PINNED, *(["--delimiter", ";"] if comma else []), *extra])
    return result, out


def test_an_export_with_decimal_commas_trains_and_scores_as_the_same_numbers(two_stores):
    (_, point), (_, comma) = _score(two_stores["point"]), _score(two_stores["comma"])
    a, b = pd.read_csv(point), pd.read_csv(comma)
    assert len(a) == 300 and (a["lead_id"] == b["lead_id"]).all()
    # Same leads, same numbers: the same model, probabilities, labels and reasons.
    np.testing.assert_allclose(a["conversion_probability"], b["conversion_probability"],
                               rtol=0, atol=1e-12)
    assert (a["label"] == b["label"]).all() and (a["reasons"] == b["reasons"]).all()
    manifest = json.loads(comma.with_name("scored.manifest.json").read_text())
    assert manifest["input"]["decimal"] == "," and manifest["rejected"] == 0


def test_mlflow_and_the_python_api_read_the_comma_export_as_scoring_does(two_stores,
                                                                         monkeypatch):
    import mlflow

    from leadml.api import explain_leads

    uri, folder, _ = two_stores["comma"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model("models:/leadml@champion")
    leads = pd.read_csv(folder / "nightly.csv", sep=";", dtype=str, keep_default_na=False)
    assert leads["estimated_budget"].str.contains(",").any()
    _, out = _score(two_stores["comma"])
    scored = pd.read_csv(out)["conversion_probability"]
    np.testing.assert_allclose(np.asarray(served.predict(leads), dtype=float), scored,
                               rtol=0, atol=1e-12)
    explained = explain_leads(leads, "models:/leadml@champion")
    np.testing.assert_allclose(explained["conversion_probability"], scored, rtol=0,
                               atol=1e-12)


def test_a_comma_export_read_with_points_says_how_to_fix_it(two_stores, tmp_path):
    import yaml

    from leadml.config import load_config
    from leadml.jobs import train
    from leadml.schema import LeadDataError

    _, folder, config = two_stores["comma"]
    raw = yaml.safe_load(config.read_text())
    raw["dataset"]["csv"].pop("decimal")
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(LeadDataError, match=r"decimal comma .*dataset.csv.decimal: ','"):
        train(load_config(tmp_path / "train.yaml"))
    # Scoring overrides the model's decimal mark with --decimal: read with points, every
    # stated budget is refused, not misread.
    result, _ = _score(two_stores["comma"], "--decimal", ".", "--max-reject-rate", "1")
    assert result.exit_code == 0, result.output
    rejects = pd.read_csv(folder / "scored.rejects.csv")
    assert len(rejects) and rejects["reason"].str.contains("estimated_budget").all()
    assert rejects["reason"].str.endswith("(a decimal comma? score with --decimal ,)").all()
    bad = CliRunner().invoke(app, ["score", str(folder / "nightly.csv"), "-o",
                                   str(tmp_path / "x.csv"), "--decimal", ";"])
    assert bad.exit_code == 2 and "--decimal must be . or ," in bad.output


def test_formatted_numbers_are_refused_with_what_to_do(tmp_path):
    """A CRM report exported formatted writes 'USD 12,500.00': never guessed (two
    currencies in one column would be added up as one), refused with the fix."""
    from leadml.config import load_config
    from leadml.jobs import train
    from leadml.schema import LeadDataError

    history, _ = make_sample(600, seed=34, nightly_rows=10)
    stated = history["estimated_budget"].notna()
    history["estimated_budget"] = history["estimated_budget"].astype(object)
    history.loc[stated, "estimated_budget"] = [f"USD {v:,.2f}" for v in
                                               history.loc[stated, "estimated_budget"]]
    history.to_csv(tmp_path / "leads.csv", index=False)
    config = write_config(tmp_path, tmp_path / "leads.csv")
    with pytest.raises(LeadDataError, match=r"(?s)USD .*formatted numbers .*plain numbers"):
        train(load_config(config))
