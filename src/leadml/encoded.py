"""The matrix a leadml pipeline's classifier reads, built straight into one array.

``pipeline[:-1].transform(leads)`` has each encoder return its block and the
ColumnTransformer stack them, densifying the sparse title words on the way: for a million
leads, two copies of a matrix of several hundred megabytes. Here each block is written into
its columns of one C-ordered float array, gathered from the rows of each field's distinct
raw values (:func:`blocks`: a value is cleaned and encoded once, however many leads hold
it). The values are the same, bit for bit (``tests/test_features.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer

from leadml.features import PerDistinct, padded


def is_direct(pipeline) -> bool:
    """Whether ``pipeline`` is leadml's clean -> encode (dropping other columns) -> classifier."""
    steps = getattr(pipeline, "named_steps", {})
    encode = steps.get("encode")
    return "clean" in steps and isinstance(encode, ColumnTransformer) \
        and encode.remainder == "drop" and hasattr(encode, "output_indices_")


def blocks(pipeline, X: pd.DataFrame):
    """Each encoder block of ``pipeline`` on the leads ``X`` (as read): ``(columns, fields,
    codes, encoded, sources)``, ``columns`` the block's slice of the encoded matrix and
    ``fields`` its input columns.

    A block whose output columns each depend on one input column (the encoders, the text
    words, the numbers' imputing, scaling and missing flags) comes per distinct value:
    ``codes`` holds, for each input column, the code of every lead's raw value, ``encoded``
    the block's output for the distinct values (row ``k``: each column's ``k``-th distinct
    value; sparse for text) and ``sources[j]`` the input column output column ``j`` reads.
    Raw values are factorized once and only the distinct ones are cleaned and encoded: a
    million leads are never turned into Python strings. Another block comes per lead:
    ``codes`` and ``sources`` None, ``encoded`` dense.
    """
    clean, encode = pipeline.named_steps["clean"], pipeline.named_steps["encode"]
    for name, transformer, columns in encode.transformers_:
        block = encode.output_indices_[name]
        if name == "remainder" or transformer == "drop" or block.stop == block.start:
            continue  # (a role with no columns leaves its transformer unfitted)
        fields = [columns] if isinstance(columns, str) else list(columns)
        sources = _sources(transformer, len(fields), block.stop - block.start) \
            if len(X) else None
        if sources is None:
            codes = None
            data = pd.DataFrame({c: clean.clean_column(c, X[c]) for c in fields},
                                index=X.index)
        else:  # each field's distinct values cleaned on their own, then padded to a frame
            found = [pd.factorize(X[c], use_na_sentinel=False) for c in fields]
            codes = [c for c, _ in found]
            data = padded({c: clean.clean_column(c, pd.Series(u))
                            for c, (_, u) in zip(fields, found, strict=True)})
        if transformer == "passthrough":
            z = data.to_numpy(dtype=np.float64)
        elif isinstance(transformer, PerDistinct):
            z = transformer.encode_rows(data[columns])
        else:
            z = transformer.transform(data[columns])
        if not isinstance(transformer, PerDistinct):  # (which gives text sparse)
            z = z.toarray() if hasattr(z, "toarray") else np.asarray(z, dtype=np.float64)
        yield block, fields, codes, z, sources


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

    from leadml.features import _SignedLog

    if isinstance(step, SimpleImputer):
        return bool(step.keep_empty_features)  # else never-seen columns are dropped
    return isinstance(step, StandardScaler | _SignedLog)


def matrix(pipeline, X: pd.DataFrame) -> np.ndarray:
    """``pipeline[:-1].transform(X)`` as one C-ordered float64 array."""
    encode = pipeline.named_steps["encode"]
    width = max((s.stop for s in encode.output_indices_.values()), default=0)
    out = np.empty((len(X), width), dtype=np.float64)
    for block, _, codes, encoded, sources in blocks(pipeline, X):
        if codes is None:
            out[:, block] = encoded
            continue
        encoded = encoded.toarray() if hasattr(encoded, "toarray") else encoded
        for j, source in enumerate(sources):  # one gather per output column
            out[:, block.start + j] = encoded[:, j][codes[source]]
    return out
