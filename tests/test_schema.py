"""Validation of lead histories on small hand-written frames."""

import gzip

import numpy as np
import pandas as pd
import pytest

from leadml.config import load_config
from leadml.data.schema import validate_history
from leadml.data.tables import read_table
from leadml.errors import LeadDataError

CONFIG = """\
dataset:
  path: leads.csv
  id_column: lead_id
  time_column: created_at
  target: {column: converted, positive_values: ["yes"]}
  columns:
    numeric: [budget]
    categorical: [industry]
  missing_values: ["", "Select"]
"""


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return load_config(path)


def leads(**override) -> pd.DataFrame:
    frame = pd.DataFrame({
        "lead_id": ["a", "b", "c", "d"],
        "created_at": ["2026-01-03", "2026-01-01", "2026-01-02", "2026-01-04"],
        "budget": ["100", "Select", "2500.5", ""],
        "industry": ["retail", "software", "Select", "retail"],
        "converted": ["yes", "no", "no", "yes"],
    })
    for key, value in override.items():
        frame[key] = value
    return frame


def test_history_comes_back_in_time_order_with_a_0_1_target(cfg):
    raw = leads()
    before = raw.copy()
    history = validate_history(raw, cfg)
    assert history.ids.tolist() == ["b", "c", "a", "d"]
    assert history.target.tolist() == [0, 0, 1, 1]
    assert "converted" not in history.features.columns
    pd.testing.assert_frame_equal(raw, before)  # the caller's frame is not touched


def test_missing_columns_are_listed_with_the_config_key(cfg):
    raw = leads().rename(columns={"budget": "Budget"})
    with pytest.raises(LeadDataError, match=r"missing 1 column\(s\) \['budget'\]") as info:
        validate_history(raw, cfg)
    text = str(info.value)
    assert "unexpected Budget" in text
    assert "'budget' is named at c.yaml:7 (dataset.columns.numeric[0])" in text


@pytest.mark.parametrize("column, values, message", [
    ("lead_id", ["a", "b", "a", "d"], r"(?s)1 lead id\(s\) occur more than once.*row 2 \(id 'a'\)"),
    ("lead_id", ["a", "", "c", "d"], r"1 lead\(s\) have no id"),
    ("budget", ["100", "lots", "1", "inf"], r"(?s)'budget' has 2 value\(s\).*budget='lots'"),
    ("created_at", ["2026-01-03", "yesterday", "2026-01-02", "2026-01-04"],
     r"'created_at' has 1 of 4 value\(s\) that are not times in time_format 'iso'"),
    ("converted", ["yes", "", "no", "no"], r"1 lead\(s\) have no outcome"),
    ("converted", ["Y", "N", "N", "N"], r"(?s)no lead counts as converted.*positive_values"),
])
def test_bad_values_name_the_row_and_the_fix(cfg, column, values, message):
    with pytest.raises(LeadDataError, match=message):
        validate_history(leads(**{column: values}), cfg)


def test_row_order_when_there_is_no_time_column(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace("time_column: created_at", "time_column: null"))
    history = validate_history(leads(), load_config(path))
    assert history.ids.tolist() == ["a", "b", "c", "d"]


def test_outcomes_from_a_separate_table(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace(
        '  target: {column: converted, positive_values: ["yes"]}\n',
        "  outcomes: {path: outcomes.csv, id_column: id, converted_at_column: won_at}\n"))
    outcomes = pd.DataFrame({"id": ["d", "b", "zz"], "won_at": ["2026-02-01", "", "2026-03-01"]})
    history = validate_history(leads().drop(columns="converted"), load_config(path), outcomes)
    assert dict(zip(history.ids, history.target, strict=True)) == {"a": 0, "b": 0, "c": 0, "d": 1}


