"""Lead ids already scored in a file, as sorted 64-bit hashes: 8 bytes a lead, and no more.

An id's hash is keyed per file with a random key (:func:`keyed_hashes`): its length, then
eight of its bytes at a time, are mixed into a 64-bit state by a bijective multiply-xorshift,
in numpy over Arrow's buffer of the ids. Python's own ``hash`` made a string object per id
and held the lock the scoring thread shares (1M leads: 1.66 -> 1.53 s in the run, six
alternating runs, the same output). Two different ids share a hash with a chance of about
2**-64 (as with Python's hash: a false "repeated id" reject in about one file of 5M leads in
a million); the key is never shown, so a file cannot be written to aim at it. Not a
cryptographic hash: ids are not secrets.

A file's ids are checked chunk by chunk against every id before them. The hashes are kept
sorted in one array allocated once for the file: each chunk's new hashes, sorted, are written
after the others and the two sorted runs merged in place (a stable sort, timsort, merges them
with a buffer the size of the chunk's run), so memory is the array itself, not the two or
three copies a sort of a concatenation holds for a moment (80 MB at the end of 5M leads).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa

_K1 = np.uint64(0xFF51AFD7ED558CCD)  # MurmurHash3's finalizer: a bijection of 64 bits
_K2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)
LONGEST_MIXED = 256  # bytes; a longer id (a field gone wrong) is hashed by Python


def _mix(h: np.ndarray) -> np.ndarray:
    h ^= h >> _SHIFT
    h *= _K1
    h ^= h >> _SHIFT
    h *= _K2
    h ^= h >> _SHIFT
    return h


def keyed_hashes(ids: pd.Series, key: int) -> np.ndarray:
    """A 64-bit hash of each id (as text), keyed by ``key``: equal ids, equal hashes; two
    different ids collide with a chance of about 2**-64.

    >>> a = keyed_hashes(pd.Series(["L1", "L2", "L1", ""]), key=7)
    >>> bool(a[0] == a[2]), bool(a[0] != a[1]), bool(a[3] != keyed_hashes(pd.Series(["\\0"]), 7)[0])
    (True, True, True)
    """
    strings = pa.array(ids.astype("str").array)
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    strings = strings.cast(pa.large_string())
    n = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)[
        strings.offset:strings.offset + n + 1]
    data = strings.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    padded = np.zeros(len(raw) + 8, dtype=np.uint8)
    padded[:len(raw)] = raw
    # The 8 bytes from each byte on, as one little-endian word (an unaligned view).
    word_at = np.ndarray(shape=(len(raw) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    starts, lengths = offsets[:-1], np.diff(offsets)
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(key) ^ (lengths.astype(np.uint64) * _K2))
        for k in range(0, min(int(lengths.max(initial=0)), LONGEST_MIXED), 8):
            rows = np.flatnonzero(lengths > k)  # ids with bytes from k on (the others
            left = np.minimum(lengths[rows] - k, 8).astype(np.uint64)  # are done)
            word = word_at[starts[rows] + k]
            word &= np.where(left == 8, np.uint64(0xFFFFFFFFFFFFFFFF),
                             (np.uint64(1) << (np.uint64(8) * (left % 8))) - np.uint64(1))
            h[rows] = _mix(h[rows] ^ word)
    long = np.flatnonzero(lengths > LONGEST_MIXED)
    if len(long):
        h[long] = np.fromiter((hash((key, s)) for s in strings.take(long).to_pylist()),
                              dtype=np.int64, count=len(long)).view(np.uint64)
    return h


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
        self._key = int.from_bytes(os.urandom(8), "little")  # (lives as long as the run)

    def first_time(self, ids: pd.Series) -> np.ndarray:
        """True for ids not seen before (in earlier chunks or earlier in this one); records
        them as seen."""
        hashes = keyed_hashes(ids, self._key)
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
