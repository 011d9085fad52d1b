"""How a job's process behaves: its heap, its fault-injection points and SIGTERM.

A job's many small objects (pandas and scikit-learn make them by the million) set off the
garbage collector's passes; each full pass walks every object alive, and a process that has
imported scikit-learn, pandas, pyarrow and MLflow holds millions that a job never frees.
:func:`spared` leaves the objects alive when a job starts out of those passes while it runs,
and hands them back after, so a long-lived process (a notebook, a service) collects them as
before.
"""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def spared() -> Iterator[None]:
    """Inside, the objects alive on entry are not walked by the garbage collector.

    >>> with spared():
    ...     gc.get_freeze_count() > 0
    True
    >>> gc.get_freeze_count()
    0
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def checkpoint(step: str) -> None:
    """Fault injection for the reliability tests: ``LEADML_KILL_AT=step`` SIGKILLs the
    process here, as a power cut or the OOM killer would. Inert otherwise."""
    if os.environ.get("LEADML_KILL_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def on_sigterm() -> None:
    """Make SIGTERM (a scheduler's timeout, ``kill``) unwind like an exception, so the run
    cleans up its temporaries and records the failure; exit code 143 as usual."""
    import threading

    def stop(signum, frame):  # noqa: ARG001
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
