"""Signs that a column is not known when a lead arrives, in two levels.

**blocks** (near-certain): a column filled only for converted leads, or only for lost ones,
however rarely, once chance cannot explain it; dates after the conversion; a column that alone
ranks leads at ROC AUC 0.9 or more, or 0.8 when its values read like sales actions or outcome
states; an id or a time that tracks the outcome. Filling and dates are judged on every
conversion the data knows of, however late (under a horizon too). **review** (plausible): AUC
between 0.8 and 0.9, emptiness that tracks the outcome, values that read like sales actions or
outcome states. A strong number with no other sign (time on the website before contact), and a
name that says "latest state" with nothing but a ranking any useful field has ("current
occupation"), are only **noted**.

Behaviour decides; names only support behaviour that is already suspect. Each sign comes with
its level, a strength for ranking, and the sentence that says why.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from leadml.config import TrainConfig
from leadml.data.schema import History
from leadml.data.values import is_missing, parse_times


def read_dates(values: pd.Series, date_format: str) -> pd.Series:
    """Dates in ISO 8601 or in the export's declared date format, whichever reads more."""
    times = parse_times(values)
    if date_format != "iso":
        other = parse_times(values, date_format)
        times = other if other.notna().sum() > times.notna().sum() else times
    return times


#: Values a salesperson or the CRM sets while working a lead, or once it is decided: a
#: column whose values read like these holds the lead's latest state, not its first one.
STATE_WORDS = (r"\b(won|lost|closed|open|pending|contacted|in progress|converted|"
               r"disqualified|junk|not interested|interested|"
               r"called|call back|phone conversation|sms|email (sent|opened|bounced)|"
               r"unreachable|ringing|busy|revert|follow[- ]?up|meeting (booked|done)|"
               r"demo (booked|done)|proposal|negotiation|qualified|nurture|worst|"
               r"high in relevance|might be|not sure|low in relevance|hot|warm|cold|"
               r"unsubscribed|do not contact|wrong number|invalid number|already a)\b")
#: A column named like a state whose emptiness tracks the outcome this well goes to review.
NAMED_MISSING_AUC = 0.6
#: Names that say "latest state" or "set during follow-up": supporting evidence only.
STATE_NAMES = (r"(last|latest|current|recent|status|stage|rating|quality|profile|tag|"
               r"score|index|activity|assigned|owner|outcome|result|disposition|notable)")


