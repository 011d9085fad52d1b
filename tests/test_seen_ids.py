"""Repeated lead ids are found across chunks, whatever the chunking, as a set would."""

import numpy as np
import pandas as pd
import pytest

from leadml.scoring.seen_ids import SeenIds


@pytest.mark.parametrize("expected", [0, 50, 100_000])
def test_first_time_agrees_with_a_set_over_many_chunks(expected):
    rng = np.random.default_rng(expected)
    seen, known = SeenIds(expected=expected), set()
    for _ in range(40):  # more ids than expected makes the array grow
        ids = pd.Series(rng.integers(0, 3_000, rng.integers(0, 300)).astype(str))
        wanted = []
        for lead in ids:
            wanted.append(lead not in known)
            known.add(lead)
        assert seen.first_time(ids).tolist() == wanted
    hashes = seen._hashes[:seen._n]
    assert seen._n == len(known) and (np.diff(hashes.astype(object)) > 0).all()


def test_ids_of_any_length_spelling_and_dtype_are_told_apart_as_a_set_would():
    """The keyed hash reads Arrow's bytes of the ids 8 at a time: ids differing only in
    their last byte, in a NUL, in length (trailing NULs), beyond the mixed length (Python's
    hash takes those), as unicode, and the same ids as Python objects, Arrow strings, a
    slice of a larger array or numbers, all answer as a set of strings would."""
    from leadml.scoring.seen_ids import LONGEST_MIXED

    base = ["", "\0", "\0\0", "a", "a\0", "é", "e\u0301", "12345678", "123456789",
            "1234567\0", "x" * LONGEST_MIXED, "x" * LONGEST_MIXED + "y",
            "x" * LONGEST_MIXED + "z", "x" * 3 * LONGEST_MIXED]
    base += [f"L{i:08d}" for i in range(2_000)] + [str(i) for i in range(2_000)]
    rng = np.random.default_rng(5)
    ids = [base[i] for i in rng.integers(0, len(base), 12_000)]
    wanted, known = [], set()
    for lead in ids:
        wanted.append(lead not in known)
        known.add(lead)
    for dtype in (object, "str"):
        seen = SeenIds()
        padded = pd.Series(["pad"] * 7 + ids, dtype=dtype).iloc[7:]  # (an Arrow slice)
        got = np.concatenate([seen.first_time(padded.iloc[a:a + 1000])
                              for a in range(0, len(ids), 1000)])
        assert got.tolist() == wanted, dtype
    numbers = pd.Series(rng.integers(0, 500, 3_000))
    assert SeenIds().first_time(numbers).tolist() == \
        (~pd.Series(numbers.astype(str)).duplicated()).tolist()
