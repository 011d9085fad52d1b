"""The matrix a leadml pipeline's classifier reads, built straight into one array.

``pipeline[:-1].transform(leads)`` has each encoder return its block and the
ColumnTransformer stack them, densifying the sparse title words on the way: for a million
leads, two copies of a matrix of several hundred megabytes. Here each block is written into
its columns of one C-ordered float array, gathered from the rows of each field's distinct
raw values (:func:`blocks`: a value is cleaned and encoded once, however many leads hold
it; within :func:`memo`, once per scoring run). The values are the same, bit for bit
(``tests/test_features.py``).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder

from leadml.data.factor_codes import factorize as codes_of
from leadml.model.encoders import PerDistinct, SignedLog, padded
from leadml.model.sklearn_compat import unwrapped


def is_direct(pipeline) -> bool:
    """Whether ``pipeline`` is leadml's clean -> encode (dropping other columns) -> classifier."""
    steps = getattr(pipeline, "named_steps", {})
    encode = steps.get("encode")
    return "clean" in steps and isinstance(encode, ColumnTransformer) \
        and encode.remainder == "drop" and hasattr(encode, "output_indices_")


@dataclass(frozen=True)
class Block:
    """One encoder's part of the encoded matrix.

    ``columns``: its slice of the matrix; ``fields``: its input columns. Per distinct value
    (each output column reads one field): ``codes[j]`` holds the row of every lead's value
    of field ``j`` in ``tables[j]``, the field's output columns (``owned[j]``, positions in
    the block) for its distinct values, dense or sparse. Per lead: ``codes`` and ``owned``
    None, ``tables`` one dense matrix of the block.
    """

    columns: slice
    fields: list[str]
    codes: list[np.ndarray] | None
    tables: list
    owned: list[np.ndarray] | None


def blocks(pipeline, X: pd.DataFrame):
    """The :class:`Block` of each encoder of ``pipeline`` on the leads ``X`` (as read).

    A block whose output columns each read one input column (the encoders, the text words,
    the numbers' imputing, scaling and missing flags) comes per distinct value: raw values
    are factorized once and only the distinct ones are cleaned and encoded, so a million
    leads are never turned into Python strings; within :func:`memo`, only the values new to
    the run. Another block comes per lead.
    """
    clean, encode = pipeline.named_steps["clean"], pipeline.named_steps["encode"]
    known = _MEMO.get()
    for name, transformer, columns in encode.transformers_:
        block = encode.output_indices_[name]
        if name == "remainder" or transformer == "drop" or block.stop == block.start:
            continue  # (a role with no columns leaves its transformer unfitted)
        fields = [columns] if isinstance(columns, str) else list(columns)
        sources = _sources(transformer, len(fields), block.stop - block.start) \
            if len(X) else None
        if sources is None:
            data = pd.DataFrame({c: clean.clean_column(c, X[c]) for c in fields},
                                index=X.index)
            yield Block(block, fields, None, [_dense(_encode(transformer, data, columns))],
                        None)
            continue
        owned = [np.flatnonzero(sources == j) for j in range(len(fields))]
        found = [codes_of(X[c], use_na_sentinel=False) for c in fields]
        codes, uniques = [c for c, _ in found], [u for _, u in found]

        encode_values = partial(_encode_distinct, clean, transformer, columns, fields, owned)
        key = (encode, name)  # (a transformer may be a string: "passthrough")
        entries = known.get(key, []) if known is not None else None
        if entries is None:  # (no memo, or this block's values outgrew it)
            tables = encode_values(uniques)
        else:
            positions, tables = _remembered(entries, uniques, owned, encode_values)
            if sum(e.nbytes for e in entries) > MEMO_MAX_BYTES:
                known[key] = None  # too many distinct values to keep: per chunk
            else:
                known[key] = entries
            codes = [pos[c] for pos, c in zip(positions, codes, strict=True)]
        yield Block(block, fields, codes, tables, owned)


MEMO_MAX_BYTES = 32 << 20  # the encoded distinct values one block keeps in :func:`memo`
_MEMO: ContextVar[dict | None] = ContextVar("leadml_encoded_memo", default=None)


