"""The matrix a leadml pipeline's classifier reads, built straight into one array.

``pipeline[:-1].transform(leads)`` has each encoder return its block and the
ColumnTransformer stack them, densifying the sparse title words on the way: for a million
leads, two copies of a matrix of several hundred megabytes. Here each block is written into
its columns of one C-ordered float array, the categorical and text blocks gathered from
their distinct values' rows (:meth:`leadml.features.PerDistinct.distinct`). The values are
the same, bit for bit (``tests/test_features.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer

from leadml.features import PerDistinct


def is_direct(pipeline) -> bool:
    """Whether ``pipeline`` is leadml's clean -> encode (dropping other columns) -> classifier."""
    steps = getattr(pipeline, "named_steps", {})
    encode = steps.get("encode")
    return "clean" in steps and isinstance(encode, ColumnTransformer) \
        and encode.remainder == "drop" and hasattr(encode, "output_indices_")


def matrix(pipeline, X: pd.DataFrame) -> np.ndarray:
    """``pipeline[:-1].transform(X)`` as one C-ordered float64 array."""
    clean, encode = pipeline.named_steps["clean"], pipeline.named_steps["encode"]
    cleaned = clean.transform(X)
    width = max((s.stop for s in encode.output_indices_.values()), default=0)
    out = np.empty((len(cleaned), width), dtype=np.float64)
    for name, transformer, columns in encode.transformers_:
        block = encode.output_indices_[name]
        if name == "remainder" or transformer == "drop" or block.stop == block.start:
            continue
        data = cleaned[columns]
        found = transformer.distinct(data) if isinstance(transformer, PerDistinct) else None
        if found is None:
            z = data.to_numpy(dtype=np.float64) if transformer == "passthrough" \
                else transformer.transform(data)
            out[:, block] = z.toarray() if hasattr(z, "toarray") else z
            continue
        codes, encoded, widths = found
        encoded = encoded.toarray() if hasattr(encoded, "toarray") else encoded
        start = 0
        for rows, w in zip(codes, widths or [encoded.shape[1]], strict=True):
            for j in range(start, start + w):  # one gather per output column
                out[:, block.start + j] = encoded[:, j][rows]
            start += w
    return out
