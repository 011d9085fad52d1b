"""The model a command uses is the one its config registers, and a model that is not there
is answered with what is registered and how to pick it (issue 36: `plan` and `score` looked
for models:/leadml@champion although the config registered another name)."""

import pytest
from typer.testing import CliRunner

from leadml.cli import EXIT_MODEL, app
from leadml.config import load_config
from leadml.jobs import train
from tests.helpers import write_config


def score(*args):
    return CliRunner().invoke(app, ["score", *args])


def test_a_missing_model_lists_the_registered_ones_and_the_options(champion, sample_files,
                                                                    tmp_path):
    result = score(str(sample_files / "nightly.csv"), "-o", str(tmp_path / "out.csv"),
                   "--model-name", "acme")
    assert result.exit_code == EXIT_MODEL
    text = " ".join(result.output.split())
    assert "models:/acme@champion" in text
    assert "Registered models: 'leadml' (challenger v1, champion v1)" in text
    assert "--model-name NAME" in text and "--config CONFIG" in text
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.slow
def test_commands_take_the_model_name_from_the_config(sample_files, tmp_path):
    config = write_config(tmp_path, sample_files / "leads.csv",
                          registry={"model_name": "acme", "experiment": "acme"})
    train(load_config(config))
    leads, out = str(sample_files / "nightly.csv"), tmp_path / "out.csv"

    assert score(leads, "-o", str(out), "--config", str(config)).exit_code == 0
    assert out.exists()
    explained = CliRunner().invoke(app, ["explain", leads, "--config", str(config)])
    assert explained.exit_code == 0 and "acme v1" in " ".join(explained.output.split())
    planned = CliRunner().invoke(app, ["plan", "--config", str(config)])
    assert planned.exit_code == 0, planned.output
    without = score(leads, "-o", str(tmp_path / "other.csv"))  # looks for 'leadml'
    assert without.exit_code == EXIT_MODEL
    assert "'acme' (challenger v1, champion v1)" in " ".join(without.output.split())
