""""No value" as real exports write it: blank (pandas, most CRMs), NULL (a SQL client),
None (Python), #N/A (a spreadsheet). The default dataset.missing_values reads them all as
missing, so the same leads exported each way train the same model and score alike; a
spelling the model was not trained with is refused in scoring with what it looks like."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadml.cli import app
from leadml.config import MISSING_VALUES
from leadml.setup.synthetic import make_sample
from tests.helpers import REPO, write_config

RULES = REPO / "pipelines" / "configs" / "bant.yaml"
PINNED = "2026-11-30T00:00:00"
EMPTY = {"blank": "", "sql": "NULL", "python": "None", "spreadsheet": "#N/A"}


def _export(frame: pd.DataFrame, path, name: str) -> None:
    frame.replace("", EMPTY[name]).to_csv(path, index=False)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The same leads with blanks and with NULLs, a model trained on each with the
    default missing_values; the nightly leads written every way."""
    from leadml.config import load_config
    from leadml.jobs import train

    folder = tmp_path_factory.mktemp("placeholders")
    history, nightly = make_sample(2_000, seed=35, nightly_rows=300)
    history, nightly = (f.astype(str).replace("nan", "") for f in (history, nightly))
    for name in EMPTY:
        _export(nightly, folder / f"nightly_{name}.csv", name)
    stores = {}
    for name in ("blank", "sql"):
        (folder / name).mkdir()
        _export(history, folder / name / "leads.csv", name)
        config = write_config(folder / name, folder / name / "leads.csv",
                              model={"candidates": ["logistic_regression"], "seed": 0})
        raw = yaml.safe_load(config.read_text())
        raw["dataset"].pop("missing_values")  # the defaults
        config.write_text(yaml.safe_dump(raw))
        uri = f"sqlite:///{folder / name / 'mlflow.db'}"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", uri)
            mp.setenv("LEADML_HOME", str(folder / name))
            train(load_config(config))
        stores[name] = uri
    return folder, stores


def _score(folder, uri: str, nightly: str, out: str, *extra):
    result = CliRunner(env={"MLFLOW_TRACKING_URI": uri}).invoke(app, [
        "score", str(folder / f"nightly_{nightly}.csv"), "-o", str(folder / out),
        "--rules", str(RULES), "--scored-at", PINNED, *extra])
    assert result.exit_code == 0, result.output
    return folder / out


def test_the_default_placeholders_cover_sql_python_pandas_and_spreadsheet_exports():
    assert {"", "NULL", "null", "None", "NaN", "nan", "<NA>", "#N/A", "N/A"} <= \
        set(MISSING_VALUES)


def test_leads_exported_with_null_or_blank_train_one_model_and_score_alike(exports):
    folder, stores = exports
    blank = pd.read_csv(_score(folder, stores["blank"], "blank", "blank.csv"))
    for nightly in EMPTY:  # each spelling of no value, by each model
        for model in stores:
            scored = pd.read_csv(_score(folder, stores[model], nightly, "s.csv"))
            assert len(scored) == 300
            np.testing.assert_allclose(scored["conversion_probability"],
                                       blank["conversion_probability"], rtol=0, atol=1e-12)
            assert (scored["label"] == blank["label"]).all()
            assert (scored["reasons"] == blank["reasons"]).all()
    assert not blank["reasons"].str.contains("NULL|#N/A|None").any()
    assert blank["reasons"].str.contains(r"\(not stated\)").any()


def test_a_placeholder_the_model_was_not_trained_with_is_refused_with_what_it_looks_like(
        exports, tmp_path):
    folder, stores = exports
    nightly = pd.read_csv(folder / "nightly_blank.csv", dtype=str, keep_default_na=False)
    nightly.loc[:2, "web_visits"] = ["unknown", "#VALUE!", "#DIV/0!"]
    nightly.to_csv(folder / "nightly_odd.csv", index=False)
    _score(folder, stores["blank"], "odd", "odd.csv", "--max-reject-rate", "0.05")
    reasons = pd.read_csv(folder / "odd.rejects.csv")["reason"].tolist()
    assert len(reasons) == 3  # each value says what it looks like
    assert reasons[0].startswith("web_visits 'unknown' is not a finite number (a placeholder "
                                 "for no value? the model reads only the dataset.missing_values")
    assert reasons[1:] == [f"web_visits '{v}' is not a finite number (a spreadsheet error value: "
                           "fix the formula in the export)" for v in ("#VALUE!", "#DIV/0!")]
