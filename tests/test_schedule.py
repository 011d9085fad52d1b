"""The scheduler recipes (cron, Airflow, container) are checked as far as this machine
allows: every leadml command in them is one the CLI accepts, the DAG parses (and imports
where Airflow is installed), the Dockerfile copies files that exist."""

import ast
import re
import shlex

from typer.testing import CliRunner

from leadml.cli import app
from tests.helpers import REPO

SCHEDULE = REPO / "pipelines" / "schedule"


def _accepted(command: list[str]) -> None:
    """Each option of a leadml command line is one its subcommand declares."""
    sub = command[0]
    shown = CliRunner().invoke(app, [sub, "--help"], terminal_width=200).output
    for option in (c for c in command[1:] if c.startswith("--")):
        assert option in shown, f"leadml {sub} has no option {option}"


def test_every_cron_line_is_five_times_and_a_leadml_command_it_accepts():
    lines = [x for x in (SCHEDULE / "crontab").read_text().splitlines()
             if x.strip() and not x.startswith("#") and "=" not in x.split()[0]]
    assert len(lines) == 3
    for line in lines:
        fields = line.split()
        assert all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5]), line
        words = shlex.split(" ".join(fields[5:]).replace("\\%", "%"))
        _accepted(words[words.index("$LEADML") + 1:words.index(">>")])


def test_the_airflow_dag_parses_and_calls_commands_leadml_accepts():
    source = (SCHEDULE / "airflow_dag.py").read_text()
    tree = ast.parse(source)
    compile(tree, "airflow_dag.py", "exec")
    commands = [ast.literal_eval(node.value) if isinstance(node.value, ast.Constant) else
                "".join(part.value for part in ast.walk(node.value)
                        if isinstance(part, ast.Constant) and isinstance(part.value, str))
                for node in ast.walk(tree)
                if isinstance(node, ast.keyword) and node.arg == "bash_command"]
    assert len(commands) == 2
    for command in commands:  # the leadml path is a formatted value: words start at the subcommand
        _accepted(shlex.split(command.split("&&")[-1]))


def _dag_module(monkeypatch):
    """The DAG module run against a stand-in of the two Airflow names it imports (Airflow
    is not installed here: it pins much of what leadml uses), recording each DAG's tasks."""
    import importlib.util
    import sys
    import types

    class DAG:
        current = None

        def __init__(self, dag_id, **kwargs):
            self.dag_id, self.kwargs, self.tasks = dag_id, kwargs, {}

        def __enter__(self):
            DAG.current = self
            return self

        def __exit__(self, *exc):
            DAG.current = None
            return False

    class BashOperator:
        def __init__(self, task_id, bash_command, **kwargs):
            self.task_id, self.bash_command, self.kwargs = task_id, bash_command, kwargs
            DAG.current.tasks[task_id] = self

    airflow = types.ModuleType("airflow")
    airflow.DAG = DAG
    bash = types.ModuleType("airflow.operators.bash")
    bash.BashOperator = BashOperator
    monkeypatch.setitem(sys.modules, "airflow", airflow)
    monkeypatch.setitem(sys.modules, "airflow.operators", types.ModuleType("airflow.operators"))
    monkeypatch.setitem(sys.modules, "airflow.operators.bash", bash)
    spec = importlib.util.spec_from_file_location("leadml_dag", SCHEDULE / "airflow_dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cron_line(command: str) -> str:
    return next(x for x in (SCHEDULE / "crontab").read_text().splitlines()
                if not x.startswith("#") and f"$LEADML {command}" in x)


def test_the_dags_score_nightly_and_monitor_weekly_when_the_crontab_does(monkeypatch):
    module = _dag_module(monkeypatch)
    assert module.dag.dag_id == "leadml_nightly" and module.dag.kwargs["catchup"] is False
    assert set(module.dag.tasks) == {"score"} and set(module.weekly.tasks) == {"monitor"}
    assert "/.venv/bin/leadml score" in module.dag.tasks["score"].bash_command
    for dag, command in ((module.dag, "score"), (module.weekly, "monitor")):
        assert dag.kwargs["schedule"] == " ".join(_cron_line(command).split()[:5]), command
    assert module.weekly.tasks["monitor"].kwargs["retries"] == 0  # exit 7 is an alert


def test_the_score_task_rendered_for_one_data_interval_scores_the_file_cron_scores(
        monkeypatch):
    """Rendered as Airflow 2 renders it (Jinja, with its ``ds`` and ``ts`` filters) for the
    run that starts at 02:15 on 2026-12-08: the interval's end names tonight's file, as
    ``date +%F`` does in the crontab at that time, and pins the scoring time."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    import jinja2

    module = _dag_module(monkeypatch)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters.update(ds=lambda t: t.strftime("%Y-%m-%d"), ts=lambda t: t.isoformat())
    start, end = datetime(2026, 12, 7, 2, 15, tzinfo=UTC), datetime(2026, 12, 8, 2, 15, tzinfo=UTC)
    context = {"data_interval_start": start, "data_interval_end": end, "ds": "2026-12-07",
               "var": SimpleNamespace(value=SimpleNamespace(leadml_home="/srv/leadml"))}
    rendered = env.from_string(module.dag.tasks["score"].bash_command).render(context)
    assert rendered == (
        "cd /srv/leadml && /srv/leadml/.venv/bin/leadml score /data/crm/nightly/2026-12-08.csv "
        "--output /data/scored/2026-12-08.csv --rules pipelines/configs/bant.yaml "
        "--scored-at 2026-12-08T02:15:00+00:00")
    cron = _cron_line("score").replace("$(date +\\%F)", end.strftime("%F"))
    assert "/data/crm/nightly/2026-12-08.csv --output /data/scored/2026-12-08.csv" in cron
    words = shlex.split(rendered.split("&&")[-1])
    _accepted(words[1:])


def test_the_dockerfile_copies_what_exists_and_runs_the_cli():
    text = (REPO / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source
    assert 'ENTRYPOINT ["leadml"]' in text and text.startswith("#")
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.MULTILINE)


def test_every_exit_code_is_documented_and_a_bug_is_exit_1_with_its_trace(monkeypatch):
    """The README's table lists every code the CLI defines; an unexpected error (a bug) is
    exit 1, said to be one, never a silent 0."""
    from leadml import cli, jobs

    table = (REPO / "README.md").read_text()
    codes = {v for k, v in vars(cli).items() if k.startswith("EXIT_")}
    assert codes == set(range(9))
    for code in (*codes, 143):
        assert re.search(rf"^\| {code} \|", table, re.M), f"exit {code} not in README"

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(jobs, "audit", broken)
    done = CliRunner().invoke(app, ["audit", "--config", str(REPO / "pipelines" / "configs" /
                                                             "sample.yaml")])
    assert done.exit_code == 1
    assert "internal error: ZeroDivisionError('a bug')" in done.output