def test_empty_history(cfg):
    with pytest.raises(LeadDataError, match="no rows"):
        validate_history(leads().iloc[:0], cfg)


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"lead_id,budget\n\xff\xfe,1\n", "not valid utf-8"),
    ("lead_id,budget\n1,2\n".encode("utf-16"), "UTF-16 byte-order mark: utf-16"),
    (b"sep=;\nlead_id;budget\n1;2\n", "'sep=;', a spreadsheet's hint of the delimiter"),
    (b"SEP=,\nlead_id,budget\n1,2\n", "remove that line, and give the delimiter"),
    (gzip.compress(b"lead_id,budget\n1,2\n", mtime=0),  # mtime fixed: one test id everywhere
     r"is gzip-compressed, not a CSV file: decompress it first \(gunzip FILE\)"),
    (b"PK\x03\x04\x14\x00\x06\x00", r"is a zip archive, not a CSV file: an Excel workbook"),
    (b"Leads Report,,,\n\nFiltered By: this week,,,\nlead_id,budget,industry,won\n1,2,x,0\n",
     r"first line .* is 'Leads Report', not a header: line 4 looks like it \(\['lead_id'"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    with pytest.raises(LeadDataError, match=message):
        read_table(path)


def test_csv_is_read_as_text_so_nothing_is_guessed(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("lead_id,zip\n007,01234\nN/A,\n")
    frame = read_table(path)
    assert frame["lead_id"].tolist() == ["007", "N/A"]
    assert frame["zip"].tolist() == ["01234", ""]
    assert np.all(frame.notna())


def test_a_history_with_duplicate_column_names_is_refused_not_renamed(tmp_path):
    """pandas would read the second 'industry' as 'industry.1' without a word."""
    from leadml.data.tables import read_table

    path = tmp_path / "leads.csv"
    path.write_text("lead_id,industry,industry\n1,retail,software\n")
    with pytest.raises(LeadDataError, match=r"duplicate column names \['industry'\]"):
        read_table(path)
    path.write_text("lead_id,industry,,\n1,retail,,\n")  # a spreadsheet's empty columns
    with pytest.raises(LeadDataError, match=r"2 columns without a name \(empty header cells"):
        read_table(path)


def with_format(tmp_path, time_format: str | None):
    path = tmp_path / "c.yaml"
    extra = f"  time_format: '{time_format}'\n" if time_format else ""
    path.write_text(CONFIG.replace("  time_column: created_at\n",
                                   "  time_column: created_at\n" + extra))
    return load_config(path)


@pytest.mark.parametrize("values, hint", [
    (["660728", "660729", "660801", "660802"], "epoch_s or epoch_ms"),  # never 2066-07-28
    (["2026-01-03", "660728", "2026-01-02", "2026-01-04"], "whole numbers"),  # mixed
    (["03/04/2025", "04/04/2025", "05/04/2025", "06/04/2025"], "'%d/%m/%Y' or '%m/%d/%Y'"),
])
def test_times_are_never_guessed_and_the_error_names_time_format(tmp_path, values, hint):
    with pytest.raises(LeadDataError, match="time_format") as info:
        validate_history(leads(created_at=values), with_format(tmp_path, None))
    assert hint in str(info.value) and "c.yaml" in str(info.value)


@pytest.mark.parametrize("time_format, values, first", [
    ("%d/%m/%Y", ["03/04/2025", "01/04/2025", "02/04/2025", "04/04/2025"], "b"),
    ("%m/%d/%Y", ["03/04/2025", "01/04/2025", "02/04/2025", "04/04/2025"], "b"),
    ("epoch_s", ["1751234567", "1751234000", "1751234100", "1751239999"], "b"),
    ("epoch_ms", ["1751234567000", "1751234000000", "1751234100000", "1751239999000"], "b"),
    ("sequence", ["1003", "1001", "1002", "1004"], "b"),  # an auto-number id, file unsorted
])
def test_each_declared_time_format_orders_the_history(tmp_path, time_format, values, first):
    history = validate_history(leads(created_at=values), with_format(tmp_path, time_format))
    assert history.ids.tolist() == ["b", "c", "a", "d"]
    if time_format == "%d/%m/%Y":
        assert history.time.iloc[0].month == 4 and history.time.iloc[0].day == 1
    if time_format == "%m/%d/%Y":
        assert history.time.iloc[0].month == 1 and history.time.iloc[0].day == 4


def test_iso_reads_times_as_databases_write_their_zones(tmp_path):
    """BigQuery writes '2026-03-05 10:00:00 UTC', Snowflake '... 10:00:00.000 -0800',
    PostgreSQL '... 10:00:00+00': one instant each, ordered as such (they were refused as
    'not in time_format iso'); a zone by its name (CET) is still refused, never guessed."""
    values = ["2025-04-03 10:00:00 UTC", "2025-04-03 09:00:00.000 -0800",
              "2025-04-03 12:00:00+00", "2025-04-03 10:30:00.123456 GMT"]
    history = validate_history(leads(created_at=values), with_format(tmp_path, "iso"))
    assert history.ids.tolist() == ["a", "d", "c", "b"]
    assert history.time.dt.hour.tolist() == [10, 10, 12, 17]
    with pytest.raises(LeadDataError, match="1 of 4"):
        validate_history(leads(created_at=[*values[:3], "2025-04-03 10:00:00 CET"]),
                         with_format(tmp_path, "iso"))


def test_a_pattern_reads_only_its_own_spelling(tmp_path):
    with pytest.raises(LeadDataError, match="1 of 4"):
        validate_history(leads(created_at=["03/04/2025", "2025-04-01", "02/04/2025",
                                           "04/04/2025"]), with_format(tmp_path, "%d/%m/%Y"))


def test_an_unknown_time_format_is_a_config_error(tmp_path):
    from leadml.errors import ConfigError

    with pytest.raises(ConfigError, match="time_format"):
        with_format(tmp_path, "dd/mm/yyyy")


def test_an_unreadable_conversion_time_never_counts_a_lead_as_lost(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace(
        '  target: {column: converted, positive_values: ["yes"]}\n',
        "  outcomes: {path: outcomes.csv, id_column: id, converted_at_column: won_at}\n"))
    outcomes = pd.DataFrame({"id": ["d", "b"], "won_at": ["2026-02-01", "01/02/2026"]})
    with pytest.raises(LeadDataError, match="never counted lost"):
        validate_history(leads().drop(columns="converted"), load_config(path), outcomes)


HORIZON = """\
dataset:
  path: leads.csv
  id_column: lead_id
  time_column: created_at
  as_of: 2026-03-01
  target: {column: converted, positive_values: ["yes"], converted_at_column: won_at,
           horizon_days: 30}
  columns:
    numeric: [budget]
    categorical: [industry]
    excluded: [won_at]
"""


def test_a_horizon_labels_within_n_days_and_leaves_young_leads_out(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(HORIZON)
    raw = leads(created_at=["2026-01-01", "2026-01-02", "2026-02-15", "2026-01-03"],
                converted=["yes", "yes", "yes", "no"],
                won_at=["2026-01-20", "2026-03-01", "2026-02-20", ""])
    history = validate_history(raw, load_config(path))
    # a: within 19 days -> 1; b: 58 days -> 0 within the horizon; c: 14 days old -> left out
    assert history.ids.tolist() == ["a", "b", "d"]
    assert history.target.tolist() == [1, 0, 0]
    assert history.unlabelled == 1 and history.horizon_days == 30
    assert str(history.as_of.date()) == "2026-03-01"


def test_a_horizon_needs_conversion_times_and_a_clock(tmp_path):
    from leadml.errors import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text(HORIZON.replace(", converted_at_column: won_at", ""))
    with pytest.raises(ConfigError, match="converted_at_column"):
        load_config(path)
    path.write_text(HORIZON.replace("time_column: created_at",
                                    "time_column: created_at\n  time_format: sequence"))
    with pytest.raises(ConfigError, match="not a sequence"):
        load_config(path)
    path.write_text(HORIZON)
    raw = leads(converted=["yes", "no", "no", "yes"], won_at=["2026-01-20", "", "", ""])
    with pytest.raises(LeadDataError, match="no conversion time"):
        validate_history(raw, load_config(path))


STATUS = CONFIG.replace('target: {column: converted, positive_values: ["yes"]}',
                        'target: {column: status, positive_values: ["Closed - Converted"],\n'
                        '           negative_values: ["Closed - Not Converted"]}')
STATUSES = ["closed - converted", "Open - Not Contacted", " Closed - Not Converted ", ""]


def test_negative_values_leave_open_leads_out_and_count_them(tmp_path):
    """A CRM's lead status holds open leads beside won and lost ones: counted lost, they
    would teach the model that leads still being worked do not convert."""
    path = tmp_path / "c.yaml"
    path.write_text(STATUS)
    raw = leads(status=STATUSES).drop(columns="converted")
    history = validate_history(raw, load_config(path))
    assert history.ids.tolist() == ["c", "a"]  # b (open) and d (blank) left out
    assert history.target.tolist() == [0, 1] and history.open_leads == 2
    assert history.outcome_values == {"closed - converted": 1, "open - not contacted": 1,
                                      "closed - not converted": 1, "": 1}
    path.write_text(STATUS.replace('"Closed - Not Converted"', '"Closed - Converted"'))
    with pytest.raises(Exception, match="in both positive_values and negative_values"):
        validate_history(raw, load_config(path))
    path.write_text(STATUS.replace('"Closed - Not Converted"', '"Lost"'))
    with pytest.raises(LeadDataError, match="no lead counts as lost"):
        validate_history(raw, load_config(path))
    path.write_text(HORIZON.replace('positive_values: ["yes"]',
                                    'positive_values: ["yes"], negative_values: ["no"]'))
    with pytest.raises(Exception, match="negative_values or horizon_days, not both"):
        load_config(path)


def test_without_negative_values_a_blank_outcome_stops_training_with_both_fixes(cfg):
    with pytest.raises(LeadDataError, match=r"(?s)no outcome in 'converted'.*negative_values"):
        validate_history(leads(converted=["yes", "no", "", "no"]), cfg)


def test_the_audit_asks_whether_values_counted_lost_are_still_open(tmp_path):
    from leadml.data.audit import audit_frame

    path = tmp_path / "c.yaml"
    path.write_text(STATUS.replace(',\n           negative_values: ["Closed - Not Converted"]',
                                   ""))
    raw = leads(status=STATUSES[:3] + ["Working - Contacted"]).drop(columns="converted")
    report, history = audit_frame(raw, load_config(path))
    assert history.open_leads == 0 and history.target.tolist() == [0, 0, 1, 0]
    [note] = [f for f in report.findings if f.column == "status"]
    assert note.kind == "health" and not note.blocking
    assert "counts 3 values as not converted" in note.message
    assert "'open - not contacted' (1)" in note.message and "negative_values" in note.message
    path.write_text(STATUS)
    report, _ = audit_frame(leads(status=STATUSES).drop(columns="converted"), load_config(path))
    [note] = [f for f in report.findings if f.column == "status"]
    assert note.message.startswith("2 leads are still open") and "2 decided leads" in note.message


def test_a_header_repeated_inside_the_history_is_named_as_such(cfg):
    raw = leads()
    raw.loc[2] = list(raw.columns)  # two exports joined with their header lines
    with pytest.raises(LeadDataError, match=r"repeats its header line at row\(s\) \[4\]"):
        validate_history(raw, cfg)


def test_ids_a_spreadsheet_rounded_are_named_as_such(cfg):
    with pytest.raises(LeadDataError, match=r"(?s)occur more than once.*scientific notation"):
        validate_history(leads(lead_id=["1.23457E+11", "1.23457E+11", "c", "d"]), cfg)


def test_spreadsheet_serial_dates_are_read_when_declared_and_named_when_not(cfg, tmp_path):
    """An export saved from a spreadsheet whose date cells were formatted as numbers writes
    days since 1899-12-30 (45292.5 is 2024-01-01 12:00)."""
    iso = ["2026-01-03 08:00:00", "2026-01-01 00:00:00", "2026-01-02 17:45:30",
           "2026-01-04 23:59:59"]
    serial = [f"{(pd.Timestamp(t) - pd.Timestamp('1899-12-30')) / pd.Timedelta(days=1):.10f}"
              for t in iso]
    with pytest.raises(LeadDataError, match=r"spreadsheet's serial dates .* time_format: excel"):
        validate_history(leads(created_at=serial), cfg)
    path = tmp_path / "excel.yaml"
    path.write_text(CONFIG.replace("  time_column: created_at\n",
                                   "  time_column: created_at\n  time_format: excel\n"))
    history = validate_history(leads(created_at=serial), load_config(path))
    expected = validate_history(leads(created_at=iso), cfg)
    assert history.ids.tolist() == expected.ids.tolist() == ["b", "c", "a", "d"]
    pd.testing.assert_series_equal(history.time, expected.time.astype(history.time.dtype),
                                   check_names=False)


def test_iso_times_read_in_arrow_equal_pandas_reading():
    # Arrow strings take a fast path (values._naive_iso_in_arrow) when every stated value is
    # a zone-less ISO time to the microsecond; anything else goes to pandas. Either way the
    # times, the missing ones and the unit are the ones pandas gives for the same text.
    from leadml.data.values import parse_times

    chunks = [
        ["2024-12-29T00:02:02", "2024-12-29", None, " 2024-01-01 10:00 ", "2024-02-29"],
        ["2024-12-29T00:02:02.123", "2024-12-29T00:02:02.123456", "0001-01-01", "3000-01-01"],
        ["2024-12-29T00:02:02Z", "2024-12-29T00:02:02+02:00"],  # zones: pandas' way
        ["2024-12-29T00:02:02.1234567"],  # nanoseconds: pandas' way, its unit
        ["2024-02-30", "2024-12-29T24:00:00", "29/12/2024", "x"],  # unreadable: NaT
        [None, None],
    ]
    for values in chunks:
        arrow = parse_times(pd.Series(values, dtype="str"))
        python = parse_times(pd.Series(values, dtype=object))
        pd.testing.assert_series_equal(arrow, python)
    assert parse_times(pd.Series(chunks[0], dtype="str")).dtype == "datetime64[us, UTC]"
