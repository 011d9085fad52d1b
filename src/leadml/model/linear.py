"""A logistic-regression pipeline's decision function as a sum of per-field parts, each
computed once per distinct value.

``decision(lead) = intercept + sum over fields of part(field, lead)``, where a field's part is
its encoded columns times their coefficients. Every field's part depends on its value alone
(the encoders, the title words and the numbers' imputing, missing flag, log and scaling each
read one field), so it is computed once per distinct raw value (a few thousand industries
and titles across a million leads; :func:`leadml.model.encoded.blocks`) and mapped to the leads by
the value's code. The (leads x encoded columns) matrix the pipeline would build, hundreds
of megabytes for a million leads, is never made, nor a million cleaned Python strings.

The numbers are the pipeline's own, summed in another order (a difference of rounding, below
1e-12; ``tests/test_features.py`` checks it). Used by :class:`leadml.model.pipeline.LeadPipeline` to
score and by :class:`leadml.explain.effects.Explainer`, whose per-field effects are differences of
these parts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.model.encoded import blocks, field_columns, is_direct


def is_linear(pipeline) -> bool:
    """Whether ``pipeline`` is leadml's clean -> encode (dropping other columns) -> binary
    linear classifier."""
    classifier = pipeline.steps[-1][1] if is_direct(pipeline) else None
    return getattr(classifier, "coef_", np.empty((2, 0))).shape[0] == 1


def field_parts(pipeline, X: pd.DataFrame) -> dict[str, np.ndarray]:
    """Raw field -> its part of the decision function for each lead of ``X`` (leads as
    read: the pipeline's cleaning runs on each field's distinct values)."""
    coef = pipeline.steps[-1][1].coef_.ravel()
    owner = np.empty(len(coef), dtype=object)
    for field, cols in field_columns(pipeline).items():
        owner[cols] = field
    parts = {field: np.zeros(len(X)) for field in dict.fromkeys(owner)}
    for b in blocks(pipeline, X):
        weights, owners = coef[b.columns], owner[b.columns]
        if b.codes is None:  # a block encoded per lead
            for field in dict.fromkeys(owners):
                mine = owners == field
                parts[field] += _dot(b.tables[0][:, mine], weights[mine])
            continue
        for field, codes, table, cols in zip(b.fields, b.codes, b.tables, b.owned,
                                             strict=True):
            if len(cols):  # per distinct value, then to the leads
                parts[field] += _dot(table, weights[cols])[codes]
    return parts


def _dot(table, weights: np.ndarray) -> np.ndarray:
    """``table @ weights``, each row's sum taken column by column in one order, so that a
    lead's part is the same whichever other leads or values share its chunk. A BLAS product
    splits its work by the matrix's size (OpenBLAS on an Intel Xeon: a lead's probability
    changed in its last digits with the chunk size it was scored in). Sparse tables (title
    words) are summed row by row in their stored order already."""
    if hasattr(table, "tocsr"):
        return np.asarray(table.tocsr() @ weights).ravel()
    table = np.asarray(table, dtype=np.float64)
    out = np.zeros(table.shape[0])
    for j in range(table.shape[1]):
        out += table[:, j] * weights[j]
    return out


def decision(pipeline, parts: dict[str, np.ndarray]) -> np.ndarray:
    """The decision function from the parts of :func:`field_parts`."""
    total = np.full(len(next(iter(parts.values()))), float(pipeline.steps[-1][1].intercept_[0]))
    for part in parts.values():
        total += part
    return total
