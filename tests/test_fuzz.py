"""Fuzzed lead files (Hypothesis): random quoting, delimiters, encodings, byte-order marks,
line endings, field sizes, ids, numbers and dates in every spelling, stray quotes, random
bytes, truncation; Parquet with random types. The invariant, whatever the file:

- the run returns a manifest with scored + rejected = records read, the output holding the
  scored rows and the rejects file the rejected ones (and, when the bytes were not damaged,
  records read = the leads written); or
- it raises TooManyRejects (rejects and a failed manifest, no output); or
- it raises LeadDataError / ConfigError (a message, no output);
- never any other exception, never a temporary left behind.

CI runs ``LEADML_FUZZ_EXAMPLES`` examples (default 60); ``benchmarks/reliability.py`` runs
thousands with a fixed seed.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from leadml.config import load_rules
from leadml.data.values import parse_numbers
from leadml.errors import ConfigError, LeadDataError, TooManyRejects
from leadml.scoring.chunks import score_file
from leadml.scoring.settings import ScoreSettings
from leadml.setup.synthetic import make_sample
from tests.helpers import REPO

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("LEADML_FUZZ_EXAMPLES", "60"))
SEED = int(os.environ.get("LEADML_FUZZ_SEED", "20261124"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=list(HealthCheck))

BASE = make_sample(10, seed=9, nightly_rows=40)[1].astype(str).replace("nan", "")
NUMBERS = ["12", " 12 ", "1e3", "1E-2", "-0", "+7", ".5", "5.", "1_000", "1,000", "-nan",
           "NaN", "nAn", "inf", "-Infinity", "1e400", "1e300", "0x1F", "\u0661\u0662", "",
           "N/A", "Select", "twelve", "12abc", "9" * 40]
DATES = ["2026-06-01", "2026-06-01T10:00:00Z", "2026-06-01 10:00:00+02:00", "01/02/2026",
         "1751234567", "660728", "2026-13-45", "yesterday", "", "2099-01-01T00:00:00"]
TEXT = ['"Director', 'Head of "Growth"', "VP\nSales", "VP\r\nSales", "a,b;c\t|d", "=1+1",
        "+44 20", "-x", "@SUM(A1)", "x" * 70_000, "\u00e9\u00e8\u4e2d\U0001f600", "", " ",
        "\x00", '"', '""', "'"]
IDS = ["", "007", str(2**63 + 11), "=HYPERLINK(1)", "dup", "L 1", '"L1"']
NUMERIC = ["estimated_budget", "web_visits", "email_opens", "form_fills", "meetings"]


@st.composite
def lead_files(draw):
    """(bytes of a CSV lead file, its delimiter, its encoding, leads written, damaged?)."""
    n = draw(st.integers(0, 25))
    frame = BASE.sample(n=n, replace=True, random_state=draw(st.integers(0, 10**6)))
    frame = frame.reset_index(drop=True).copy()
    for _ in range(draw(st.integers(0, 12)) if n else 0):
        row = draw(st.integers(0, n - 1))
        kind = draw(st.sampled_from(["number", "date", "text", "id"]))
        if kind == "number":
            frame.loc[row, draw(st.sampled_from(NUMERIC))] = draw(st.sampled_from(NUMBERS))
        elif kind == "date":
            frame.loc[row, "created_at"] = draw(st.sampled_from(DATES))
        elif kind == "text":
            col = draw(st.sampled_from(["job_title", "industry", "country", "stated_need"]))
            frame.loc[row, col] = draw(st.sampled_from(TEXT) | st.text(max_size=30))
        else:
            frame.loc[row, "lead_id"] = draw(st.sampled_from(IDS))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, sep=delimiter, quoting=quoting, lineterminator=ending)
    text = buffer.getvalue()
    # A lone CR that the writer left unquoted (it quotes only the characters of its own line
    # ending) is a line break for every reader: the file holds more lines than leads, and
    # the split lead is rejected in pieces (tests/test_reliability.py pins this).
    damaged = any(isinstance(v, str) and "\r" in v and '"' + v not in text
                  for v in frame.to_numpy().ravel())
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "cp1252"]))
    data = text.encode(encoding, errors="replace")
    if encoding == "utf-8" and draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 3)) == 0:  # random bytes somewhere
        damaged = True
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if draw(st.integers(0, 5)) == 0:  # cut short
        damaged = True
        data = data[:draw(st.integers(0, len(data)))]
    return data, delimiter, encoding, n, damaged


@pytest.fixture(scope="module")
def scorer(trained_store):
    """The champion model, loaded once for every generated file."""
    from leadml.registry import load_scoring_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained_store)
        model, contract = load_scoring_model("models:/leadml@champion")
    return model, contract, load_rules(REPO / "pipelines" / "configs" / "bant.yaml")


def check_invariant(scorer, path: Path, settings_: ScoreSettings, *, expect_rows=None):
    model, contract, rules = scorer
    out = path.parent / "out.csv"
    rejects = path.parent / "out.rejects.csv"
    try:
        manifest = score_file(path, out, model=model, contract=contract, rules=rules,
                              settings=settings_)
    except TooManyRejects:
        assert not out.exists() and rejects.exists()
    except (LeadDataError, ConfigError) as exc:
        assert str(exc) and not out.exists()
    else:
        assert manifest["status"] == "ok"
        rows = manifest["input"]["rows"]
        assert manifest["scored"] + manifest["rejected"] == rows
        written = pd.read_csv(out, dtype=str, keep_default_na=False) if out.suffix == ".csv" \
            else pd.read_parquet(out)
        assert len(written) == manifest["scored"]
        assert len(pd.read_csv(rejects, dtype=str, keep_default_na=False)) == \
            manifest["rejected"]
        if expect_rows is not None:
            assert rows == expect_rows
    assert not list(path.parent.glob(".*.tmp"))


@seed(SEED)
@FUZZ
@given(lead_files(), st.sampled_from([1, 7, 50_000]))
def test_fuzzed_csv_files_keep_the_invariant(scorer, case, chunk_rows):
    data, delimiter, encoding, n, damaged = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        path.write_bytes(data)
        check_invariant(scorer, path, ScoreSettings(
            delimiter=delimiter, encoding=encoding, chunk_rows=chunk_rows, max_reject_rate=1.0,
            scored_at="2026-07-01T06:00:00Z", reasons=False),
            expect_rows=None if damaged else n)


@seed(SEED)
@FUZZ
@given(st.integers(0, 30), st.sampled_from(["string", "float", "int", "mixed", "null"]),
       st.integers(1, 8), st.booleans())
def test_fuzzed_parquet_files_keep_the_invariant(scorer, n, kind, groups, nested):
    frame = BASE.head(n).copy()
    rng = np.random.default_rng(n)
    if kind == "float":
        frame["estimated_budget"] = rng.normal(5e4, 3e4, n)
    elif kind == "int":
        frame["web_visits"] = rng.integers(-5, 50, n)
    elif kind == "mixed":
        frame["meetings"] = [1.5, "x", None, 3][: n % 4] + [None] * (n - n % 4)
        frame["meetings"] = frame["meetings"].astype(str)
    elif kind == "null":
        frame["industry"] = None
    if nested:
        frame["tags"] = [["a", "b"]] * n
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.parquet"
        frame.to_parquet(path, index=False, row_group_size=max(1, n // groups or 1))
        check_invariant(scorer, path, ScoreSettings(max_reject_rate=1.0, reasons=False,
                                                    scored_at="2026-07-01T06:00:00Z"),
                        expect_rows=None if nested else n)


@seed(SEED)
@FUZZ
@given(st.lists(st.sampled_from(NUMBERS) | st.text(max_size=12), max_size=30))
def test_one_reading_of_every_number_whichever_path_the_chunk_takes(values):
    """The Arrow fast path and the pandas path read every value the same way."""
    markers = ("", "N/A", "Select")
    arrow = parse_numbers(pd.Series(values, dtype="string[pyarrow]"), markers)
    plain = parse_numbers(pd.Series(values, dtype=object), markers)
    np.testing.assert_array_equal(arrow[1], plain[1])
    np.testing.assert_array_equal(arrow[0].to_numpy(), plain[0].to_numpy())
    # one bad neighbour changes nothing for the others
    with_bad = parse_numbers(pd.Series([*values, "not a number"], dtype="string[pyarrow]"),
                             markers)
    np.testing.assert_array_equal(with_bad[1][:-1], plain[1])


# --- the same promise on every path: the Python API and the Spark engine -------------------

ID_KINDS = ["text", "Int64", "float", "int", "huge", "mixed", "categorical", "padded"]


@st.composite
def lead_frames(draw):
    """(a DataFrame of leads as a notebook holds them, the leads in it): ids and fields of
    every dtype pandas gives (nullable integers with gaps, floats with NaN, objects of mixed
    types, integers past int64, categoricals), and columns named by numbers."""
    n = draw(st.integers(0, 25))
    frame = BASE.sample(n=n, replace=True, random_state=draw(st.integers(0, 10**6)))
    frame = frame.reset_index(drop=True).copy()
    ids = list(range(1, n + 1))
    kind = draw(st.sampled_from(ID_KINDS))
    gap = n and draw(st.booleans())
    if kind == "Int64":
        frame["lead_id"] = pd.array([None if gap and i == 1 else i for i in ids], dtype="Int64")
    elif kind == "float":
        frame["lead_id"] = [np.nan if gap and i == 1 else float(i) for i in ids]
    elif kind == "int":
        frame["lead_id"] = np.array(ids, dtype=np.int64)
    elif kind == "huge":
        frame["lead_id"] = [2**70 + i for i in ids]
    elif kind == "mixed":
        frame["lead_id"] = [i if i % 2 else f"L{i}" for i in ids]
    elif kind == "categorical":
        frame["lead_id"] = pd.Categorical([f"C{i}" for i in ids])
    elif kind == "padded":
        frame["lead_id"] = [f" P{i}" if gap and i == 1 else f"P{i}" for i in ids]
    for col in draw(st.lists(st.sampled_from(NUMERIC), max_size=3, unique=True)):
        kind_of = draw(st.sampled_from(["float", "Int64", "mixed", "text"]))
        values = pd.to_numeric(frame[col], errors="coerce")
        if kind_of == "float":
            frame[col] = values.astype(float)
        elif kind_of == "Int64":
            frame[col] = values.round().astype("Int64")
        elif kind_of == "mixed":
            frame[col] = [v if i % 3 else draw(st.sampled_from([None, "x", True, 1e400, -1]))
                          for i, v in enumerate(values)]
        else:
            frame[col] = frame[col].astype(str)
    if draw(st.booleans()):
        frame["industry"] = frame["industry"].astype("category")
    if draw(st.booleans()):
        frame[7] = "an extra column named by a number"
    return frame, n


@pytest.mark.filterwarnings("ignore")
@seed(SEED)
@FUZZ
@given(lead_frames())
def test_fuzzed_frames_keep_the_invariant_through_the_api(scorer, case):
    """leadml.score_leads: every row of the frame is a scored lead or a reject with its row
    number, or the frame is refused with a LeadDataError; never another exception."""
    from leadml.api import LeadModel, score_leads

    frame, n = case
    model, contract, rules = scorer
    try:
        done = score_leads(frame, LeadModel(model, contract, uri="fuzz"), rules=rules,
                           reasons=False, scored_at="2026-07-01T06:00:00Z")
    except (LeadDataError, ConfigError) as exc:
        assert str(exc)
        return
    assert len(done.leads) + len(done.rejects) == n
    assert sorted(done.rejects["row"]) == sorted(set(done.rejects["row"]))
    assert set(done.rejects["row"]) <= set(range(n))


SPARK_EXAMPLES = int(os.environ.get("LEADML_FUZZ_SPARK_EXAMPLES", "6"))


@pytest.fixture(scope="module")
def spark_session():
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    from leadml.scoring.spark import session

    s = session("local[2]")
    s.conf.set("spark.sql.files.maxPartitionBytes", "2k")  # several partitions per file
    s.conf.set("spark.sql.files.openCostInBytes", "512")
    yield s
    s.stop()


@seed(SEED)
@settings(max_examples=SPARK_EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=list(HealthCheck))
@given(lead_files())
def test_fuzzed_csv_files_keep_the_invariant_on_spark(scorer, spark_session, case):
    """The Spark engine on the same generated files: scored + rejected = records read, the
    leads written when the bytes are intact, no temporary left; or a documented refusal."""
    from leadml.scoring.spark import score_spark

    data, delimiter, encoding, n, damaged = case
    model, contract, rules = scorer
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        path.write_bytes(data)
        out = Path(tmp) / "out.parquet"
        try:
            manifest = score_spark(path, out, model=model, contract=contract, rules=rules,
                                   settings=ScoreSettings(
                                       delimiter=delimiter, encoding=encoding,
                                       max_reject_rate=1.0, reasons=False,
                                       scored_at="2026-07-01T06:00:00Z"),
                                   spark=spark_session)
        except (LeadDataError, ConfigError) as exc:
            assert str(exc) and not out.exists()
        else:
            rows = manifest["input"]["rows"]
            assert manifest["scored"] + manifest["rejected"] == rows
            assert len(pd.read_parquet(out)) == manifest["scored"]
            rejected = Path(tmp) / "out.rejects.parquet"
            assert (len(pd.read_parquet(rejected)) if rejected.exists() else 0) == \
                manifest["rejected"]
            if not damaged:
                assert rows == n
        assert not list(Path(tmp).glob(".*.tmp"))
