"""`leadml config init`: a first training config for an export nobody here wrote, read
from its names and values, that loads, audits and says what it could not settle."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadml.cli import app
from leadml.config import load_config
from leadml.errors import ConfigError
from leadml.setup.config_init import draft
from leadml.setup.synthetic import make_leads
from leadml.setup.synthetic_crm import write_crm_export

runner = CliRunner()


def _init(tmp_path, frame: pd.DataFrame, *args: str, name: str = "export.csv"):
    """Write ``frame`` as an export, run `leadml config init` on it; (result, config path)."""
    frame.to_csv(tmp_path / name, index=False)
    out = tmp_path / "train.yaml"
    result = runner.invoke(app, ["config", "init", str(tmp_path / name), "-o", str(out),
                                 *args])
    return result, out


def test_the_sample_history_gets_the_config_a_person_writes(tmp_path):
    leads = make_leads(3000, seed=4)
    result, out = _init(tmp_path, leads)
    assert result.exit_code == 0, result.output
    cfg = load_config(out)
    ds = cfg.dataset
    assert (ds.id_column, ds.time_column, ds.time_format) == ("lead_id", "created_at", "iso")
    # Conversion times in the export: the outcome, with a horizon from how long leads took
    assert ds.target is None and ds.outcomes.converted_at_column == "converted_at"
    assert ds.outcomes.path.resolve() == (tmp_path / "export.csv").resolve()
    assert 7 <= ds.outcomes.horizon_days <= 120
    cols = ds.columns
    assert set(cols.numeric) >= {"estimated_budget", "web_visits", "meetings"}
    assert set(cols.categorical) >= {"industry", "lead_source", "purchase_timeline"}
    assert cols.text == ("job_title",)
    assert "converted" in cols.excluded  # the flag beside the times: named like the outcome
    assert "Select" in ds.missing_values
    text = out.read_text()
    assert "# a different value for every lead" in text and "# when each lead was created" \
        in text  # every choice says why
    assert "leadml audit --config" in result.output


def test_the_audit_then_judges_what_names_cannot(tmp_path):
    """A column that leaks only in its values (an amount filled in for won deals alone) is
    left a feature by init; the audit, reading the outcomes, stops it."""
    from leadml.jobs import audit

    leads = make_leads(3000, seed=5)
    leads["amount"] = leads["estimated_budget"].where(leads["converted"] == 1)
    _, out = _init(tmp_path, leads)
    cfg = load_config(out)
    assert "amount" in cfg.dataset.columns.numeric
    report = audit(cfg)[0]
    assert any(f.column == "amount" and f.blocking for f in report.findings)


def test_a_spreadsheet_export_without_id_or_time(tmp_path):
    frame = pd.DataFrame({
        "age": [30 + i % 40 for i in range(400)],
        "job": ["admin.", "unknown", "technician", "services"] * 100,
        "poutcome": ["unknown", "failure", "success", "other"] * 100,
        "y": ["no", "no", "no", "yes"] * 100,
    })
    frame.to_csv(tmp_path / "bank.csv", sep=";", index=False)
    out = tmp_path / "bank.yaml"
    result = runner.invoke(app, ["config", "init", str(tmp_path / "bank.csv"), "-o", str(out),
                                 "--delimiter", ";"])
    assert result.exit_code == 0, result.output
    ds = load_config(out).dataset
    assert ds.id_column is None and ds.time_column is None
    assert ds.target.column == "y" and ds.target.positive_values == ("yes",)
    assert "poutcome" in ds.columns.categorical  # 'outcome' inside a word is not the outcome
    assert "unknown" in ds.missing_values and ds.csv.delimiter == ";"
    assert "no id column" in result.output and "file order" in result.output


@pytest.mark.parametrize("days, expected", [
    ([3, 4, 13], "%d/%m/%Y %H:%M"),  # a 13th day settles it: day first
    ([3, 4, 11], None),  # every part could be the day: not chosen
])
def test_a_date_is_read_day_first_only_when_the_values_say_so(tmp_path, days, expected):
    n = 300
    frame = pd.DataFrame({
        "Lead ID": [f"L{i}" for i in range(n)],
        "Created": [f"{days[i % 3]:02d}/0{1 + i % 9}/2026 10:{i % 60:02d}" for i in range(n)],
        "Source": ["web", "event", "referral"] * (n // 3),
        "Converted": ["1", "0", "0"] * (n // 3),
    })
    result, out = _init(tmp_path, frame)
    assert result.exit_code == 0, result.output
    ds = load_config(out).dataset
    text = out.read_text()
    if expected:
        assert (ds.time_column, ds.time_format) == ("Created", expected)
    else:
        assert ds.time_column is None and "Created" in ds.columns.excluded
        assert "'%d/%m/%Y %H:%M' or '%m/%d/%Y %H:%M'" in text.replace('"', "'")
        assert "day and month of 'Created' are ambiguous" in result.output


def test_a_status_with_open_leads_keeps_them_out(tmp_path):
    statuses = ["Closed - Converted", "Closed - Not Converted", "Open - Not Contacted",
                "Working - Contacted"]
    frame = pd.DataFrame({"Lead ID": [f"00Q{i:05d}" for i in range(400)],
                          "Lead Status": statuses * 100,
                          "Industry": ["Retail", "Banking"] * 200,
                          "Email": [f"p{i}@example.com" for i in range(400)],
                          "First Name": [f"Ann{i}" for i in range(400)]})
    result, out = _init(tmp_path, frame)
    assert result.exit_code == 0, result.output
    ds = load_config(out).dataset
    assert ds.target.column == "Lead Status"
    assert ds.target.positive_values == ("Closed - Converted",)
    assert ds.target.negative_values == ("Closed - Not Converted",)
    assert set(ds.columns.personal) == {"Email", "First Name"}
    assert "Open - Not Contacted" in out.read_text()  # named as left out


def test_what_cannot_be_told_is_asked_for(tmp_path):
    frame = pd.DataFrame({"Lead ID": [f"L{i}" for i in range(300)],
                          "Source": ["web", "event", "ads"] * 100,
                          "Stage": ["Demo", "Trial", "Signed"] * 100})
    result, out = _init(tmp_path, frame)
    assert result.exit_code == 2 and "none of the values of 'Stage' reads as converted" \
        in result.output and "--positive-value" in result.output
    assert not out.exists()
    result, out = _init(tmp_path, frame, "--positive-value", "Signed")
    assert result.exit_code == 0, result.output
    assert load_config(out).dataset.target.positive_values == ("Signed",)
    # never overwritten
    again = runner.invoke(app, ["config", "init", str(tmp_path / "export.csv"), "-o", str(out)])
    assert again.exit_code == 2 and "never overwrites" in again.output
    with pytest.raises(ConfigError, match="name it with --target"):
        draft(frame.drop(columns="Stage"), tmp_path / "x.csv", tmp_path / "x.yaml")


def test_a_crm_export_with_its_conversions_in_another_table(tmp_path):
    write_crm_export(tmp_path, 3000, seed=2, nightly_rows=10)
    out = tmp_path / "init.yaml"
    result = runner.invoke(app, ["config", "init", str(tmp_path / "leads.csv"), "-o", str(out),
                                 "--outcomes", str(tmp_path / "outcomes.csv")])
    assert result.exit_code == 0, result.output
    ds = load_config(out).dataset
    assert (ds.id_column, ds.time_column) == ("Lead Number", "Created On")
    assert ds.time_format == "%d/%m/%Y %H:%M"  # the export's days pass 12
    assert ds.outcomes.path.name == "outcomes.csv" and ds.outcomes.horizon_days
    assert ds.outcomes.converted_at_format == "%d/%m/%Y %H:%M"
    # fields set during follow-up are left out, each with its reason
    assert {"Last Activity", "Last Notable Activity", "Lead Quality"} <= \
        set(ds.columns.excluded)
    assert "unknown" in ds.missing_values
    assert "path: \"leads.csv\"" in out.read_text()  # beside the config: relative


def test_opportunity_stages_and_a_parquet_export(tmp_path):
    """Salesforce opportunity stages: won is converted, lost is lost, the stages between
    are open; a Parquet export's typed columns (times, integers) read as a CSV's text."""
    stages = ["Closed Won", "Closed Lost", "Prospecting", "Negotiation/Review"]
    n = 400
    frame = pd.DataFrame({
        "Opportunity ID": [f"006{i:07d}" for i in range(n)],
        "Created Date": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
        "Stage": stages * (n // 4),
        "Amount": list(range(n)),
        "Company": [f"Company {i}" for i in range(n)],  # unique, but not an id
    })
    frame.to_parquet(tmp_path / "opps.parquet")
    out = tmp_path / "opps.yaml"
    text, _ = draft(frame, tmp_path / "opps.parquet", out)
    out.write_text(text)
    ds = load_config(out).dataset
    assert (ds.id_column, ds.time_column, ds.time_format) == ("Opportunity ID",
                                                              "Created Date", "iso")
    assert ds.target.positive_values == ("Closed Won",)
    assert ds.target.negative_values == ("Closed Lost",)
    assert ds.columns.numeric == ("Amount",) and "Company" in ds.columns.excluded


def test_bad_data_exits_3_and_names_this_commands_own_options(tmp_path):
    """A data problem was exit 2 (the code of a bad argument), and a Latin-1 export was
    told to set dataset.csv.encoding, a key of the config this command has not written."""
    one = make_leads(1, seed=1)
    result, _ = _init(tmp_path, one)
    assert result.exit_code == 3 and "1 lead(s)" in result.output, result.output
    leads = make_leads(50, seed=1)
    leads.loc[3, "job_title"] = "Directeur général"
    path = tmp_path / "latin.csv"
    path.write_bytes(leads.to_csv(index=False).encode("latin-1"))
    done = runner.invoke(app, ["config", "init", str(path), "-o", str(tmp_path / "c.yaml")])
    assert done.exit_code == 3 and "--encoding" in done.output, done.output
    assert "dataset.csv" not in done.output