def leak_evidence(stats: dict, history: History, cfg: TrainConfig,
                  converted_at: pd.Series | None) -> list[tuple[str, str, float, str]]:
    """(level, flag, strength, why) for each sign that a column is not known when a lead
    arrives. Behaviour decides; names only support behaviour that is already suspect."""
    ac, name = cfg.audit, stats["column"]
    y = history.target
    values = history.features[name]
    missing = is_missing(values, cfg.dataset.missing_values)
    auc, out = stats["single_auc"], []
    # 1. Filled only for converted leads (or only for lost ones), however rarely: judged on
    # every conversion, however late. Under a horizon a deal closed after it counts as not
    # converted in the label, yet a field the deal filled in is there because it converted.
    ever = ever_converted(y, converted_at)
    filled = ~missing
    k = int(filled.sum())
    base = float(ever.mean())
    if k >= ac.min_exclusive_filled and 0 < base < 1 and k < len(y):
        share = float(ever[filled].mean())
        for side, p, only in ((1.0, base, "converted"), (0.0, 1 - base, "lost")):
            # the chance that k leads filled at random are all of one outcome
            if abs(share - side) < 1e-9 and k * np.log(p) < np.log(1e-6):
                out.append(("blocks", "exclusive-filling", 1.0, (
                    f"is filled only for {only} leads ({k:,} rows, {filled.mean():.1%} of "
                    f"all; chance would give that below one in a million): it exists once "
                    f"the outcome does")))
    # 2. Whether it is empty tracks the outcome.
    m_auc = stats["missing_auc"]
    if m_auc is not None and m_auc >= ac.max_missing_auc and not out:
        level = "blocks" if m_auc >= ac.block_missing_auc else "review"
        out.append((level, "missingness", m_auc, (
            f"whether it is empty alone gives ROC AUC {m_auc:.3f}: it is filled for "
            f"{1 - missing[y == 1].mean():.0%} of converted leads and "
            f"{1 - missing[y == 0].mean():.0%} of the others; does it exist only once a lead "
            "has converted (or been lost)?")))
    # 3. Alone, it ranks leads too well.
    stateful = stats["kind"] == "text" and _reads_like_states(values[~missing])
    named = bool(re.search(STATE_NAMES, name.lower()))
    if auc >= ac.block_single_auc:
        out.append(("blocks", "single-AUC", auc, (
            f"alone separates converted from other leads with ROC AUC {auc:.3f} (blocks "
            f"from {ac.block_single_auc}): is it filled in or changed after the outcome (a "
            "call length, a status, a rating)?")))
    elif auc >= ac.max_single_auc and stateful:  # a status that nearly is the outcome
        out.append(("blocks", "single-AUC", auc, (
            f"alone separates converted from other leads with ROC AUC {auc:.3f}, and its "
            f"values read like sales actions or outcome states (e.g. "
            f"{_state_examples(values[~missing])}): it is set while or after the lead is "
            "worked")))
    elif auc >= ac.max_single_auc:
        out.append(("review", "single-AUC", auc, (
            f"alone separates converted from other leads with ROC AUC {auc:.3f} (review "
            f"from {ac.max_single_auc}): is it filled in or changed after the first "
            "contact?")))
    elif stateful and auc >= ac.state_auc:
        out.append(("review", "latest-state", auc, (
            f"holds values that read like sales actions or outcome states (e.g. "
            f"{_state_examples(values[~missing])}) and ranks leads at ROC AUC {auc:.3f}: "
            "exported at export time, it shows what happened after the lead arrived")))
    elif named and stats["kind"] != "date" and auc >= ac.state_auc + 0.05:
        # A name alone is no evidence: a useful field ranks leads too ("current occupation").
        # With emptiness that tracks the outcome (filled as the lead is worked) it is review.
        if m_auc is not None and m_auc >= NAMED_MISSING_AUC:
            out.append(("review", "latest-state", auc, (
                f"is named like a state set during follow-up ('{name}'), ranks leads at ROC "
                f"AUC {auc:.3f}, and whether it is empty tracks the outcome (ROC AUC "
                f"{m_auc:.3f}): is it the lead's value when it arrived, or filled in as the "
                "lead was worked?")))
        else:
            out.append(("note", "latest-state", auc, (
                f"is named like a state set during follow-up ('{name}') and ranks leads at "
                f"ROC AUC {auc:.3f}, but its values read like no sales action or outcome and "
                "its emptiness does not track the outcome: make sure it is the lead's value "
                "when it arrived")))
    elif auc >= ac.note_single_auc:
        out.append(("note", "strong", auc, (
            f"ranks leads at ROC AUC {auc:.3f} alone, with no other sign of a leak (its "
            "values read like no sales action or outcome)")))
    # 4. An id or a time that tracks the outcome.
    if stats["order_auc"] is not None and stats["order_auc"] >= ac.max_order_auc:
        out.append(("blocks", "tracks-outcome", stats["order_auc"], (
            f"is {stats['pattern']} and tracks the outcome (ROC AUC "
            f"{stats['order_auc']:.3f}): the model would learn when or how the record was "
            "made, not who the lead is")))
    # 5. Dates after the conversion.
    if converted_at is not None and stats["kind"] == "date" and \
            name != (cfg.dataset.target.converted_at_column if cfg.dataset.target else None):
        when = read_dates(values, cfg.dataset.converted_at_format)
        both = (ever == 1) & when.notna().to_numpy() & converted_at.notna().to_numpy()
        if both.sum() >= 10:
            after = float((when[both].to_numpy() > converted_at[both].to_numpy()).mean())
            stats["after_conversion_share"] = round(after, 4)
            if after >= 0.5:
                out.append(("blocks", "after-conversion", after, (
                    f"holds dates after the lead converted for {after:.0%} of converted "
                    "leads: it was recorded after the outcome")))
    return out


def ever_converted(y: np.ndarray, converted_at: pd.Series | None) -> np.ndarray:
    """1 for a lead that converted at any time the data knows of (within the horizon or
    after it), else the label."""
    if converted_at is None:
        return y
    return np.maximum(y, converted_at.notna().to_numpy().astype(y.dtype))


def _reads_like_states(stated: pd.Series) -> bool:
    """Do the values read like sales actions or outcome states: a tenth of the rows, or
    three in ten of the distinct values?"""
    counts = stated.astype(str).str.strip().str.lower().value_counts()
    if counts.empty:
        return False
    hits = np.array([bool(re.search(STATE_WORDS, v)) for v in counts.index])
    return bool(counts[hits].sum() >= 0.1 * counts.sum() or hits.mean() >= 0.3)


def _state_examples(stated: pd.Series) -> str:
    counts = stated.astype(str).str.strip().value_counts()
    found = [v for v in counts.index if re.search(STATE_WORDS, v.lower())][:3]
    return ", ".join(repr(v) for v in found)
