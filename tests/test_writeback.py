"""Write-back files, checked against each CRM's published import rules (none is reachable
here): Salesforce's Bulk API 2.0 / Data Loader CSV and HubSpot's import file. And the lead's
own columns carried into the scored file, its id kept exact where a spreadsheet would read
a formula."""

import csv
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadml.cli import app
from leadml.data.crm_ids import salesforce_id
from leadml.rules.display import cut_text, strongest_first
from tests.helpers import PINNED, REPO, RULES, score

pytestmark = pytest.mark.slow
CONFIGS = REPO / "pipelines" / "configs"


def read_import(path):
    """The file as a CRM's importer reads it: bytes, then rows by the CSV rules."""
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf"), "no byte-order mark"
    text = data.decode("utf-8")  # UTF-8 or it fails
    assert "\r" not in text and text.endswith("\n"), "line feeds"
    rows = list(csv.reader(text.splitlines()))
    for line in text.splitlines():  # a space next to a delimiting quote fails a row
        assert not re.search(r'(^|,) +"|" +(,|$)', line), line
    return rows[0], rows[1:]


@pytest.mark.parametrize("preset", ["salesforce", "hubspot"])
def test_each_preset_writes_a_file_its_crm_imports_as_it_is(champion, sample_files,
                                                            tmp_path, preset):
    out = tmp_path / "scored.csv"
    result, manifest = score(sample_files / "nightly.csv", out, "--writeback",
                             str(CONFIGS / f"writeback_{preset}.yaml"))
    assert result.exit_code == 0, result.output
    path = tmp_path / f"scored.{preset}.csv"
    header, rows = read_import(path)
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    nightly = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    assert len(rows) == len(scored) == len(nightly) and all(len(r) == len(header) for r in rows)
    assert manifest["writeback"]["rows"] == len(rows) and manifest["writeback"]["unkeyed"] == 0
    assert manifest["writeback"]["path"] == str(path)
    got = pd.DataFrame(rows, columns=header)
    number = re.compile(r"-?\d+(\.\d+)?")  # a point, no separators, no exponent
    if preset == "salesforce":
        assert header[0] == "Id"
        assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*__c", h) for h in header[1:])
        assert all(salesforce_id(i) == i and len(i) == 18 for i in got["Id"])
        assert list(got["Id"]) == list(scored["sf_lead_id"])  # in the scored file's order
        percent = got["Conversion_Probability__c"]
        assert percent.str.fullmatch(r"\d{1,3}\.\d").all()  # Percent(3, 1)
        assert percent.astype(float).between(0, 100).all()
        assert (percent.astype(float) - 100 * scored["conversion_probability"].astype(float)
                ).abs().max() <= 0.05 + 1e-9
        assert got["Lead_Score__c"].str.fullmatch(number).all()
        assert set(got["Lead_Qualification__c"]) <= {"Sales-qualified", "Nurture",
                                                     "Disqualified"}
        assert got["Lead_Scored_At__c"].str.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").all()
        text = got["Lead_Score_Reasons__c"]
    else:
        assert header[0] == "Record ID" and got["Record ID"].str.fullmatch(r"[1-9]\d*").all()
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", h) for h in header[1:])
        assert list(got["Record ID"]) == list(scored["hubspot_record_id"])
        assert got["leadml_conversion_probability"].str.fullmatch(number).all()
        assert set(got["leadml_label"]) <= {"sales_qualified", "nurture", "disqualified"}
        assert got["leadml_scored_on"].eq("2026-07-01").all()
        assert list(got["leadml_owner_at_scoring"]) == list(nightly["owner"])
        text = got["leadml_reasons"]
    assert set(got.iloc[:, 3]) <= set("ABCD")  # the grade picklist
    assert text.str.len().max() <= 255 and manifest["writeback"]["text_cut"] > 0
    full = scored["reasons"].map(strongest_first)  # what decided the label first
    for cut, whole in zip(text, full, strict=True):  # whole reasons, strongest first
        assert whole.startswith(cut) and (cut == whole or whole[len(cut):].startswith("; "))


