"""A lead's reasons as slots of text, joined with '; ' (the field that raised its probability
most, the next, ..., a note, the BANT criteria it failed).

A slot holds one text per lead, empty where it has nothing to say of that lead. Joining is
done in Arrow (:func:`join_slots`: a list of texts per lead, one ``binary_join``), and for
slots of a few distinct texts once per distinct combination (:func:`join_combinations`),
never one Python string per lead: the joining releases Python's lock, which the scoring
threads share. Texts are Arrow ``large_string`` (a whole file's reasons may pass 2 GiB).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: The reasons' remainder: what the fields a lead's reasons do not name add up to.
OTHER_FIELDS = "Other fields "
_SEPARATOR = pa.scalar("; ", pa.large_string())


def join_texts(slots: list[np.ndarray]) -> np.ndarray:
    """Per lead, the non-empty texts of the slots joined with '; '."""
    out = np.empty(len(slots[0]), dtype=object)
    out[:] = ["; ".join(filter(None, texts)) for texts in zip(*slots, strict=True)]
    return out


def join_slots(slots: list[pa.Array]) -> pa.Array:
    """:func:`join_texts` in Arrow, for (one or more) slots that are null where empty: per
    lead, a list of its slots' texts, joined with '; ' in one pass ('' where every slot is
    null).
    (``binary_join_element_wise(null_handling="skip")`` would do it, but pyarrow 25 returns
    fewer rows than it is given when a row is null in every slot.)

    >>> join_slots([pa.array(["x", None, None]), pa.array(["y", "y", None])]).to_pylist()
    ['x; y', 'y', '']
    """
    n = len(slots[0])
    valid = np.column_stack([s.is_valid().to_numpy(zero_copy_only=False) for s in slots])
    at = np.arange(n)[:, None] + (np.arange(len(slots)) * n)[None, :]  # in the concatenation
    texts = pa.concat_arrays([s.cast(pa.large_string()) for s in slots]).take(at[valid])
    offsets = np.zeros(n + 1, dtype=np.int32)  # (lead by lead: the mask reads row-major)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    return pc.binary_join(pa.ListArray.from_arrays(offsets, texts), _SEPARATOR)


def texts_slot(codes: np.ndarray, texts) -> pa.Array:
    """``texts[codes]`` (``texts`` a numpy or Arrow array) as a slot for :func:`join_slots`:
    null where the text is ''."""
    texts = texts.cast(pa.large_string()) if isinstance(texts, pa.Array) \
        else pa.array(np.asarray(texts, dtype=object), pa.large_string())
    texts = pc.if_else(pc.equal(texts, ""), pa.scalar(None, pa.large_string()), texts)
    return texts.take(np.asarray(codes))


def join_combinations(slots: list[pd.Categorical]) -> tuple[np.ndarray, pa.Array]:
    """:func:`join_texts` for slots that hold a few distinct texts each, joined once per
    distinct combination of the slots' values (in Arrow: :func:`join_slots`): per lead the
    code of its combination, and per code the joined text (two combinations may read the
    same).

    >>> a = pd.Categorical(["x", "", "x"]); b = pd.Categorical(["y", "y", ""])
    >>> key, texts = join_combinations([a, b])
    >>> texts.take(key).to_pylist()
    ['x; y', 'y', 'x']
    """
    n = len(slots[0]) if slots else 0
    slots = [s for s in slots if (np.asarray(s.categories, dtype=object) != "").any()]
    if not slots:
        return np.zeros(n, dtype=np.int64), pa.array([""], pa.large_string())
    tables = [np.append(np.asarray(s.categories, dtype=object), "") for s in slots]
    if len(slots) == 1:  # nothing to join
        return np.asarray(slots[0].codes, dtype=np.int64) % len(tables[0]), \
            pa.array(tables[0], pa.large_string())
    key = np.zeros(n, dtype=np.int64)
    for slot in slots:
        key, _ = pd.factorize(key * (len(slot.categories) + 1) + slot.codes + 1)
    first = np.empty(int(key.max()) + 1 if n else 0, dtype=np.int64)
    first[key[::-1]] = np.arange(n - 1, -1, -1)  # a lead of each combination: the first
    return key, join_slots([texts_slot(slot.codes[first].astype(np.int64) % len(table),
                                       table)  # (code -1: the '' after the categories)
                            for slot, table in zip(slots, tables, strict=True)])


def join_categorical(slots: list[pd.Categorical]) -> pd.Categorical:
    """:func:`join_combinations` as a categorical.

    >>> a = pd.Categorical(["x", "", "x"]); b = pd.Categorical(["y", "y", ""])
    >>> join_categorical([a, b]).tolist()
    ['x; y', 'y', 'x']
    """
    key, texts = join_combinations(slots)
    codes, words = pd.factorize(texts.to_numpy(zero_copy_only=False))
    return pd.Categorical.from_codes(codes[key], np.asarray(words, dtype=object))


def join_strings(slots: list[pd.Categorical]) -> pd.api.extensions.ExtensionArray:
    """:func:`join_combinations` as Arrow strings, one per lead: no categories to make
    unique (a scored file's reasons are written as text)."""
    key, texts = join_combinations(slots)
    return pd.array(texts.take(key), dtype="str")
