"""A chunk's columns are factorized once within
`leadml.data.factor_codes.shared`, with pandas' answers."""

import numpy as np
import pandas as pd
import pytest

from leadml.data.factor_codes import factorize, shared


def test_shared_codes_are_pandas_codes_and_read_only():
    frame = pd.DataFrame({"a": ["x", "y", "x"], "b": ["y", "y", "z"]}, dtype="str")
    with shared():
        a, ua = factorize(frame["a"])
        b, ub = factorize(frame[["a", "b"]]["b"], use_na_sentinel=False)
        again, _ = factorize(frame.copy()["a"])  # a copy shares the Arrow array
    assert a.tolist() == [0, 1, 0] and list(ua) == ["x", "y"]
    assert b.tolist() == [0, 0, 1] and list(ub) == ["y", "z"]
    assert again is a
    with pytest.raises(ValueError):
        a[0] = 5  # shared by every caller: nobody may change them


@pytest.mark.parametrize("sentinel", [True, False])
def test_missing_values_are_factorized_as_asked(sentinel):
    values = pd.Series(["x", None, "x"], dtype="str")
    with shared():
        got, uniques = factorize(values, use_na_sentinel=sentinel)
    want, want_uniques = pd.factorize(values, use_na_sentinel=sentinel)
    assert got.tolist() == want.tolist() and len(uniques) == len(want_uniques)


def test_outside_shared_nothing_is_kept():
    values = pd.Series(["x", "y"], dtype="str")
    first, _ = factorize(values)
    assert factorize(values)[0] is not first and first.flags.writeable
    assert factorize(pd.Series([1.0, np.nan]))[0].tolist() == [0, -1]