def test_a_preset_by_name_keys_by_the_lead_id_and_says_when_that_is_no_crm_id(
        champion, sample_files, tmp_path):
    """The sample's lead ids (L56652631) are no Salesforce ids: nothing would update, so the
    run fails before anything is published, naming the key column to set."""
    out = tmp_path / "scored.csv"
    result, manifest = score(sample_files / "nightly.csv", out, "--writeback", "salesforce")
    assert result.exit_code == 3, result.output
    assert "none of the 600 scored leads has a salesforce record id in 'lead_id'" in \
        result.output and "set key.column" in result.output
    assert not out.exists() and not (tmp_path / "scored.salesforce.csv").exists()
    assert manifest["status"].startswith("failed")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_leads_without_a_record_id_are_scored_and_counted_not_written_back(
        champion, sample_files, tmp_path):
    nightly = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    nightly.loc[:2, "sf_lead_id"] = ["", "00Q5f0BZ1KfYF00EWA", "not an id"]  # bad checksum
    nightly.loc[3, "sf_lead_id"] = nightly.loc[3, "sf_lead_id"][:15]  # 15: made 18
    path = tmp_path / "in.csv"
    nightly.to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    result, manifest = score(path, out, "--writeback",
                             str(CONFIGS / "writeback_salesforce.yaml"))
    assert result.exit_code == 0, result.output
    assert manifest["scored"] == 600 and manifest["writeback"]["rows"] == 597
    assert manifest["writeback"]["unkeyed"] == 3 and "3 without a record id" in result.output
    _, rows = read_import(tmp_path / "scored.salesforce.csv")
    assert rows[0][0] == salesforce_id(nightly.loc[3, "sf_lead_id"])


def test_too_many_rejects_publish_no_write_back_and_a_rerun_replaces_it(
        champion, sample_files, tmp_path):
    nightly = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    out = tmp_path / "scored.csv"
    spec = str(CONFIGS / "writeback_hubspot.yaml")
    ok, _ = score(sample_files / "nightly.csv", out, "--writeback", spec)
    assert ok.exit_code == 0 and (tmp_path / "scored.hubspot.csv").exists()
    nightly.loc[:99, "estimated_budget"] = "lots"
    nightly.to_csv(tmp_path / "bad.csv", index=False)
    bad, manifest = score(tmp_path / "bad.csv", out, "--writeback", spec)
    assert bad.exit_code == 4 and "writeback" not in manifest
    assert not out.exists() and not (tmp_path / "scored.hubspot.csv").exists()  # not last night's


def test_a_bad_write_back_file_says_what_is_wrong_before_anything_runs(champion, sample_files,
                                                                       tmp_path):
    spec = tmp_path / "wb.yaml"
    spec.write_text("preset: pipedrive\n")
    result, manifest = score(sample_files / "nightly.csv", tmp_path / "o.csv",
                             "--writeback", str(spec))
    assert result.exit_code == 2 and "preset" in result.output and manifest is None
    spec.write_text("preset: hubspot\nkey: {column: crm_id}\n")
    result, _ = score(sample_files / "nightly.csv", tmp_path / "o.csv", "--writeback", str(spec))
    assert result.exit_code == 3 and "crm_id" in result.output  # a missing column, named
    result, _ = score(sample_files / "nightly.csv", tmp_path / "o.csv", "--writeback", "hubspo")
    assert result.exit_code == 2 and "neither a preset" in result.output


def test_carried_columns_are_copied_as_read_and_ids_stay_exact(champion, sample_files,
                                                               tmp_path):
    """Carried columns follow the lead id; a CSV escapes the id and carried text that a
    spreadsheet would run as a formula, Parquet keeps them exact, and monitoring reads the
    CSV's ids back as they were."""
    from leadml.monitoring.outcomes import read_scored

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text() + "\noutput:\n  carry: [company, owner, email]\n")
    nightly = pd.read_csv(sample_files / "nightly.csv", dtype=str, keep_default_na=False)
    nightly.loc[0, "lead_id"] = "+L123"
    nightly.loc[1, "company"] = "=HYPERLINK(\"http://x\")"
    nightly.loc[2, "owner"] = ""
    path = tmp_path / "in.csv"
    nightly.to_csv(path, index=False)
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"scored.{suffix}"
        result = CliRunner().invoke(app, ["score", str(path), "--output", str(out),
                                          "--rules", str(rules)])
        assert result.exit_code == 0, result.output
        scored = pd.read_csv(out, dtype=str, keep_default_na=False) if suffix == "csv" \
            else pd.read_parquet(out)
        assert list(scored.columns[:5]) == ["lead_id", "company", "owner", "email",
                                            "conversion_probability"]
        escaped = suffix == "csv"
        assert scored.loc[0, "lead_id"] == ("'+L123" if escaped else "+L123")
        assert scored.loc[1, "company"].startswith("'=" if escaped else "=")
        assert scored.loc[2, "owner"] == "" and list(scored["email"]) == list(nightly["email"])
        assert read_scored([out]).leads["lead_id"].iloc[0] == "+L123"
    missing = tmp_path / "missing.yaml"
    missing.write_text(RULES.read_text() + "\noutput:\n  carry: [lead_owner]\n")
    result = CliRunner().invoke(app, ["score", str(path), "--output", str(tmp_path / "m.csv"),
                                      "--rules", str(missing)])
    assert result.exit_code == 3 and "lead_owner" in result.output
    shadow = tmp_path / "shadow.yaml"
    shadow.write_text(RULES.read_text() + "\noutput:\n  carry: [score]\n")
    result = CliRunner().invoke(app, ["score", str(path), "--output", str(tmp_path / "s.csv"),
                                      "--rules", str(shadow)])
    assert result.exit_code == 2 and "writes itself" in result.output


