"""Reading and writing beside the scoring: one thread reads the next chunk, one writes the
last, while the caller scores this one.

Arrow parses and writes CSV without holding Python's lock, so on two cores most of a run's
input and output time hides behind its validation and scoring. Order is kept: items come
out in the order the iterator gives them, writes happen in the order they are handed over,
and an error in either thread is raised in the caller where the item or the write it
belongs to would have been, never lost. At most one item is read ahead and one write is in
flight, so memory grows by a chunk or two, not with the file.

>>> with ahead(iter([1, 2, 3])) as items:
...     list(items)
[1, 2, 3]
>>> done = []
>>> with Behind() as writes:
...     writes.submit(done.append, "a")
...     writes.submit(done.append, "b")
>>> done
['a', 'b']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

_END = object()


@contextmanager
def ahead(items: Iterator) -> Iterator[Iterator]:
    """``items``, each fetched in a background thread while the caller works on the one
    before. An exception raised by ``items`` comes out of the ``next()`` that would have
    returned its item. On leaving, the fetch in flight is waited for and ``items`` closed."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="leadml-read")

    def fetched():
        pending = pool.submit(next, items, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = pool.submit(next, items, _END)
            yield item

    try:
        yield fetched()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if hasattr(items, "close"):
            items.close()  # (its finally blocks, e.g. closing the file, run here)


class Behind:
    """Calls run in one background thread, one at a time and in order. ``submit`` first
    waits for the call before it (raising its error), so one call is in flight at most;
    leaving the ``with`` block waits for the last (and raises its error, unless the block
    is already raising one)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="leadml-write")
        self._pending: Future | None = None

    def submit(self, call: Callable, *args) -> None:
        self.wait()
        self._pending = self._pool.submit(call, *args)

    def wait(self) -> None:
        """Wait for the call in flight; raise its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> Behind:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)  # never leave a write running past the run
