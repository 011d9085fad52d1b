"""Lead ids already scored in a file, as sorted 64-bit hashes: 8 bytes a lead, and no more.

A file's ids are checked chunk by chunk against every id before them. The hashes are kept
sorted in one array allocated once for the file: each chunk's new hashes, sorted, are written
after the others and the two sorted runs merged in place (a stable sort, timsort, merges them
with a buffer the size of the chunk's run), so memory is the array itself, not the two or
three copies a sort of a concatenation holds for a moment (80 MB at the end of 5M leads).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class SeenIds:
    """Lead ids already scored in this file (``expected``: about how many leads the file
    holds, so the array is allocated once).

    >>> seen = SeenIds()
    >>> seen.first_time(pd.Series(["a", "b", "a"])).tolist()
    [True, True, False]
    >>> seen.first_time(pd.Series(["c", "b"])).tolist()
    [True, False]
    """

    def __init__(self, expected: int = 0) -> None:
        self._hashes = np.empty(max(int(expected), 1 << 16), dtype=np.uint64)
        self._n = 0

    def first_time(self, ids: pd.Series) -> np.ndarray:
        """True for ids not seen before (in earlier chunks or earlier in this one); records
        them as seen."""
        # Python's own 64-bit string hash (SipHash, keyed per process: the array lives only
        # as long as the run), twice as fast as pandas' hashing of the same strings.
        hashes = np.fromiter(map(hash, ids.astype(str).to_numpy(dtype=object)),
                             dtype=np.int64, count=len(ids)).view(np.uint64)
        order = np.argsort(hashes)  # sorted, the search walks the array once
        ordered = hashes[order]
        seen = self._hashes[:self._n]
        found = seen[np.minimum(np.searchsorted(seen, ordered), self._n - 1)] == ordered \
            if self._n else np.zeros(len(hashes), bool)
        repeat = np.zeros(len(hashes), bool)  # equal to an earlier one in this chunk
        if len(hashes) > 1 and (ordered[1:] == ordered[:-1]).any():  # (rare: file order)
            repeat = pd.Series(hashes).duplicated().to_numpy()[order]
        fresh = ~found & ~repeat
        first = np.empty(len(hashes), bool)
        first[order] = fresh
        new = ordered[fresh]
        if self._n + len(new) > len(self._hashes):  # more leads than expected: grow by half
            grown = np.empty(max(self._n + len(new), len(self._hashes) * 3 // 2),
                             dtype=np.uint64)
            grown[:self._n] = seen
            self._hashes = grown
        self._hashes[self._n:self._n + len(new)] = new
        self._n += len(new)
        self._hashes[:self._n].sort(kind="stable")  # merges the two sorted runs in place
        return first
