"""A logistic-regression pipeline's decision function as a sum of per-field parts, each
computed once per distinct value.

``decision(lead) = intercept + sum over fields of part(field, lead)``, where a field's part is
its encoded columns times their coefficients. A categorical or text field's part depends on
its value alone, so it is computed once per distinct value (a few thousand industries and
titles across a million leads) and mapped to the leads by the value's code; the numeric block
is a handful of dense columns, computed per lead. The (leads x encoded columns) matrix the
pipeline would build, hundreds of megabytes for a million leads, is never made.

The numbers are the pipeline's own, summed in another order (a difference of rounding, below
1e-12; ``tests/test_features.py`` checks it). Used by :class:`leadml.features.LeadPipeline` to
score and by :class:`leadml.explain.Explainer`, whose per-field effects are differences of
these parts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.encoded import is_direct
from leadml.features import PerDistinct, field_columns


def is_linear(pipeline) -> bool:
    """Whether ``pipeline`` is leadml's clean -> encode (dropping other columns) -> binary
    linear classifier."""
    classifier = pipeline.steps[-1][1] if is_direct(pipeline) else None
    return getattr(classifier, "coef_", np.empty((2, 0))).shape[0] == 1


def field_parts(pipeline, X: pd.DataFrame) -> dict[str, np.ndarray]:
    """Raw field -> its part of the decision function for each lead of ``X`` (leads as
    read: the pipeline's cleaning step runs first)."""
    clean, encode = pipeline.named_steps["clean"], pipeline.named_steps["encode"]
    coef = pipeline.steps[-1][1].coef_.ravel()
    owner = np.empty(len(coef), dtype=object)
    for field, cols in field_columns(pipeline).items():
        owner[cols] = field
    cleaned = clean.transform(X)
    parts = {field: np.zeros(len(cleaned)) for field in dict.fromkeys(owner)}
    for name, transformer, columns in encode.transformers_:
        block = encode.output_indices_[name]
        if name == "remainder" or transformer == "drop" or block.stop == block.start:
            continue  # (a role with no columns leaves its transformer unfitted)
        weights, owners = coef[block], owner[block]
        data = cleaned[columns]
        found = transformer.distinct(data) if isinstance(transformer, PerDistinct) else None
        if found is None:  # a dense block (the numbers), or no leads: per lead
            z = data.to_numpy(dtype=float) if transformer == "passthrough" \
                else transformer.transform(data)
            z = z.toarray() if hasattr(z, "toarray") else np.asarray(z, dtype=float)
            for field in dict.fromkeys(owners):
                mine = owners == field
                parts[field] += z[:, mine] @ weights[mine]
            continue
        codes, encoded, widths = found
        start = 0
        for rows, width in zip(codes, widths or [len(weights)], strict=True):
            per_value = encoded[:, start:start + width] @ weights[start:start + width]
            parts[owners[start]] += np.asarray(per_value).ravel()[rows]
            start += width
    return parts


def decision(pipeline, parts: dict[str, np.ndarray]) -> np.ndarray:
    """The decision function from the parts of :func:`field_parts`."""
    total = np.full(len(next(iter(parts.values()))), float(pipeline.steps[-1][1].intercept_[0]))
    for part in parts.values():
        total += part
    return total
