"""Hostile cases: each defect of the "nothing lost" review, with the documented outcome.

Every case here is a row of docs/reliability.md. The invariant: a run exits 0 or 4 with
scored + rejected = records read (counted line by line), or exits 2, 3, 5 or 6 with a message
and nothing at OUT; never exit 1, never a signal; a killed run never leaves an OUT that its
manifest does not confirm.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadml.cli import app
from leadml.data.tables import scan, scanning
from leadml.setup.synthetic import make_sample
from tests.helpers import REPO

pytestmark = pytest.mark.slow
RULES = REPO / "pipelines" / "configs" / "bant.yaml"
PINNED = "2026-07-01T06:00:00Z"


@pytest.fixture(scope="module")
def leads() -> pd.DataFrame:
    return make_sample(10, seed=5, nightly_rows=1_000)[1].astype(str).replace("nan", "")


def score(path: Path, out: Path, *extra: str):
    result = CliRunner().invoke(app, ["score", str(path), "--output", str(out), "--rules",
                                      str(RULES), "--scored-at", PINNED, *extra])
    manifest = out.with_suffix("").with_name(out.stem + ".manifest.json")
    return result, json.loads(manifest.read_text()) if manifest.exists() else None


def cli(*args: str, env: dict | None = None, timeout: float = 300, **kw):
    return subprocess.run([sys.executable, "-m", "leadml.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})}, **kw)


def rejects_of(out: Path) -> pd.DataFrame:
    return pd.read_csv(out.with_name(out.stem + ".rejects.csv"), dtype=str,
                       keep_default_na=False)


# --- 1. a stray quote swallows the leads after it ------------------------------------------

@pytest.mark.parametrize("column", ["job_title", "industry"])  # last field, a middle one
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])  # the Arrow and the exact reader
def test_a_stray_quote_loses_no_lead(champion, tmp_path, leads, column, encoding):
    lines = leads.to_csv(index=False).splitlines()
    cols = lines[0].split(",")
    assert column in cols
    fields = lines[980].split(",")
    fields[cols.index(column)] = '"Director'
    lines[980] = ",".join(fields)
    if encoding == "latin-1":  # one byte that is not UTF-8 sends it to the exact reader
        lines[5] = lines[5] + "\u00e9"
    path = tmp_path / "in.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    result, manifest = score(path, tmp_path / "out.csv", "--encoding", encoding)
    assert result.exit_code == 0, result.output
    assert manifest["input"]["rows"] == 1_000  # counted line by line, not by the parser
    assert manifest["scored"] + manifest["rejected"] == 1_000
    rejected = rejects_of(tmp_path / "out.csv")
    assert rejected["record"].astype(int).tolist()[-21:] == list(range(980, 1_001))
    assert "unclosed quote" in rejected["reason"].iloc[-21]
    assert len(pd.read_csv(tmp_path / "out.csv")) == manifest["scored"]


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])  # the Arrow and the exact reader
def test_a_bare_carriage_return_splits_a_record_and_both_pieces_are_rejected(
        champion, tmp_path, leads, encoding):
    """An unquoted lone CR is a line break for Python's csv, pandas, Arrow and spreadsheets
    alike, so a writer that leaves it unquoted has written two lines. Both readers read two
    records, neither fits the header, both are rejected with their text: nothing lost."""
    lines = leads.head(10).to_csv(index=False).splitlines()
    cols = lines[0].split(",")
    fields = lines[4].split(",")
    fields[cols.index("job_title")] = "VP\rSales"
    lines[4] = ",".join(fields)
    if encoding == "latin-1":  # one byte that is not UTF-8 sends it to the exact reader
        other = lines[2].split(",")
        other[cols.index("job_title")] += "\u00e9"
        lines[2] = ",".join(other)
    path = tmp_path / "in.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    result, manifest = score(path, tmp_path / "out.csv", "--encoding", encoding,
                             "--max-reject-rate", "0.5")
    assert result.exit_code == 0, result.output
    assert manifest["input"]["rows"] == 11  # 10 leads, one of them split in two
    assert manifest["scored"] == 9 and manifest["rejected"] == 2
    rejected = rejects_of(tmp_path / "out.csv")
    assert rejected["record"].astype(int).tolist() == [4, 5]
    assert rejected["raw_record"].str.contains("VP").iloc[0]
    assert rejected["raw_record"].str.contains("Sales").iloc[1]


# --- 2. side files checked against the input and the output --------------------------------

def test_no_file_of_a_run_overwrites_another(champion, tmp_path, leads):
    source = tmp_path / "in.csv"
    leads.to_csv(source, index=False)
    before = source.read_bytes()
    for extra, out in ((["--rejects", str(source)], "out.csv"),
                       (["--rejects", str(tmp_path / "out.csv")], "out.csv"),
                       (["--rejects", str(tmp_path / "out.manifest.json")], "out.csv")):
        result, _ = score(source, tmp_path / out, *extra)
        assert result.exit_code == 2, (extra, out, result.output)
        assert "same file" in result.output or "is the input" in result.output
    named = tmp_path / "n.rejects.csv"  # its own rejects file would be the input
    leads.to_csv(named, index=False)
    result, _ = score(named, tmp_path / "n.csv")
    assert result.exit_code == 2 and "is the input" in result.output
    link = tmp_path / "link.csv"
    link.symlink_to(source)
    result, _ = score(source, link)
    assert result.exit_code == 2
    assert source.read_bytes() == before and not (tmp_path / "out.csv").exists()


def test_an_output_path_that_is_a_folder_fails_before_scoring(champion, tmp_path, leads):
    leads.to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "out.csv").mkdir()
    result, manifest = score(tmp_path / "in.csv", tmp_path / "out.csv")
    assert result.exit_code == 2 and "is a folder" in result.output and manifest is None


# --- 3. the commit protocol, killed at every step -------------------------------------------

STEPS = ["begun", "before_commit", "rejects_committed", "output_committed",
         "manifest_committed"]


def test_sigkill_at_each_commit_step_never_leaves_an_unconfirmed_output(champion, tmp_path,
                                                                        leads):
    """Killed at each step of the commit in turn, each time onto the output the run before
    confirmed: OUT is never confirmed unless the manifest says ok, and the rerun gives
    the same bytes."""
    source = tmp_path / "in.csv"
    bad = leads.copy()
    bad.loc[3, "estimated_budget"] = "lots"  # one reject, so the rejects file is committed
    bad.to_csv(source, index=False)
    out = tmp_path / "scored.csv"
    args = ["score", str(source), "-o", str(out), "--rules", str(RULES), "--scored-at", PINNED]
    # Only the killed runs are processes of their own; yesterday's run and each rerun are
    # in this one (what a rerun finds is on disk either way), a process start less each.
    assert CliRunner().invoke(app, args).exit_code == 0  # yesterday's run
    yesterday = out.read_bytes()
    for step in STEPS:
        killed = cli(*args, env={"MLFLOW_TRACKING_URI": champion, "LEADML_KILL_AT": step})
        assert killed.returncode == -signal.SIGKILL, step
        manifest = json.loads(out.with_name("scored.manifest.json").read_text())
        if step == "manifest_committed":
            assert manifest["status"] == "ok"
            assert manifest["output_sha256"] and out.exists()
        else:  # the manifest does not confirm whatever OUT holds
            assert manifest["status"] == "running", step
            if step != "begun":  # yesterday's OUT was taken away when the run began
                assert not out.exists() or step == "output_committed", step
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, (step, again.output)
        assert json.loads(out.with_name("scored.manifest.json").read_text())["status"] == "ok"
        assert out.read_bytes() == yesterday, step  # same input, pinned time: same bytes
        assert not list(tmp_path.glob(".*.tmp")), step


def test_a_failed_run_takes_yesterdays_output_away(champion, tmp_path, leads):
    leads.to_csv(tmp_path / "good.csv", index=False)
    out = tmp_path / "scored.csv"
    assert score(tmp_path / "good.csv", out)[0].exit_code == 0
    bad = leads.assign(estimated_budget="lots")
    bad.to_csv(tmp_path / "bad.csv", index=False)
    result, manifest = score(tmp_path / "bad.csv", out)
    assert result.exit_code == 4
    assert not out.exists()  # a loader keyed on OUT cannot import yesterday's leads again
    assert manifest["status"] == "failed: too many rejects" and manifest["output"] is None


def test_sigterm_cleans_up_and_records_the_failure(champion, tmp_path):
    _, big = make_sample(10, seed=3, nightly_rows=150_000)
    big.to_csv(tmp_path / "big.csv", index=False)
    out = tmp_path / "scored.csv"
    proc = subprocess.Popen([sys.executable, "-m", "leadml.cli", "score", str(tmp_path /
                             "big.csv"), "-o", str(out), "--rules", str(RULES),
                             "--chunk-rows", "2000"], env={**os.environ,
                            "MLFLOW_TRACKING_URI": champion},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".scored.csv.*.tmp")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
    manifest = json.loads(out.with_name("scored.manifest.json").read_text())
    assert manifest["status"] == "failed: interrupted"


def test_two_runs_to_one_output_take_turns(champion, tmp_path, leads):
    leads.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "scored.csv"
    args = ["score", str(tmp_path / "in.csv"), "-o", str(out), "--rules", str(RULES),
            "--scored-at", PINNED]
    env = {**os.environ, "MLFLOW_TRACKING_URI": champion}
    procs = [subprocess.Popen([sys.executable, "-m", "leadml.cli", *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    assert len(pd.read_csv(out)) == 1_000
    assert json.loads(out.with_name("scored.manifest.json").read_text())["status"] == "ok"


# --- 4. bad input ends as a reject or exit 3, never exit 1 -----------------------------------

def _parquet_folder(leads, path):
    path.mkdir()
    for i, start in enumerate(range(0, len(leads), 400)):
        leads.iloc[start:start + 400].to_parquet(path / f"part-{i}.parquet", index=False)
    return path


def _corrupt_parquet(leads, path):
    leads.to_parquet(path, index=False, row_group_size=100)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 2_000] = b"\x00" * 2_000
    path.write_bytes(bytes(raw))
    return path


CASES = {  # name: (make the file, exit code, text in the output)
    "duplicate column names": (lambda d, p: p.write_text(
        d.to_csv(index=False).replace("industry", "lead_source", 1)) or p, 3, "duplicate column"),
    "a 60 KB field early": (lambda d, p: d.assign(
        job_title=["x" * 60_000] + d["job_title"].tolist()[1:]).to_csv(p, index=False) or p,
        0, "scored 1000 of 1000"),
    "an incomplete UTF-8 character at the end": (lambda d, p: p.write_bytes(
        d.to_csv(index=False).rstrip("\n").encode() + b"\xe2\x82"), 0, "(1 rejected)"),
    "a Parquet list column": (lambda d, p: d.assign(tags=[["a"]] * len(d)).to_parquet(
        p.with_suffix(".parquet")) or p.with_suffix(".parquet"), 3, "nested"),
    "a folder of Parquet parts": (lambda d, p: _parquet_folder(d, p.with_suffix("")),
                                  0, "scored 1000 of 1000"),
    "a corrupt Parquet page": (lambda d, p: _corrupt_parquet(d, p.with_suffix(".parquet")),
                               3, "corrupt"),
    "a missing input file": (lambda d, p: p.with_name("absent.csv"), 3, "does not exist"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_has_its_documented_exit(champion, tmp_path, leads, case):
    make, code, text = CASES[case]
    path = make(leads, tmp_path / "in.csv")
    path = path if isinstance(path, Path) else tmp_path / "in.csv"
    out = tmp_path / "out" / "scored.csv"
    result, manifest = score(path, out)
    assert result.exit_code == code, result.output
    assert text in result.output
    assert "internal error" not in result.output
    if code == 0:
        assert manifest["scored"] + manifest["rejected"] == 1_000
    else:
        assert not out.exists()


@contextmanager
def read_only_folder(path: Path):
    """A folder nobody can write to: chmod for a user; for root (who ignores permissions)
    a read-only tmpfs mounted there."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                           capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"root cannot mount a read-only tmpfs here: {mount.stderr!r}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_output_folder_is_exit_6(champion, tmp_path, leads):
    leads.to_csv(tmp_path / "in.csv", index=False)
    with read_only_folder(tmp_path / "ro") as folder:
        done = cli("score", str(tmp_path / "in.csv"), "-o", str(folder / "out.csv"),
                   "--rules", str(RULES), env={"MLFLOW_TRACKING_URI": champion})
        assert not (folder / "out.csv").exists()
    assert done.returncode == 6, done.stderr
    assert "cannot write" in done.stderr and "internal error" not in done.stderr


