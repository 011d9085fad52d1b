"""Fit and engagement: each lead's points on the two axes the rules file names, its fit grade
(A to D) and engagement level (1 to 4), from the fields' contributions (the reasons' points,
:meth:`leadml.explain.effects.Explainer.shares`), so that the typical lead's probability,
the two axes and the other fields' points add up to the lead's probability. The grade and
level are cut on what each axis alone would add to a typical lead, so that a lead's fit grade
does not move with its engagement.

A1 is a lead that fits the ideal customer profile and is engaged; A4 fits but has not acted
(nurture it with content); D1 acts but does not fit (self-service, or disqualify).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.config.rules import Axes
from leadml.errors import ConfigError

COLUMNS = ["fit_points", "engagement_points", "fit_grade", "engagement_level"]
GRADES = ["A", "B", "C", "D"]
LEVELS = ["1", "2", "3", "4"]


def check(axes: Axes | None, features: list[str] | tuple[str, ...], *, reasons: bool,
          source) -> None:
    """The axes name only the model's fields, and the points they sum are computed."""
    if axes is None:
        return
    unknown = [f for f in axes.fields if f not in features]
    if unknown:
        raise ConfigError(f"the rules file '{source}' puts {unknown} on the fit or engagement "
                          f"axis, but the model does not read them; its fields: "
                          f"{list(features)}")
    if not reasons:
        raise ConfigError("the rules' axes are sums of the reasons' points: score with "
                          "reasons (drop --no-reasons), or remove the axes section")


def _cut(points: np.ndarray, cuts: list[float], names: list[str]) -> pd.Categorical:
    codes = np.select([points >= cuts[0], points >= cuts[1], points >= cuts[2]], [0, 1, 2],
                      3).astype(np.int8)
    return pd.Categorical.from_codes(codes, names)


def columns(shares, axes: Axes) -> dict[str, object]:
    """``fit_points`` and ``engagement_points`` (probability points, 0.01 apart: the sums
    of the axis' fields' contributions, adding up with the rest to the lead's probability),
    and ``fit_grade`` and ``engagement_level``, cut on what the axis' fields alone would add
    to a typical lead (``shares.at_typical``: a grade for the profile that does not move with
    the lead's engagement, nor its level with its profile). ``shares``: the fields' shares
    of each lead's distance from the typical lead
    (:meth:`leadml.explain.effects.Explainer.shares`)."""
    fit = 100 * shares.points[axes.fit].to_numpy(dtype=float).sum(axis=1)
    engagement = 100 * shares.points[axes.engagement].to_numpy(dtype=float).sum(axis=1)
    fit_cuts, engagement_cuts = axes.cutoffs()
    return {
        "fit_points": np.round(fit, 2),
        "engagement_points": np.round(engagement, 2),
        "fit_grade": _cut(shares.at_typical(axes.fit), fit_cuts, GRADES),
        "engagement_level": _cut(shares.at_typical(axes.engagement), engagement_cuts, LEVELS),
    }


def share_points(axes: Axes, shares) -> Axes:
    """``axes`` with ``method: share`` cut in points on ``shares`` (a model's test window,
    :meth:`leadml.explain.effects.Shares.logged`): A the top ``fit_grades['A']`` of its
    leads by what the fit fields alone add to a typical lead, B the next, and so on; the
    same for engagement. ``axes`` unchanged with ``method: points``."""
    if axes.method == "points":
        return axes

    def cuts(fields: list[str], given: list[float]) -> list[float]:
        alone = shares.at_typical(fields)
        return [round(float(np.quantile(alone, 1 - s)), 4) for s in np.cumsum(given)]

    return axes.with_points(cuts(axes.fit, [axes.fit_grades[k] for k in ("A", "B", "C")]),
                            cuts(axes.engagement,
                                 [axes.engagement_levels[k] for k in (1, 2, 3)]))


def notes(on_axes: dict, policy, labels: pd.Categorical) -> list[pd.Categorical]:
    """The reasons the axes gave a label: a lead disqualified by its cell ("Engaged, but
    outside the customer profile"), a lead held back by its fit grade. Empty without axes."""
    if not on_axes:
        return []
    fit = np.asarray(on_axes["fit_grade"]).astype(str)
    level = np.asarray(on_axes["engagement_level"]).astype(str)
    out = []
    if policy.disqualify_cells:
        cell = np.char.add(fit, level)
        hit = np.isin(cell, policy.disqualify_cells) & (np.asarray(labels) == "disqualified")
        words = np.where(np.isin(level, ["1", "2"]),
                         "Engaged, but outside the customer profile (fit " + fit + ")",
                         "Outside the customer profile (fit " + fit + ", engagement " + level
                         + ")")
        out.append(pd.Categorical(np.where(hit, words, "")))
    grade = policy.sales_qualified.min_fit_grade
    if grade is not None:
        held = (fit > grade) & (np.asarray(labels) == "nurture")
        out.append(pd.Categorical(np.where(
            held, "Fit grade " + fit + f" is below {grade}, the least to be sales-qualified",
            "")))
    return out


def matrix(on_axes: dict, y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Per cell of the fit x engagement matrix: leads, the share that converted, and the
    share predicted (the mean probability), fit A-D down, engagement 1-4 across."""
    frame = pd.DataFrame({"fit": np.asarray(on_axes["fit_grade"]).astype(str),
                          "engagement": np.asarray(on_axes["engagement_level"]).astype(str),
                          "y": y, "p": p})
    table = frame.groupby(["fit", "engagement"]).agg(
        leads=("y", "size"), converted=("y", "mean"), predicted=("p", "mean"))
    full = pd.MultiIndex.from_product([GRADES, LEVELS], names=["fit", "engagement"])
    table = table.reindex(full)
    table["leads"] = table["leads"].fillna(0).astype(int)
    return table.reset_index()


def matrix_lines(table: pd.DataFrame) -> list[str]:
    r"""The matrix (:func:`matrix`) as text: per cell its leads, the share that converted
    and (in brackets) the share predicted; fit A-D down, engagement 1-4 across.

    >>> t = matrix({"fit_grade": ["A", "A", "D"], "engagement_level": ["1", "1", "4"]},
    ...            np.array([1, 0, 0]), np.array([0.6, 0.4, 0.02]))
    >>> print("\n".join(matrix_lines(t)[:2]))
    fit \ engagement                   1                   2                   3                   4
    A                     2 at 50% (50%)                none                none                none
    """
    lines = ["fit \\ engagement" + "".join(f"{e:>20}" for e in LEVELS)]
    for g in GRADES:
        row = table[table["fit"] == g].set_index("engagement")
        out = [f"{int(row.loc[e, 'leads']):,} at {row.loc[e, 'converted']:.0%} "
               f"({row.loc[e, 'predicted']:.0%})" if row.loc[e, "leads"] else "none"
               for e in LEVELS]
        lines.append(f"{g:<16}" + "".join(f"{c:>20}" for c in out))
    return lines


def cells(frame: pd.DataFrame) -> dict[str, int]:
    """Leads per cell of the 4x4 matrix (``A1`` ... ``D4``), every cell named."""
    found = (frame["fit_grade"].astype(str) + frame["engagement_level"].astype(str)) \
        .value_counts().to_dict()
    return {f"{g}{e}": int(found.get(f"{g}{e}", 0)) for g in GRADES for e in LEVELS}
