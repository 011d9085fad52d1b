"""A lead history exported from a CRM as it comes, with every trap a real export holds.

``leadml sample --export-style crm`` writes it. Each pattern below is one that tripped
leadml on real exports, and each has a test that the audit and the config handle it:

- **newest first**: rows come as a CRM lists them, the newest lead first; ``Lead Number`` is
  an auto-number (it grows with creation, so ``time_format: sequence`` orders the leads) and
  ``Created On`` is written day-first (``03/04/2026 10:15``), which only
  ``time_format: '%d/%m/%Y %H:%M'`` reads;
- **unmatured outcomes**: the outcomes table (``Lead Number``, ``Converted On``) holds only
  the conversions that happened before the export; half of the deals close more than two
  weeks after creation, so the newest leads look lost because they are young;
- **latest-state fields**: ``Last Activity`` and ``Last Notable Activity`` are what sales did
  last, updated after the outcome; ``Lead Quality`` and ``Lead Profile`` are set by sales
  during follow-up; ``Activity Score`` is assigned later. Each ranks leads only moderately
  alone;
- **deal-table fields**: ``Deal Amount`` is filled for about 8% of converted leads and for no
  other lead, ``Contract Type`` for about one in 25 (tens of leads); some of those
  deals closed months after the lead came in, past any horizon a config sets, so under a
  horizon's label they look lost;
- **a strong legitimate field**: ``Total Time Spent on Website`` (seconds, before any
  contact) ranks leads at about AUC 0.76 alone;
- **placeholders**: ``Select`` and ``unknown`` where the web form had no answer;
- **no budget or timeline field**: BANT has an occupation and a "what matters most" field.

The generator knows each lead's true probability of converting within any horizon (the
conversion process is drawn explicitly), so calibration can be checked against the truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.data.tables import write_table, write_text

EXPORT_TIME = pd.Timestamp("2026-06-30 18:00")
HISTORY_DAYS = 365
FIRST_NUMBER = 580_000
CREATED_FORMAT = "%d/%m/%Y %H:%M"

ORIGINS = {"Landing Page Submission": (0.5, 0.0), "API": (0.38, -0.2),
           "Lead Add Form": (0.08, 1.6), "Lead Import": (0.04, -0.6)}
SOURCES = {"Google": (0.31, 0.0), "Direct Traffic": (0.28, -0.2), "Olark Chat": (0.19, -0.4),
           "Organic Search": (0.12, 0.0), "Reference": (0.06, 1.5), "Facebook": (0.04, -0.3)}
OCCUPATIONS = {"Unemployed": (0.55, -0.2), "Working Professional": (0.08, 2.0),
               "Student": (0.03, -0.5), "Businessman": (0.01, 0.8), "Housewife": (0.01, 1.0),
               "Select": (0.32, -0.4)}
MATTERS = {"Better Career Prospects": (0.6, 0.3), "Flexibility & Convenience": (0.01, 0.0),
           "Other": (0.01, 0.0), "Select": (0.38, -0.3)}
SPECIALIZATIONS = ["Finance Management", "Human Resource Management", "Marketing Management",
                   "Operations Management", "Business Administration", "IT Projects Management",
                   "Supply Chain Management", "Media and Advertising", "Select"]
CITIES = ["Mumbai", "Thane & Outskirts", "Other Cities", "Other Metro Cities",
          "Tier II Cities", "Select", "unknown"]
# What sales did last: after the outcome, converted leads lean to these.
WON_ACTIVITIES = {"SMS Sent": 0.3, "Had a Phone Conversation": 0.08, "Email Opened": 0.34,
                  "Page Visited on Website": 0.08, "Email Link Clicked": 0.06,
                  "Olark Chat Conversation": 0.06, "Converted to Lead": 0.04,
                  "Email Bounced": 0.02, "Unreachable": 0.02}
LOST_ACTIVITIES = {"SMS Sent": 0.14, "Had a Phone Conversation": 0.01, "Email Opened": 0.38,
                   "Page Visited on Website": 0.08, "Email Link Clicked": 0.04,
                   "Olark Chat Conversation": 0.16, "Converted to Lead": 0.08,
                   "Email Bounced": 0.06, "Unreachable": 0.05}
QUALITY_WON = {"": 0.4, "High in Relevance": 0.2, "Might be": 0.25, "Not Sure": 0.1,
               "Low in Relevance": 0.04, "Worst": 0.01}
QUALITY_LOST = {"": 0.55, "High in Relevance": 0.03, "Might be": 0.13, "Not Sure": 0.17,
                "Low in Relevance": 0.06, "Worst": 0.06}
PROFILE_WON = {"Select": 0.5, "Potential Lead": 0.4, "Other Leads": 0.06,
               "Student of SomeSchool": 0.01, "Lateral Student": 0.03}
PROFILE_LOST = {"Select": 0.78, "Potential Lead": 0.09, "Other Leads": 0.06,
                "Student of SomeSchool": 0.05, "Lateral Student": 0.01}

CONFIG = """\
# A first config for the CRM-style sample, as a new user writes it: every column of the
# export listed as a feature. `leadml audit` says which of them leak and why.
dataset:
  path: leads.csv
  id_column: Lead Number
  time_column: Created On
  time_format: '%d/%m/%Y %H:%M'
  outcomes:
    path: outcomes.csv
    id_column: Lead Number
    converted_at_column: Converted On
    converted_at_format: '%d/%m/%Y %H:%M'
  columns:
    numeric: [TotalVisits, Total Time Spent on Website, Page Views Per Visit,
              Activity Score, Deal Amount]
    categorical: [Lead Origin, Lead Source, Do Not Email, Country, Specialization,
                  What is your current occupation,
                  What matters most to you in choosing a course, City, Last Activity,
                  Last Notable Activity, Lead Quality, Lead Profile, Contract Type]
  missing_values: ["", "Select", "unknown"]