def test_a_full_disk_is_exit_6_and_leaves_nothing(champion, tmp_path, leads):
    """A file size limit stands in for a full disk: writes fail with EFBIG as with ENOSPC."""
    pd.concat([leads] * 20, ignore_index=True).assign(
        lead_id=lambda d: [f"L{i}" for i in range(len(d))]).to_csv(tmp_path / "in.csv",
                                                                    index=False)
    out = tmp_path / "out" / "scored.csv"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    done = cli("score", str(tmp_path / "in.csv"), "-o", str(out), "--rules", str(RULES),
               env={"MLFLOW_TRACKING_URI": champion}, preexec_fn=limit)
    assert done.returncode == 6, done.stderr
    assert "cannot write" in done.stderr
    assert not out.exists() and not list(out.parent.glob(".*.tmp"))


def test_early_exits_are_the_documented_code_every_time(champion, tmp_path, leads):
    """An Arrow reader thread left running at exit aborted 1 run in 24 (exit 134);
    benchmarks/reliability.py repeats each path 200 times."""
    leads.drop(columns=["estimated_budget"]).to_csv(tmp_path / "cols.csv", index=False)
    leads.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    env = {"MLFLOW_TRACKING_URI": champion}
    for name, code in (("cols.csv", 3), ("semi.csv", 3), ("absent.csv", 3)):
        for _ in range(3):
            done = cli("score", str(tmp_path / name), "-o", str(tmp_path / "o.csv"), env=env)
            assert done.returncode == code, (name, done.returncode, done.stderr[-500:])


