"""Reading ahead and writing behind the scoring (leadml.scoring.read_ahead): order kept,
errors raised where they belong, nothing left running."""

from __future__ import annotations

import threading
import time

import pytest

from leadml.scoring.read_ahead import Behind, ahead


def test_the_next_item_is_read_while_the_caller_works_on_this_one():
    second_asked = threading.Event()
    readers = []

    def items():
        readers.append(threading.current_thread().name)
        yield 1
        second_asked.set()
        readers.append(threading.current_thread().name)
        yield 2

    with ahead(items()) as got:
        assert next(got) == 1
        # Nothing asked for item 2 yet, but it is being read.
        assert second_asked.wait(timeout=10)
        assert next(got) == 2
        assert next(got, None) is None
    assert all(name.startswith("leadml-read") for name in readers)


def test_an_error_comes_out_where_its_item_would_have_and_not_before():
    def items():
        yield "a"
        yield "b"
        raise ValueError("record 3 is broken")

    got = []
    with pytest.raises(ValueError, match="record 3"), ahead(items()) as it:
        for item in it:
            got.append(item)
    assert got == ["a", "b"]


def test_leaving_early_waits_for_the_read_in_flight_and_closes_the_source():
    events = []

    def items():
        try:
            for i in range(100):
                time.sleep(0.01)
                yield i
        finally:
            events.append("closed")

    with pytest.raises(RuntimeError), ahead(items()) as it:
        next(it)
        raise RuntimeError("the scoring failed")
    assert events == ["closed"]
    assert not [t for t in threading.enumerate() if t.name.startswith("leadml-read")]


def test_writes_run_in_order_one_at_a_time():
    done, running = [], []

    def write(i):
        running.append(i)
        assert len(running) == 1, "two writes at once"
        time.sleep(0.005)
        done.append(i)
        running.remove(i)

    with Behind() as writes:
        for i in range(20):
            writes.submit(write, i)
    assert done == list(range(20))


def test_a_failed_write_is_raised_by_the_next_submit_or_on_leaving():
    def fail(_):
        raise OSError(28, "No space left on device")

    writes = Behind()
    with pytest.raises(OSError, match="No space"), writes:
        writes.submit(fail, 1)
        writes.submit(print, "never written")  # waits for the first, raises its error

    with pytest.raises(OSError, match="No space"), Behind() as writes:
        writes.submit(fail, 1)  # the last write: raised on leaving


def test_leaving_on_an_error_waits_for_the_write_in_flight_and_keeps_the_first_error():
    done = []

    def slow(i):
        time.sleep(0.2)
        done.append(i)

    with pytest.raises(KeyError), Behind() as writes:
        writes.submit(slow, 1)
        raise KeyError("scoring failed")
    assert done == [1]  # finished before the block was left: the file can be closed
    assert not [t for t in threading.enumerate() if t.name.startswith("leadml-write")]