@contextmanager
def memo():
    """Within, :func:`blocks` keeps each field's encoded distinct values for the next calls:
    the chunks of one run repeat the same few thousand values, and each is cleaned and
    encoded once per run, not once per chunk. A block whose kept values outgrow
    :data:`MEMO_MAX_BYTES` (a field of near-unique values, a very wide one-hot field) goes
    back to per-chunk encoding."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


class _Known:
    """A field's distinct raw values met so far, and their rows of its output columns."""

    def __init__(self) -> None:
        self.values: pd.Index | None = None
        self.table = None

    def __len__(self) -> int:
        return 0 if self.values is None else len(self.values)

    @property
    def nbytes(self) -> int:
        """About the memory held: the table, and 8 bytes a value for the index."""
        if self.table is None:
            return 0
        table = self.table
        held = table.nbytes if isinstance(table, np.ndarray) else \
            table.data.nbytes + table.indices.nbytes + table.indptr.nbytes
        return held + 8 * len(self)

    def positions(self, uniques) -> np.ndarray:
        return np.full(len(uniques), -1, dtype=np.intp) if self.values is None \
            else self.values.get_indexer(uniques)

    def add(self, values, rows) -> None:
        if self.values is None:
            self.values, self.table = pd.Index(values), rows
        else:
            self.values = self.values.append(pd.Index(values))
            self.table = _stacked([self.table, rows])


def _remembered(entries: list[_Known], uniques: list, owned: list[np.ndarray], encode_values
                ) -> tuple[list[np.ndarray], list]:
    """Each field's row in its kept table for each of ``uniques``, the values not kept yet
    encoded (together, padded) and added first; and the tables."""
    if not entries:
        entries.extend(_Known() for _ in uniques)
    positions = [e.positions(u) for e, u in zip(entries, uniques, strict=True)]
    fresh = [u[pos < 0] for u, pos in zip(uniques, positions, strict=True)]
    if any(len(f) for f in fresh):
        new = encode_values([f if len(f) else u[:1] for f, u in zip(fresh, uniques, strict=True)])
        for entry, f, pos, table in zip(entries, fresh, positions, new, strict=True):
            if len(f):
                pos[pos < 0] = len(entry) + np.arange(len(f))
                entry.add(f, table)
    return positions, [e.table for e in entries]


SLICE_BYTES = 128 << 20  # the most a slice of padded rows may take once encoded