# --- 5. one reading of every value ----------------------------------------------------------

def test_nan_spellings_are_read_the_same_whatever_the_chunk_holds(champion, tmp_path, leads):
    spelled = leads.copy()
    spelled.loc[[1, 2, 3], "web_visits"] = ["-nan", "NaN", "+NAN"]
    spelled.to_csv(tmp_path / "a.csv", index=False)
    spelled.loc[4, "meetings"] = "three"  # a bad value in the same chunk: the pandas path
    spelled.to_csv(tmp_path / "b.csv", index=False)
    _, a = score(tmp_path / "a.csv", tmp_path / "a_out.csv")
    _, b = score(tmp_path / "b.csv", tmp_path / "b_out.csv")
    assert a["rejected"] == 0 and b["rejected"] == 1


# --- 6. hostile configs and rules -----------------------------------------------------------

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
HOSTILE = {
    "a YAML bomb": (BOMB, "YAML bomb"),
    "a recursive alias": ("a: &a [*a]\n", "recursive"),
    "a python object tag": ("budget: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
                            "not valid YAML"),
    "deep nesting": ("x: " + "[" * 5_000 + "]" * 5_000 + "\n", "nested too deeply"),
    "an enormous value": ("label_policy: {disqualify_below_probability: 1e400}\n", "problem"),
    "an unknown key deep down": ("budget: {column: b, min: 1, colour: red}\n", "unknown key"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("command", ["train", "score"])
def test_hostile_configs_and_rules_are_exit_2_quickly(tmp_path, leads, case, command):
    text, message = HOSTILE[case]
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    leads.to_csv(tmp_path / "in.csv", index=False)
    args = ["train", "--config", str(path)] if command == "train" else \
        ["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), "--rules",
         str(path), "--rules-only"]
    started = time.perf_counter()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert time.perf_counter() - started < 10
    assert not Path("/tmp/pwned").exists()


# --- 8. spreadsheet formulas; 9. absurd values ----------------------------------------------

def test_csv_text_cannot_start_a_formula_and_ids_stay_exact(champion, tmp_path, leads):
    from leadml.data.tables import spreadsheet_text

    hostile = leads.copy()
    hostile.loc[0, "lead_id"] = "=1+1"
    hostile.loc[1, "job_title"] = '=HYPERLINK("http://x","click")'
    hostile.loc[2, "estimated_budget"] = "@SUM(A1)"  # rejected: its raw record is echoed
    hostile.loc[2, "lead_id"] = "+44"
    hostile.to_csv(tmp_path / "in.csv", index=False)
    result, _ = score(tmp_path / "in.csv", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert scored["lead_id"].iloc[0] == "'=1+1"  # escaped, and read back exactly:
    assert spreadsheet_text(scored["lead_id"]).iloc[0] == "=1+1"
    rejected = rejects_of(tmp_path / "out.csv")
    assert rejected["lead_id"].tolist() == ["'+44"]
    for col in ("reason", "raw_record"):
        assert not rejected[col].str.match(r"^[=+\-@]").any()
    assert rejected["raw_record"].iloc[0].startswith("'+44,")
    assert not scored["reasons"].str.match(r"^[=+\-@]").any()
    score(tmp_path / "in.csv", tmp_path / "out.parquet")
    assert pd.read_parquet(tmp_path / "out.parquet")["lead_id"].iloc[0] == "=1+1"


def test_numbers_far_outside_training_are_rejected_not_scored_as_certain(champion, tmp_path,
                                                                         leads):
    absurd = leads.copy()
    absurd.loc[0, "estimated_budget"] = "1e300"
    absurd.loc[1, "meetings"] = "1e300"
    absurd.loc[2, "estimated_budget"] = str(2 * float(leads["estimated_budget"].replace(
        "", np.nan).astype(float).max()))  # large but plausible: scored
    absurd.to_csv(tmp_path / "in.csv", index=False)
    result, manifest = score(tmp_path / "in.csv", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    rejected = rejects_of(tmp_path / "out.csv")
    assert rejected["record"].tolist() == ["1", "2"]
    assert rejected["reason"].str.contains("far outside what the model was trained on").all()


def test_a_quoted_line_break_and_an_overlong_field_are_told_apart_by_the_fast_reader(
        champion, tmp_path, leads):
    """The Arrow reader's checks scan its text buffers first: a note-like value holding a
    line break is scored, a field over MAX_FIELD_CHARS (in characters, counted after the
    byte scan) is rejected, and no lead is lost either way."""
    from leadml.data.tables import MAX_FIELD_CHARS

    frame = leads.copy()
    frame.loc[10, "job_title"] = "Head of Sales\nEMEA"  # a real multi-line value
    frame.loc[20, "job_title"] = "é" * (MAX_FIELD_CHARS // 2 + 1)  # long in bytes only
    frame.loc[30, "industry"] = "x" * (MAX_FIELD_CHARS + 1)
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    result, manifest = score(path, tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    assert manifest["scored"] + manifest["rejected"] == len(frame)
    rejected = rejects_of(tmp_path / "out.csv")
    assert rejected["record"].astype(int).tolist() == [31]
    assert "longer than" in rejected["reason"].iloc[0]
    scored = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert {frame.loc[10, "lead_id"], frame.loc[20, "lead_id"]} <= set(scored["lead_id"])


def test_the_input_hash_beside_a_failing_run_stops_at_its_next_block(tmp_path):
    # The input's SHA-256 is taken in a thread beside the scoring (leadml.data.tables.scanning); a
    # run that fails (or is stopped by SIGTERM) must not wait for the hash of a large file.
    import threading


    path = tmp_path / "leads.csv"
    path.write_bytes(b"lead_id\n" + b"1\n" * (5 << 20))  # 10 MiB: three blocks
    stop = threading.Event()
    stop.set()
    with pytest.raises(InterruptedError):
        scan(path, stop=stop)
    with pytest.raises(ValueError), scanning(path) as scanned:
        raise ValueError("the run failed")
    assert scanned.done()  # (the thread has ended when the with-block is left)
    with scanning(path) as scanned:
        assert scanned.result() == scan(path)  # undisturbed, the same answer
