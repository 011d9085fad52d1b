"""A chunk's raw columns factorized once, however many steps ask.

Scoring a chunk reads the same raw columns several times per distinct value: validation
counts unseen categories, the model encodes each field, the rules judge titles, needs and
timelines. Within :func:`shared`, :func:`factorize` answers a column it has already
factorized from what it kept, so each column is hashed once per chunk.

>>> values = pd.Series(["b", "a", "b"], dtype="str")
>>> with shared():
...     first = factorize(values)
...     again = factorize(values, use_na_sentinel=False)
>>> again[0] is first[0], first[0].tolist(), list(first[1])
(True, [0, 1, 0], ['b', 'a'])
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pandas as pd

_SHARED: ContextVar[dict | None] = ContextVar("leadml_shared_codes", default=None)


@contextmanager
def shared(kept: dict | None = None):
    """Within, :func:`factorize` keeps each column's codes (the caller's chunk: leave it
    before the next) in ``kept``, a new dict unless given: the dict a block for the same
    chunk filled, in this thread or another, carries its codes on."""
    token = _SHARED.set({} if kept is None else kept)
    try:
        yield
    finally:
        _SHARED.reset(token)


def factorize(values: pd.Series, *, use_na_sentinel: bool = True) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(values, use_na_sentinel=...)``; within :func:`shared`, once per column.

    A column is known by the Arrow array behind it (pandas' Arrow-backed strings keep it as
    ``_pa_array``; views and copies of a column share it, and the cache holds it, so its
    identity cannot be reused within the chunk). Only columns with no missing value are
    kept: for them both sentinels give the same answer. The codes are read-only: callers
    share them.
    """
    cache = _SHARED.get()
    arrow = getattr(values.array, "_pa_array", None)
    if cache is None or arrow is None or arrow.null_count:
        return pd.factorize(values, use_na_sentinel=use_na_sentinel)
    kept = cache.get(id(arrow))
    if kept is None:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        codes.flags.writeable = False
        kept = cache[id(arrow)] = (arrow, codes, uniques)
    return kept[1], kept[2]