def _encode_distinct(clean, transformer, columns, fields: list[str], owned: list[np.ndarray],
                     values: list) -> list:
    """Per field, ``transformer``'s output columns (``owned``) for its distinct raw
    ``values``. The fields' cleaned values are padded to one frame (row ``k``: each field's
    ``k``-th value) and encoded a slice of rows at a time, each field keeping only its own
    rows and columns: a near-unique field beside a wide one-hot field never makes the
    (most values x whole block) matrix at once."""
    data = padded({c: clean.clean_column(c, pd.Series(v))
                   for c, v in zip(fields, values, strict=True)})
    width = sum(len(cols) for cols in owned)
    step = max(256, SLICE_BYTES // (8 * max(width, 1)))
    pieces: list[list] = [[] for _ in fields]
    for start in range(0, len(data), step):
        z = _encode(transformer, data.iloc[start:start + step], columns)
        for j, (v, cols) in enumerate(zip(values, owned, strict=True)):
            if start < len(v):
                pieces[j].append(z[:len(v) - start][:, cols])
    return [_stacked(p) for p in pieces]


def _stacked(pieces: list):
    from scipy import sparse

    if len(pieces) == 1:
        return pieces[0]
    return sparse.vstack(pieces, format="csr") if sparse.issparse(pieces[0]) \
        else np.vstack(pieces)


def _encode(transformer, data: pd.DataFrame, columns):
    """``transformer``'s output for cleaned ``data`` (sparse for text)."""
    if transformer == "passthrough":
        return data.to_numpy(dtype=np.float64)
    if isinstance(transformer, PerDistinct):
        return transformer.encode_rows(data[columns])
    z = transformer.transform(data[columns])
    return z.toarray() if hasattr(z, "toarray") else np.asarray(z, dtype=np.float64)


def _dense(z) -> np.ndarray:
    return z.toarray() if hasattr(z, "toarray") else z


def _sources(transformer, n_fields: int, width: int) -> np.ndarray | None:
    """For each of the ``width`` output columns of a fitted block, the input column it
    reads; None when an output column may read several (the block is then encoded per
    lead)."""
    if isinstance(transformer, PerDistinct):
        widths = transformer.widths(n_fields)
        sources = np.zeros(width, dtype=np.int64) if widths is None \
            else np.repeat(np.arange(n_fields), widths)
    elif transformer == "passthrough":
        sources = np.arange(n_fields)
    else:
        steps = [s for _, s in getattr(transformer, "steps", [])]
        if not steps or not all(_columnwise(s) for s in steps):
            return None
        sources = [np.arange(n_fields)]
        for step in steps:  # the imputer's missing flags follow the values
            indicator = getattr(step, "indicator_", None)
            if indicator is not None:
                sources.append(np.asarray(indicator.features_, dtype=np.int64))
        sources = np.concatenate(sources)
    return sources if len(sources) == width else None


def _columnwise(step) -> bool:
    """Whether each output column of ``step`` reads one input column, in order (with the
    imputer's missing flags after them)."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    if isinstance(step, SimpleImputer):
        return bool(step.keep_empty_features)  # else never-seen columns are dropped
    return isinstance(step, StandardScaler | SignedLog)


def matrix(pipeline, X: pd.DataFrame) -> np.ndarray:
    """``pipeline[:-1].transform(X)`` as one C-ordered float64 array."""
    encode = pipeline.named_steps["encode"]
    width = max((s.stop for s in encode.output_indices_.values()), default=0)
    out = np.empty((len(X), width), dtype=np.float64)
    for b in blocks(pipeline, X):
        if b.codes is None:
            out[:, b.columns] = b.tables[0]
            continue
        for codes, table, cols in zip(b.codes, b.tables, b.owned, strict=True):
            table = _dense(table)
            for k, col in enumerate(cols):  # one gather per output column
                out[:, b.columns.start + col] = table[:, k][codes]
    return out


def field_columns(pipeline) -> dict[str, np.ndarray]:
    """Raw field -> the indices of its columns in the encoded matrix."""

    clean, encode = pipeline.named_steps["clean"], pipeline.named_steps["encode"]
    out: dict[str, list[int]] = {}
    for name, transformer, fields in encode.transformers_:
        block = encode.output_indices_[name]
        if name == "remainder" or transformer == "drop" or block.stop == block.start:
            continue  # (a role with no columns leaves its transformer unfitted)
        transformer = unwrapped(transformer)
        cols = list(range(block.start, block.stop))
        fields = list(fields) if not isinstance(fields, str) else [fields]
        if name == "numeric" and hasattr(transformer, "steps"):  # values, then indicators
            imputer = transformer.steps[0][1]
            flagged = imputer.indicator_.features_ if imputer.indicator_ is not None else []
            owners = fields + [fields[i] for i in flagged]
        elif isinstance(transformer, OneHotEncoder):  # a column per kept category
            owners = []
            for f, cats, rare in zip(fields, transformer.categories_,
                                     transformer.infrequent_categories_, strict=True):
                n_rare = 0 if rare is None else len(rare)  # rare values share one column
                owners += [f] * (len(cats) - n_rare + (1 if n_rare else 0))
        elif name in ("numeric", "categorical"):  # passthrough or ordinal: one column each
            owners = fields
        else:  # a text vectorizer: every column is the one text field's
            owners = fields * len(cols)
        if len(owners) != len(cols):
            raise ValueError(f"cannot map the {len(cols)} encoded columns of '{name}' to "
                             f"fields ({len(owners)} found)")
        for f, c in zip(owners, cols, strict=True):
            out.setdefault(f, []).append(c)
    return {f: np.asarray(out[f]) for f in clean.feature_names_in_ if f in out}