def test_text_is_cut_at_a_reasons_end_then_a_words():
    reasons = "; ".join(f"Field {i} raised it by {i} points" for i in range(20))
    cut = cut_text(reasons, 255)
    assert len(cut) <= 255 and reasons.startswith(cut) and reasons[len(cut):].startswith("; ")
    assert cut_text("x" * 300, 255) == "x" * 254 + "\u2026"
    assert cut_text("short", 255) == "short"


def test_a_csv_in_peoples_words_reads_back_as_the_contract(champion, sample_files, tmp_path):
    """``output.style: people``: words for labels and BANT states, percents, reasons
    strongest first within 255 characters (the whole list beside them), in the CSV only;
    monitoring and the report read it back as the contract's values."""
    from leadml.config import load_rules
    from leadml.monitoring.outcomes import read_scored
    from leadml.rules.display import as_machine

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text() + "\noutput:\n  style: people\n  full_reasons: true\n"
                     "  words: {nurture: Keep warm}\n  fields: {job_title: Title}\n")
    machine = tmp_path / "machine.parquet"
    people = tmp_path / "people.csv"
    for out in (machine, people):
        result = CliRunner().invoke(app, ["score", str(sample_files / "nightly.csv"),
                                          "--output", str(out), "--rules", str(rules),
                                          "--scored-at", PINNED])
        assert result.exit_code == 0, result.output
    exact = pd.read_parquet(machine)
    shown = pd.read_csv(people, dtype=str, keep_default_na=False)
    assert set(exact["label"]) <= {"sales_qualified", "nurture", "disqualified"}  # Parquet
    assert set(shown["label"]) <= {"Sales-qualified", "Keep warm", "Disqualified"}
    assert set(shown["bant_need"]) <= {"Met", "Not met", "Unknown"}
    assert shown["conversion_probability"].str.fullmatch(r"\d{1,3}\.\d%").all()
    assert shown["reasons"].str.len().max() <= 255 and shown["reasons_full"].str.len().max() > 255
    assert shown["reasons_full"].str.contains('Title "').any()  # the field's display name
    assert not exact["reasons"].str.contains('Job title "').any()
    for cut, whole, mine in zip(shown["reasons"], shown["reasons_full"], exact["reasons"],
                                strict=True):
        said = whole.replace("the chance of converting", "it").split("; ")
        assert whole.startswith(cut) and sorted(said) == sorted(
            mine.replace("the chance of converting", "it").split("; "))
        decided = [p for p in whole.split("; ") if " by " not in p]  # failed criteria first
        assert whole.split("; ")[:len(decided)] == decided
    back = as_machine(shown, load_rules(rules).output.people_words)
    assert back["label"].tolist() == exact["label"].tolist()
    assert back["bant_need"].tolist() == exact["bant_need"].astype(str).tolist()
    assert (back["conversion_probability"] - exact["conversion_probability"]).abs().max() \
        <= 0.0005 + 1e-12
    read = read_scored([people]).leads
    assert read["label"].tolist() == exact["label"].tolist()
    report = CliRunner().invoke(app, ["report", "--output", str(tmp_path / "r.html"),
                                      "--scored", str(people), "--rules", str(rules)])
    assert report.exit_code == 0, report.output
    assert "Tonight's leads: 600 scored" in (tmp_path / "r.html").read_text()
