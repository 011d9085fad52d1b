"""How a long job treats the Python heap.

A job's many small objects (pandas and scikit-learn make them by the million) set off the
garbage collector's passes; each full pass walks every object alive, and a process that has
imported scikit-learn, pandas, pyarrow and MLflow holds millions that a job never frees.
:func:`spared` leaves the objects alive when a job starts out of those passes while it runs,
and hands them back after, so a long-lived process (a notebook, a service) collects them as
before.
"""

from __future__ import annotations

import gc
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
