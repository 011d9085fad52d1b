"""Scored leads in a salesperson's words (``output.style: people``, for a CSV), and back.

The labels and BANT states become words (``Sales-qualified``, ``Not met``), the probability
a percent with one decimal (``69.5%``), and the reasons are ordered strongest first (what
decided the label, then the fields by how many points they moved) and cut to a CRM text
field's length at a reason's end. :func:`as_machine` reads such a file back for monitoring
and the report: the words into the contract's values, the percent into a probability
(rounded to a thousandth: within 0.0005 of the one scored).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from leadml.config.rules import PEOPLE_WORDS, Output
from leadml.data.reason_text import OTHER_FIELDS

SEPARATOR = "; "
ELLIPSIS = "\u2026"
WORDED = ("label", "bant_budget", "bant_authority", "bant_need", "bant_timeline")
#: A field's reason: "... raised the chance of converting by 12 points", "... lowered it by
#: 0.5 points" (leadml.explain.effects); the rest (notes, failed criteria) decide the label.
_VERB = re.compile(r" (raised|lowered) (?:the chance of converting|it) by ")
_EFFECT = re.compile(r" (?:raised|lowered) (?:the chance of converting|it) by ([\d.,]+) points?$")


def cut_text(text: str, length: int) -> str:
    """``text`` in at most ``length`` characters: whole reasons (``; `` apart) while they
    fit, else the first one cut at a word's end with an ellipsis.

    >>> cut_text("Budget raised it by 9 points; Title lowered it by 3 points", 30)
    'Budget raised it by 9 points'
    >>> cut_text("Purchase timeline raised the chance", 20)
    'Purchase timeline\u2026'
    """
    if len(text) <= length:
        return text
    kept = ""
    for part in text.split(SEPARATOR):
        longer = f"{kept}{SEPARATOR}{part}" if kept else part
        if len(longer) > length:
            break
        kept = longer
    if kept:
        return kept
    head = text[:length - 1]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + ELLIPSIS


def strongest_first(text: str) -> str:
    """A lead's reasons with what decided its label first (notes, failed BANT criteria, in
    their order), then each field's effect by the points it moved, largest first (the first
    saying what moved: "the chance of converting"); a reason said twice is said once.

    >>> strongest_first("Title raised it by 5 points; Budget lowered it by 12 points; "
    ...                 "Need not stated").split("; ")[:2]
    ['Need not stated', 'Budget lowered the chance of converting by 12 points']
    """
    parts = list(dict.fromkeys(p for p in text.split(SEPARATOR) if p))
    rest = [p for p in parts if p.startswith(OTHER_FIELDS)]  # the remainder: always last
    parts = [p for p in parts if not p.startswith(OTHER_FIELDS)]
    points = [_EFFECT.search(p) for p in parts]
    decided = [p for p, m in zip(parts, points, strict=True) if m is None]
    effects = sorted(((float(m.group(1).replace(",", "")), i) for i, m in enumerate(points)
                      if m is not None), key=lambda e: (-e[0], e[1]))
    what = ["the chance of converting", *["it"] * len(effects)]
    said = [_VERB.sub(lambda v, k=k: f" {v.group(1)} {what[k]} by ", parts[i], count=1)
            for k, (_, i) in enumerate(effects)]
    return SEPARATOR.join([*decided, *said, *rest])


def for_people(scored: pd.DataFrame, output: Output) -> pd.DataFrame:
    """Scored rows as a salesperson reads them (a CSV's ``people`` style)."""
    words = output.people_words
    out = scored.copy()  # (a chunk the writer no longer needs: copied once, here)
    for column in WORDED:
        if column in out:
            out[column] = out[column].astype(object).map(lambda v: words.get(v, v))
    p = pd.to_numeric(out["conversion_probability"], errors="coerce").to_numpy(float)
    out["conversion_probability"] = [
        "" if np.isnan(v) else f"{100 * v:.1f}%" for v in p]
    if "expected_value" in out:
        ev = pd.to_numeric(out["expected_value"], errors="coerce").to_numpy(float)
        out["expected_value"] = ["" if np.isnan(v) else f"{v:.2f}" for v in ev]
    return with_reasons(out, output)


def with_reasons(scored: pd.DataFrame, output: Output) -> pd.DataFrame:
    """The reasons strongest first, cut to ``output.reasons_cut`` (when set), the whole
    list beside them as ``reasons_full`` when ``output.full_reasons``."""
    out = scored.copy()
    ordered = out["reasons"].astype(object).fillna("").astype(str).map(strongest_first)
    cut = output.reasons_cut
    out["reasons"] = ordered if cut is None else ordered.map(lambda t: cut_text(t, cut))
    if output.full_reasons:
        out.insert(out.columns.get_loc("reasons") + 1, "reasons_full", ordered)
    return out


def as_machine(scored: pd.DataFrame, words: dict[str, str] | None = None) -> pd.DataFrame:
    """A scored file read back: people's words and percents as the contract's values (a
    machine-style file is returned as it is).

    >>> back = as_machine(pd.DataFrame({"label": ["Sales-qualified"],
    ...                                 "conversion_probability": ["69.5%"]}))
    >>> back["label"][0], float(back["conversion_probability"][0])
    ('sales_qualified', 0.695)
    """
    back = {v: k for k, v in {**PEOPLE_WORDS, **(words or {})}.items()}
    out = scored.copy()
    for column in WORDED:
        if column in out:
            out[column] = out[column].map(lambda v: back.get(v, v))
    p = out["conversion_probability"]
    if p.dtype == object or isinstance(p.dtype, pd.StringDtype):
        text = p.astype(str)
        percent = text.str.endswith("%")
        if percent.any():
            out["conversion_probability"] = np.where(
                percent, pd.to_numeric(text.str.rstrip("%"), errors="coerce") / 100,
                pd.to_numeric(text, errors="coerce"))
    return out
