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


def test_the_airflow_dag_runs_its_module_and_wires_score_before_monitor(monkeypatch):
    """Airflow is not installed here (it pins much of what leadml uses): the DAG module runs
    against a stand-in of the two Airflow names it imports, which records the tasks."""
    import importlib.util
    import sys
    import types

    tasks, edges = {}, []

    class DAG:
        def __init__(self, dag_id, **kwargs):
            self.dag_id, self.kwargs = dag_id, kwargs

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class BashOperator:
        def __init__(self, task_id, bash_command, **kwargs):
            self.task_id, self.bash_command = task_id, bash_command
            tasks[task_id] = self

        def __rshift__(self, other):
            edges.append((self.task_id, other.task_id))
            return other

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
    assert module.dag.dag_id == "leadml_nightly" and module.dag.kwargs["catchup"] is False
    assert set(tasks) == {"score", "monitor"} and edges == [("score", "monitor")]
    assert "/.venv/bin/leadml score" in tasks["score"].bash_command


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
