"""Repeated lead ids are found across chunks, whatever the chunking, as a set would."""

import numpy as np
import pandas as pd
import pytest

from leadml.seen_ids import SeenIds


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
