"""The jobs users run, one module per family; each wires the library's steps (read,
validate, audit, fit, log, score) and returns what it made. It prints nothing and exits
nothing: the CLI parses arguments, calls a job and maps its errors to exit codes, and
``pipelines/`` scripts and Python callers (an Airflow task, a notebook) call the same
functions::

    from leadml import jobs
    from leadml.config import load_config

    result, registered = jobs.train(load_config("pipelines/configs/sample.yaml"))

- :mod:`~leadml.jobs.training`: ``audit``, ``train``, ``backtest``;
- :mod:`~leadml.jobs.scoring`: ``score``, ``report``, ``explain``;
- :mod:`~leadml.jobs.planning`: ``plan``;
- :mod:`~leadml.jobs.monitoring`: ``monitor``;
- :mod:`~leadml.jobs.recalibration`: ``recalibrate``;
- :mod:`~leadml.jobs.setup`: ``config_init``, ``rules_init``, ``sample``, ``sample_crm``.
"""

from importlib import import_module

FAMILIES = {
    "training": ["audit", "audited_history", "backtest", "dataset_facts", "read_history",
                 "spark_engine", "train"],
    "scoring": ["ScoreOutcome", "ScoreRequest", "explain", "report", "score"],
    "planning": ["Plan", "plan", "write_plan"],
    "monitoring": ["OutcomeSource", "monitor"],
    "recalibration": ["recalibrate"],
    "setup": ["config_init", "rules_init", "sample", "sample_crm"],
}
_HOME = {name: family for family, names in FAMILIES.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    # Lazy: a job imports its own family only, so `leadml score` never loads training.
    if name in _HOME:
        return getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
