"""Shared helpers of the benchmark scripts: machine facts, child-process peak memory,
and writing a results file with the command and the date."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import sklearn

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "scikit_learn": sklearn.__version__}


# Peak memory of a command, measured by a small launcher that forks it and reads its
# rusage. Measured directly, every child would report at least this process's own peak:
# Python starts children with vfork, and Linux carries the parent's high-water mark into
# the child's ru_maxrss at exec (a benchmark holding 1M generated leads would floor every
# number at ~1.1 GB). A child forked from the launcher starts from the launcher's ~10 MB.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd`` in a child process; wall seconds and the child's peak RSS in MiB."""
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".maxrss") as peak:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, peak.name, *cmd],
                              env={**os.environ, **(env or {})}, capture_output=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n"
                               f"{proc.stderr.decode()[-3000:]}")
        maxrss_kib = int(peak.read() or 0)
    return {"seconds": round(wall, 2), "peak_rss_mib": round(maxrss_kib / 1024, 1),
            "stdout": proc.stdout.decode()[-2000:]}


def run_measured_tree(cmd: list[str], env: dict | None = None, every: float = 0.2, *,
                      check: bool = True, timeout: float | None = None) -> dict:
    """Like :func:`run_measured`, but peak memory is the largest sum of RSS over the child
    and all its descendants (a Spark driver's JVM and Python workers), sampled; and the
    child's own (``root_peak_rss_mib``: the leadml process, without Spark's JVM and
    workers). ``check=False``: a failure (or ``timeout`` seconds passed, the child killed) is
    returned (``returncode``, the end of its stderr) instead of raised."""
    import tempfile

    import psutil

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:  # no pipe to fill
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out,
                                stderr=err)
        root, peak, root_peak = psutil.Process(proc.pid), 0, 0
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
                root_peak = max(root_peak, root.memory_info().rss)
            except psutil.Error:
                pass
            if timeout is not None and time.perf_counter() - start > timeout:
                for p in [*root.children(recursive=True), root]:
                    with contextlib.suppress(psutil.Error):
                        p.kill()
            time.sleep(every)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0 and check:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"seconds": round(wall, 2), "peak_rss_mib": round(peak / 2**20, 1),
            "root_peak_rss_mib": round(root_peak / 2**20, 1), "returncode": proc.returncode,
            "stdout": stdout[-2000:], **({"stderr": stderr[-1500:]} if proc.returncode else {})}


def write_results(name: str, numbers: dict, summary: str) -> Path:
    """``results/<name>.json`` with everything, ``results/<name>.md`` for people."""
    RESULTS.mkdir(exist_ok=True)
    meta = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
            "machine": machine()}
    (RESULTS / f"{name}.json").write_text(json.dumps({**meta, **numbers}, indent=2) + "\n")
    m = meta["machine"]
    md = (f"# {name}\n\n- date: {meta['date']}\n- command: `{meta['command']}`\n"
          f"- machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Python "
          f"{m['python']}, scikit-learn {m['scikit_learn']}\n\n{summary}\n")
    path = RESULTS / f"{name}.md"
    path.write_text(md)
    return path


BLOCK = 500_000
REPO = Path(__file__).resolve().parents[1]


def write_leads(path: Path, rows: int) -> None:
    """``rows`` generated new leads (no outcome) in blocks: bounded memory, unique ids."""
    from leadml.setup.synthetic import OUTCOME_COLUMNS, make_leads

    first = True
    for k, start in enumerate(range(0, rows, BLOCK)):
        n = min(BLOCK, rows - start)
        block = make_leads(n, seed=100 + k).drop(columns=OUTCOME_COLUMNS)
        block["lead_id"] = f"B{k}-" + block["lead_id"]
        block.to_csv(path, index=False, header=first, mode="w" if first else "a")
        first = False


def train_sample_model(tmp: Path, env: dict, candidates: list[str] | None = None) -> None:
    """Train on the committed sample into the store ``env`` points at (a new version)."""
    import yaml

    config = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
    config["dataset"]["path"] = str(REPO / "data/sample/leads.csv")
    if candidates:
        config["model"]["candidates"] = candidates
    (tmp / "train.yaml").write_text(yaml.safe_dump(config))
    run_measured([sys.executable, "-m", "leadml.cli", "train", "--config",
                  str(tmp / "train.yaml"), "--force-promote"], env)