"""


def _pick(rng, table: dict, n: int) -> np.ndarray:
    names = list(table)
    weights = np.array([v[0] if isinstance(v, tuple) else v for v in table.values()])
    return rng.choice(np.array(names, dtype=object), size=n, p=weights / weights.sum())


def _effect(values: np.ndarray, table: dict) -> np.ndarray:
    return np.array([table[v][1] for v in values])


def _by_outcome(rng, won: np.ndarray, when_won: dict, when_lost: dict) -> np.ndarray:
    out = _pick(rng, when_lost, len(won))
    out[won] = _pick(rng, when_won, int(won.sum()))
    return out


def make_crm_export(rows: int, *, seed: int, nightly_rows: int = 0,
                    export_time: pd.Timestamp = EXPORT_TIME
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(leads, outcomes, nightly) as a CRM exports them at ``export_time``.

    ``leads`` also carries the generator's truth in ``_true_p90`` (the probability of
    converting within 90 days) and ``_converts_at`` (when the lead converts, whether or
    not that is before the export); write the file without the columns starting with ``_``.
    """
    rng = np.random.default_rng(seed)
    n = rows + nightly_rows
    offsets = np.sort(rng.uniform(0, HISTORY_DAYS * 86_400, size=rows))
    created = export_time - pd.Timedelta(days=HISTORY_DAYS) + pd.to_timedelta(
        np.round(offsets), unit="s")
    nightly_created = export_time + pd.to_timedelta(
        np.sort(rng.uniform(0, 86_400, nightly_rows)), unit="s")
    created = created.append(nightly_created)
    t = np.concatenate([offsets / (HISTORY_DAYS * 86_400), np.ones(nightly_rows)])

    origin = _pick(rng, ORIGINS, n)
    source = _pick(rng, SOURCES, n)
    occupation = _pick(rng, OCCUPATIONS, n)
    matters = _pick(rng, MATTERS, n)
    minutes = rng.gamma(1.1, 9.0, n)  # time on the website before any contact
    seconds = np.round(minutes * 60).astype(int)
    seconds[rng.random(n) < 0.22] = 0  # never visited
    visits = np.where(seconds == 0, 0, 1 + rng.poisson(2.5, n))
    views = np.where(visits == 0, 0, np.round(rng.gamma(2.0, 1.2, n), 2))
    logit = (-3.6 + 0.3 * t + 2.7 * np.log1p(seconds / 600.0)
             + _effect(origin, ORIGINS) + _effect(source, SOURCES)
             + _effect(occupation, OCCUPATIONS) + _effect(matters, MATTERS)
             + 0.12 * np.log1p(visits))
    p_ever = 1.0 / (1.0 + np.exp(-logit))
    won = rng.random(n) < p_ever
    # Days to close: half of the deals take more than two weeks.
    lag_days = rng.lognormal(np.log(16.0), 0.85, n)
    p90 = p_ever * _lognormal_cdf(90.0, np.log(16.0), 0.85)
    converts_at = created + pd.to_timedelta(np.round(lag_days * 86_400), unit="s")

    numbers = FIRST_NUMBER + np.arange(n) * 3 + rng.integers(0, 3, n)  # gaps, increasing
    leads = pd.DataFrame({
        "Lead Number": numbers.astype(str),
        "Created On": created.strftime(CREATED_FORMAT),
        "Lead Origin": origin,
        "Lead Source": source,
        "Do Not Email": np.where(rng.random(n) < 0.08, "Yes", "No"),
        "TotalVisits": visits.astype(str),
        "Total Time Spent on Website": seconds.astype(str),
        "Page Views Per Visit": views.astype(str),
        "Country": rng.choice(["India", "India", "India", "United States", "unknown", ""], n),
        "Specialization": rng.choice(SPECIALIZATIONS, n),
        "What is your current occupation": occupation,
        "What matters most to you in choosing a course": matters,
        "City": rng.choice(CITIES, n),
    })
    # What the export shows at export time: the latest state. For leads that converted
    # before the export, it reflects the outcome; for the others, the lead's early state.
    decided = won & (converts_at <= export_time)
    settled = decided | ((created <= export_time - pd.Timedelta(days=60)) & ~won)
    worked = np.where(settled, won, False)
    leads["Last Activity"] = _by_outcome(rng, worked, WON_ACTIVITIES, LOST_ACTIVITIES)
    leads["Last Notable Activity"] = np.where(
        rng.random(n) < 0.6, leads["Last Activity"],
        _by_outcome(rng, worked, {"SMS Sent": 0.4, "Email Opened": 0.5, "Modified": 0.1},
                    {"SMS Sent": 0.15, "Email Opened": 0.45, "Modified": 0.4}))
    leads["Lead Quality"] = _by_outcome(rng, worked, QUALITY_WON, QUALITY_LOST)
    leads["Lead Profile"] = _by_outcome(rng, worked, PROFILE_WON, PROFILE_LOST)
    score = np.round(14 + 1.2 * worked + rng.normal(0, 1.3, n)).astype(int).astype(str)
    leads["Activity Score"] = np.where(rng.random(n) < 0.45, "", score)
    deal = decided & (rng.random(n) < 0.08)
    amounts = (np.round(rng.lognormal(np.log(90_000), 0.4, n), -2)).astype(int).astype(str)
    leads["Deal Amount"] = np.where(deal, amounts, "")
    contract = decided & (rng.random(n) < 0.04)
    leads["Contract Type"] = np.where(contract, rng.choice(["Annual", "Semester", "Full "
                                                            "Program"], n), "")
    leads["_true_p90"] = p90
    leads["_converts_at"] = np.where(won, converts_at.astype(str), "")

    history, nightly = leads.iloc[:rows].copy(), leads.iloc[rows:].copy()
    outcomes = pd.DataFrame({
        "Lead Number": history["Lead Number"][decided[:rows]].to_numpy(),
        "Converted On": converts_at[:rows][decided[:rows]].strftime(CREATED_FORMAT)})
    history = history.iloc[::-1].reset_index(drop=True)  # a CRM lists the newest first
    outcomes = outcomes.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    for col in ("Last Activity", "Last Notable Activity", "Lead Quality", "Lead Profile",
                "Activity Score", "Deal Amount", "Contract Type"):  # new leads: no follow-up
        nightly[col] = ""
    return history, outcomes, nightly.reset_index(drop=True)


def _lognormal_cdf(x: float, mu: float, sigma: float) -> float:
    from math import erf, log, sqrt

    return 0.5 * (1 + erf((log(x) - mu) / (sigma * sqrt(2))))


def write_crm_export(folder, rows: int, *, seed: int, nightly_rows: int) -> dict:
    """Write leads.csv, outcomes.csv, nightly.csv and train.yaml into ``folder``."""
    from pathlib import Path

    folder = Path(folder)
    history, outcomes, nightly = make_crm_export(rows, seed=seed, nightly_rows=nightly_rows)
    public = [c for c in history.columns if not c.startswith("_")]
    write_table(history[public], folder / "leads.csv")
    write_table(outcomes, folder / "outcomes.csv")
    write_table(nightly[public], folder / "nightly.csv")
    write_text(CONFIG, folder / "train.yaml")
    return {"leads": len(history), "conversions_known": len(outcomes),
            "nightly": len(nightly)}
