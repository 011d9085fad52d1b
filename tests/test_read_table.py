"""A history file reads the same whichever reader takes it: Arrow's for UTF-8 files it
reads exactly, pandas' for anything else (and for the errors)."""

import pandas as pd
import pytest

from leadml.data.tables import _pandas_table, read_table
from leadml.errors import LeadDataError
from tests.helpers import SHARED

CASES = {
    "plain": "lead_id,title,budget\nL1,VP Sales,1000\nL2,,\n",
    "crlf and a bom": "\ufefflead_id,title\r\nL1,Director\r\nL2,CEO\r\n",
    "quoted line breaks and quotes": 'lead_id,note\nL1,"two\nlines"\nL2,"say ""hi"", then"\n',
    "placeholders stay text": "lead_id,x\nL1,NA\nL2,null\nL3,NaN\nL4, padded \n",
    "unicode": "lead_id,city\nL1,Zürich\nL2,東京\nL3,São Paulo\n",
    "blank lines": "lead_id,x\n\nL1,a\n\nL2,b\n\n",
    "header only": "lead_id,x\n",
    "no final line break": "lead_id,x\nL1,a",
    "spaces around header names": " lead_id , x\nL1,a\n",
    "a short row": "lead_id,x,y\nL1,a\nL2,b,c\n",
    "an unclosed quote": 'lead_id,x\nL1,"open\nL2,b\n',
    "nul byte": "lead_id,x\nL1,a\x00b\n",
}


@pytest.mark.parametrize("name", CASES)
def test_both_readers_give_the_same_frame(tmp_path, name):
    path = tmp_path / "leads.csv"
    path.write_bytes(CASES[name].encode("utf-8"))
    try:
        _pandas_table(path, ",", "utf-8")
    except pd.errors.ParserError:  # the file is an error, whoever reads it
        with pytest.raises(LeadDataError, match="malformed"):
            read_table(path)
        return
    read = read_table(path)
    assert read.equals(_pandas_table(path, ",", "utf-8")), name
    assert list(read.columns) == list(_pandas_table(path, ",", "utf-8").columns)
    assert isinstance(read.index, pd.RangeIndex)


def test_semicolons_read_the_same(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text('lead_id;note;budget\nL1;"a; b";1,5\nL2;;\n', encoding="utf-8")
    read = read_table(path, delimiter=";")
    assert read.equals(_pandas_table(path, ";", "utf-8"))
    assert read["note"].tolist() == ["a; b", ""]
    bank = SHARED / "data" / "bank-marketing" / "bank-full.csv"
    if bank.exists():  # (a user's clone has no ../shared)
        assert read_table(bank, delimiter=";").equals(_pandas_table(bank, ";", "utf-8"))


@pytest.mark.parametrize("first", [True, False])
def test_more_fields_than_the_header_is_an_error(tmp_path, first):
    """(pandas alone made a first row's extra fields the index: every value shifted.)"""
    path = tmp_path / "leads.csv"
    rows = ["L1,a,extra,fields", "L2,b"]
    path.write_text("lead_id,x\n" + "\n".join(rows if first else rows[::-1]) + "\n")
    with pytest.raises(LeadDataError, match="malformed"):
        read_table(path)


def test_errors_are_the_exact_readers(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(b"lead_id,x\nL1,caf\xe9\n")
    with pytest.raises(LeadDataError, match="not valid utf-8"):
        read_table(path)
