import pytest
import yaml

from leadml.config import load_config
from leadml.errors import ConfigError
from tests.helpers import SAMPLE_CONFIG


def test_sample_config_loads_with_paths_resolved_against_the_file():
    cfg = load_config(SAMPLE_CONFIG)
    assert cfg.dataset.path.is_absolute()
    assert cfg.dataset.path.name == "leads.csv"
    assert "true_probability" in cfg.dataset.columns.excluded
    assert "true_probability" not in cfg.dataset.columns.features
    with pytest.raises(Exception, match="frozen"):
        cfg.model.seed = 3


def _write(tmp_path, text: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


GOOD = """\
dataset:
  path: leads.csv
  id_column: lead_id
  time_column: created_at
  target: {column: converted}
  columns:
    numeric: [budget]
    categorical: [industry]
"""


@pytest.mark.parametrize("edit, message", [
    (("    categorical: [industry]", "    categoricals: [industry]"),
     r"bad.yaml:8 dataset.columns.categoricals: unknown key: did you mean 'categorical'\?"),
    (("  time_column: created_at\n", "  time_column: created_at\n  horizon_days: 30\n"),
     r"bad.yaml:5 dataset.horizon_days: unknown key here: 'horizon_days' belongs under "
     r"dataset.target or dataset.outcomes \(check the indentation\)"),
    (("  id_column: lead_id\n", ""),
     r"dataset.id_column: required key is missing: add 'id_column' under 'dataset'"),
    (("    categorical: [industry]", "    categorical: [budget]"),
     r"'budget' is listed under both 'numeric' and 'categorical'"),
    (("  target: {column: converted}", "  target: {column: converted}\n"
      "  outcomes: {path: o.csv}"), r"exactly one of 'target'"),
    (("    numeric: [budget]", "    numeric: [budget, converted]"),
     r"cannot also be features"),
])
def test_bad_dataset_section_is_reported_with_its_place(tmp_path, edit, message):
    old, new = edit
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, GOOD.replace(old, new)))


@pytest.mark.parametrize("extra, message", [
    ("split: {train: 0.7, calibration: 0.2, test: 0.2}", r"bad.yaml:9 split: .*must be 1"),
    ("model: {calibration: platt}", r"bad.yaml:9 model.calibration: Input should be"),
    ("model: {candidates: [random_forest]}", r"model.candidates\[0\]"),
    ("evaluation: {bootstrap: -1}", r"evaluation.bootstrap: Input should be greater"),
])
def test_bad_values_are_reported_with_line_and_key(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, GOOD + extra + "\n"))


def test_every_problem_is_listed_at_once(tmp_path):
    text = GOOD + "split: {train: 0.9}\nmodel: {calibration: platt, seeed: 1}\n"
    with pytest.raises(ConfigError, match="3 problem") as info:
        load_config(_write(tmp_path, text))
    assert "model.seeed: unknown key: did you mean 'seed'?" in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("dataset: [unclosed", "not valid YAML"),
    ("- a list", "must be a YAML mapping"),
])
def test_unreadable_configs(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_outcomes_table_config(tmp_path):
    raw = yaml.safe_load(GOOD)
    del raw["dataset"]["target"]
    raw["dataset"]["outcomes"] = {"path": "outcomes.csv"}
    cfg = load_config(_write(tmp_path, yaml.safe_dump(raw)))
    assert cfg.dataset.outcomes.path == (tmp_path / "outcomes.csv").resolve()


def test_audit_levels_must_rise_from_note_to_block():
    from pydantic import ValidationError

    from leadml.config import AuditConfig

    assert AuditConfig().block_single_auc == 0.9
    with pytest.raises(ValidationError, match="must rise from note to review to block"):
        AuditConfig(max_single_auc=0.95)
    with pytest.raises(ValidationError, match="must not exceed"):
        AuditConfig(max_missing_auc=0.95)


def test_a_yes_no_is_never_read_as_a_number(tmp_path):
    """`capacity: true` was read as a capacity of 1 (pydantic's lax bool-to-int)."""
    import yaml

    from leadml.config import load_rules
    from tests.helpers import REPO

    raw = yaml.safe_load((REPO / "pipelines" / "configs" / "bant.yaml").read_text())
    raw["label_policy"]["sales_qualified"]["capacity"] = True
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="capacity: true is a yes/no, not a number"):
        load_rules(tmp_path / "r.yaml")
