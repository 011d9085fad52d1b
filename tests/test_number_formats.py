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
from leadml.data.values import parse_numbers
from leadml.setup.synthetic import make_sample
from tests.helpers import REPO, write_config

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


EXPORTS = {  # name: (budget as the export writes 13300.5, delimiter, csv options)
    "point": (lambda x: f"{x}", ",", {}),
    "comma": (lambda x: f"{x:,.2f}".replace(",", "_").replace(".", ",").replace("_", "."),
              ";", {"decimal": ","}),
    "grouped": (lambda x: f"{x:,.2f}", ",", {"thousands": ","}),
}


def _export(frame: pd.DataFrame, path, name: str) -> None:
    """``frame`` as the export ``name`` writes it."""
    write, delimiter, _ = EXPORTS[name]
    out = frame.copy()
    out["estimated_budget"] = [write(float(v)) if v != "" else "" for v in
                               out["estimated_budget"]]
    out.to_csv(path, index=False, sep=delimiter)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The same leads exported each way, a model trained on each."""
    from leadml.config import load_config
    from leadml.jobs import train

    folder = tmp_path_factory.mktemp("numbers")
    history, nightly = make_sample(3_000, seed=33, nightly_rows=300)
    history, nightly = history.astype(str).replace("nan", ""), nightly.astype(str) \
        .replace("nan", "")
    out = {}
    for name, (_, delimiter, marks) in EXPORTS.items():
        (folder / name).mkdir()
        _export(history, folder / name / "leads.csv", name)
        _export(nightly, folder / name / "nightly.csv", name)
        config = write_config(folder / name, folder / name / "leads.csv",
                              dataset={"csv": {"delimiter": delimiter, **marks}},
                              model={"candidates": ["logistic_regression"], "seed": 0})
        uri = f"sqlite:///{folder / name / 'mlflow.db'}"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", uri)
            mp.setenv("LEADML_HOME", str(folder / name))
            train(load_config(config))
        out[name] = (uri, folder / name, config)
    return out


def _score(store, *extra):
    uri, folder, _ = store
    out = folder / "scored.csv"
    result = CliRunner(env={"MLFLOW_TRACKING_URI": uri}).invoke(app, [
        "score", str(folder / "nightly.csv"), "-o", str(out), "--rules", str(RULES),
        "--scored-at", PINNED, "--delimiter", EXPORTS[folder.name][1], *extra])
    return result, out


@pytest.mark.parametrize("name", ["comma", "grouped"])
def test_an_export_with_decimal_commas_or_thousands_trains_and_scores_as_the_same_numbers(
        stores, name):
    (_, point), (_, other) = _score(stores["point"]), _score(stores[name])
    a, b = pd.read_csv(point), pd.read_csv(other)
    assert len(a) == 300 and (a["lead_id"] == b["lead_id"]).all()
    # Same leads, same numbers: the same model, probabilities, labels and reasons.
    np.testing.assert_allclose(a["conversion_probability"], b["conversion_probability"],
                               rtol=0, atol=1e-12)
    assert (a["label"] == b["label"]).all() and (a["reasons"] == b["reasons"]).all()
    manifest = json.loads(other.with_name("scored.manifest.json").read_text())
    marks = {"decimal": manifest["input"]["decimal"], "thousands": manifest["input"]["thousands"]}
    assert marks == {"decimal": ".", "thousands": None, **EXPORTS[name][2]}
    assert manifest["rejected"] == 0


@pytest.mark.parametrize("name", ["comma", "grouped"])
def test_mlflow_and_the_python_api_read_the_export_as_scoring_does(stores, name,
                                                                   monkeypatch):
    import mlflow

    from leadml.api import explain_leads

    uri, folder, _ = stores[name]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # (training each store set it to its own)
    served = mlflow.pyfunc.load_model("models:/leadml@champion")
    leads = pd.read_csv(folder / "nightly.csv", sep=EXPORTS[name][1], dtype=str,
                        keep_default_na=False)
    assert leads["estimated_budget"].str.contains(",").any()
    result, out = _score(stores[name])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)["conversion_probability"]
    np.testing.assert_allclose(np.asarray(served.predict(leads), dtype=float), scored,
                               rtol=0, atol=1e-12)
    explained = explain_leads(leads, "models:/leadml@champion")
    np.testing.assert_allclose(explained["conversion_probability"], scored, rtol=0,
                               atol=1e-12)


def test_a_comma_export_read_with_points_says_how_to_fix_it(stores, tmp_path):
    import yaml

    from leadml.config import load_config
    from leadml.errors import LeadDataError
    from leadml.jobs import train

    _, folder, config = stores["comma"]
    raw = yaml.safe_load(config.read_text())
    raw["dataset"]["csv"].pop("decimal")
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(LeadDataError, match=r"decimal comma .*dataset.csv.decimal: ','"):
        train(load_config(tmp_path / "train.yaml"))
    # Scoring overrides the model's decimal mark with --decimal: read with points, every
    # stated budget is refused, not misread.
    result, _ = _score(stores["comma"], "--decimal", ".", "--max-reject-rate", "1")
    assert result.exit_code == 0, result.output
    rejects = pd.read_csv(folder / "scored.rejects.csv")
    assert len(rejects) and rejects["reason"].str.contains("estimated_budget").all()
    assert rejects["reason"].str.endswith("(a decimal comma? score with --decimal ,)").all()
    bad = CliRunner().invoke(app, ["score", str(folder / "nightly.csv"), "-o",
                                   str(tmp_path / "x.csv"), "--decimal", ";"])
    assert bad.exit_code == 2 and "--decimal must be . or ," in bad.output


def test_thousands_separators_are_read_when_declared_and_refused_with_the_fix_otherwise(
        stores, tmp_path):
    import yaml

    from leadml.config import load_config
    from leadml.errors import ConfigError, LeadDataError
    from leadml.jobs import train

    raw = ["12,500.00", "1,234,567", "-1,000", "900", "", "1,5", "12,50", "1.500,00"]
    numbers, bad = parse_numbers(pd.Series(raw), ("",), thousands=",")
    assert numbers.tolist()[:4] == [12500.0, 1234567.0, -1000.0, 900.0]
    assert bad.tolist() == [False] * 5 + [True] * 3  # never guessed
    _, folder, config = stores["grouped"]
    plain = yaml.safe_load(config.read_text())
    plain["dataset"]["csv"].pop("thousands")
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(plain))
    with pytest.raises(LeadDataError, match=r"thousands separators \(12,500.00\): set "
                                            r"dataset.csv.thousands: ','"):
        train(load_config(tmp_path / "train.yaml"))
    both = yaml.safe_load(config.read_text())
    both["dataset"]["csv"]["thousands"] = "."
    (tmp_path / "both.yaml").write_text(yaml.safe_dump(both))
    with pytest.raises(ConfigError, match="both '.'"):
        load_config(tmp_path / "both.yaml")
    # A model trained on plain numbers scores the grouped file once told its separator.
    point_uri = stores["point"][0]
    refused = CliRunner(env={"MLFLOW_TRACKING_URI": point_uri}).invoke(app, [
        "score", str(folder / "nightly.csv"), "-o", str(tmp_path / "r.csv"), "--rules",
        str(RULES), "--scored-at", PINNED, "--max-reject-rate", "1"])
    assert refused.exit_code == 0, refused.output
    reasons = pd.read_csv(tmp_path / "r.rejects.csv")["reason"]
    assert len(reasons) and reasons.str.endswith(
        "(thousands separators? score with --thousands ,)").all()
    told = CliRunner(env={"MLFLOW_TRACKING_URI": point_uri}).invoke(app, [
        "score", str(folder / "nightly.csv"), "-o", str(tmp_path / "t.csv"), "--rules",
        str(RULES), "--scored-at", PINNED, "--thousands", ","])
    assert told.exit_code == 0, told.output
    _, point = _score(stores["point"])
    assert (tmp_path / "t.csv").read_bytes() == point.read_bytes()


def test_formatted_numbers_are_refused_with_what_to_do(tmp_path):
    """A CRM report exported formatted writes 'USD 12,500.00': never guessed (two
    currencies in one column would be added up as one), refused with the fix."""
    from leadml.config import load_config
    from leadml.errors import LeadDataError
    from leadml.jobs import train

    history, _ = make_sample(600, seed=34, nightly_rows=10)
    stated = history["estimated_budget"].notna()
    history["estimated_budget"] = history["estimated_budget"].astype(object)
    history.loc[stated, "estimated_budget"] = [f"USD {v:,.2f}" for v in
                                               history.loc[stated, "estimated_budget"]]
    history.to_csv(tmp_path / "leads.csv", index=False)
    config = write_config(tmp_path, tmp_path / "leads.csv")
    with pytest.raises(LeadDataError, match=r"(?s)USD .*formatted numbers .*plain numbers"):
        train(load_config(config))
