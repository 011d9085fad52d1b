"""Synthetic B2B lead history with a known conversion probability per lead.

The generator is the ground truth for calibration tests: every lead carries the
probability its outcome was drawn from (``true_probability``), so a model's
predictions can be compared with the truth rather than only with 0/1 outcomes.

The probability model (log-odds, documented in ``data/README.md``)::

    logit p = base(t)                         # slow drift: +0.45 over the 18 months
            + source + industry + size         # firmographics and channel
            + seniority(job_title)             # authority, read from the free-text title
            + budget effect                    # log budget when stated; missing lowers p
            + timeline + need                  # stated timeline and need; missing lowers p
            + engagement                       # visits, opens, form fills, meetings
            + interactions                     # senior title x large company,
                                               # software x api interest, referral x meetings

Outcomes are Bernoulli draws from ``p``; converted leads get a ``converted_at``
some days after ``created_at``, so ``converted_at`` is a post-outcome column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.data.crm_ids import salesforce_suffix

HISTORY_END = pd.Timestamp("2026-06-30")
HISTORY_DAYS = 548  # about 18 months

SOURCES = {  # name: (share, log-odds effect, channel)
    "web_form": (0.24, 0.25, "inbound"),
    "webinar": (0.12, 0.10, "inbound"),
    "referral": (0.08, 0.80, "partner"),
    "paid_search": (0.18, -0.10, "inbound"),
    "trade_show": (0.08, 0.20, "outbound"),
    "cold_outbound": (0.20, -0.70, "outbound"),
    "partner": (0.10, 0.45, "partner"),
}
INDUSTRIES = {
    "software": (0.22, 0.35),
    "finance": (0.14, 0.15),
    "healthcare": (0.12, 0.00),
    "manufacturing": (0.14, -0.10),
    "retail": (0.12, -0.20),
    "education": (0.08, -0.45),
    "logistics": (0.10, 0.05),
    "public_sector": (0.08, -0.35),
}
SIZES = {  # band: (share, effect, median budget in USD)
    "1-10": (0.18, -0.60, 4_000),
    "11-50": (0.24, -0.15, 9_000),
    "51-200": (0.24, 0.15, 20_000),
    "201-1000": (0.18, 0.30, 45_000),
    "1001-5000": (0.10, 0.25, 90_000),
    "5000+": (0.06, 0.10, 150_000),
}
COUNTRIES = {
    "US": 0.34, "GB": 0.12, "DE": 0.10, "FR": 0.07, "CA": 0.07,
    "AU": 0.05, "IN": 0.08, "BR": 0.05, "NL": 0.06, "ES": 0.06,
}
COUNTRY_EFFECT = {"US": 0.10, "GB": 0.05, "DE": 0.00, "IN": -0.35, "BR": -0.25}
SENIORITY = {  # level: (share, effect, title templates; {f} is the function)
    "c_level": (0.07, 0.85, ["CEO", "Chief Executive Officer", "CTO", "Chief Revenue Officer",
                             "COO", "cfo", "Chief {f} Officer"]),
    "founder": (0.05, 0.75, ["Founder", "Co-Founder", "co-founder & CEO", "Founder/Owner",
                             "Owner", "Managing Partner"]),
    "vp": (0.09, 0.65, ["VP {f}", "V.P. of {f}", "Vice President, {f}", "SVP {f}",
                        "vp of {f}", "Vice-President {f}"]),
    "director": (0.14, 0.45, ["Director of {f}", "{f} Director", "Sr. Director, {f}",
                              "Head of {f}", "head of {f}", "Dir. {f}"]),
    "manager": (0.25, 0.05, ["{f} Manager", "Manager, {f}", "Sr. Manager {f}", "{f} Lead",
                             "Team Lead - {f}", "mgr {f}"]),
    "individual": (0.32, -0.35, ["{f} Analyst", "{f} Specialist", "{f} Coordinator",
                                 "Software Engineer", "{f} Associate", "consultant"]),
    "student": (0.03, -1.30, ["Student", "Intern", "{f} Intern", "student", "PhD candidate"]),
    "missing": (0.05, -0.40, [""]),
}
FUNCTIONS = ["Sales", "Marketing", "Operations", "IT", "Finance", "Procurement",
             "Engineering", "Revenue Operations", "Customer Success"]
TIMELINES = {  # stated purchase timeline: (share, effect)
    "this quarter": (0.10, 0.90),
    "next quarter": (0.12, 0.55),
    "3-6 months": (0.14, 0.30),
    "6-12 months": (0.12, -0.05),
    "next year": (0.06, -0.35),
    "no plans": (0.06, -1.40),
    "just researching": (0.05, -0.90),
    "": (0.35, -0.30),  # missing
}
NEEDS = {  # stated need: (share, effect)
    "urgent pain": (0.10, 0.90),
    "active project": (0.18, 0.55),
    "exploring": (0.30, 0.00),
    "no current need": (0.08, -1.10),
    "": (0.34, -0.20),
}
PRODUCTS = {"analytics": 0.30, "automation": 0.25, "crm_integration": 0.20,
            "reporting": 0.15, "api": 0.10}
PRODUCT_EFFECT = {"automation": 0.15, "crm_integration": 0.10, "reporting": -0.15}
MISSING_MARKERS = ["Select", "N/A", "-"]

COLUMNS = [
    "lead_id", "created_at", "lead_source", "channel", "industry", "company_size", "country",
    "job_title", "estimated_budget", "purchase_timeline", "stated_need", "product_interest",
    "web_visits", "email_opens", "form_fills", "meetings",
    "true_probability", "converted", "converted_at",
]
OUTCOME_COLUMNS = ["true_probability", "converted", "converted_at"]


def _pick(rng: np.random.Generator, table: dict, n: int) -> np.ndarray:
    names = list(table)
    shares = np.array([v[0] if isinstance(v, tuple) else v for v in table.values()], float)
    return rng.choice(np.array(names, dtype=object), size=n, p=shares / shares.sum())


def _effect(values: np.ndarray, table: dict, index: int = 1) -> np.ndarray:
    lookup = {k: (v[index] if isinstance(v, tuple) else v) for k, v in table.items()}
    return np.array([lookup.get(v, 0.0) for v in values], float)


def _titles(rng: np.random.Generator, seniority: np.ndarray) -> np.ndarray:
    functions = rng.choice(FUNCTIONS, size=len(seniority))
    choice = rng.random(len(seniority))
    case = rng.random(len(seniority))
    titles = []
    for level, f, c, k in zip(seniority, functions, choice, case, strict=True):
        templates = SENIORITY[level][2]
        title = templates[int(c * len(templates))].format(f=f)
        if k < 0.08:  # sloppy CRM entry
            title = title.lower()
        elif k < 0.11:
            title = title.upper()
        titles.append(title)
    return np.array(titles, dtype=object)


def _with_markers(rng: np.random.Generator, values: np.ndarray, rate: float) -> np.ndarray:
    """Replace a share of values by CRM placeholders ('Select', 'N/A', '-')."""
    out = values.copy()
    hit = rng.random(len(out)) < rate
    out[hit] = rng.choice(MISSING_MARKERS, size=int(hit.sum()))
    return out


def make_leads(
    n: int,
    *,
    seed: int = 0,
    start: pd.Timestamp | None = None,
    days: float = HISTORY_DAYS,
    drift: float = 0.45,
    drift_at: float | None = None,
    swing: float = 0.0,
    swings: float = 2.0,
    parts: bool = False,
) -> pd.DataFrame:
    """Draw ``n`` leads with outcomes, in creation order.

    Parameters
    ----------
    n : int
        Number of leads.
    seed : int
        Seed of the random generator; the same seed gives the same frame.
    start : Timestamp, optional
        Creation time of the earliest lead; defaults to 18 months before 2026-06-30.
    days : float
        Span of ``created_at`` in days.
    drift : float
        Change of the base log-odds from the first to the last lead.
    drift_at : float, optional
        Draw every lead at this point of the drift (0 its start, 1 its end) instead of at
        its own place in time: a nightly file drawn after the history uses 1.
    swing : float
        Amplitude of a seasonal swing of the base log-odds, ``swing * sin(2 pi swings t)``:
        1.0 moves the conversion rate between about a third and twice its level.
    swings : float
        Full cycles of the swing over the span.
    parts : bool
        Also return ``true_fit`` and ``true_engagement``: the parts of each lead's true
        log-odds that its profile (industry, size, country, seniority, budget) and its
        actions (visits, opens, forms, meetings) make, for checking the fit and engagement
        axes against the truth. The draws are the same with or without them.

    Returns
    -------
    DataFrame with the columns in ``COLUMNS``.

    Examples
    --------
    >>> leads = make_leads(200, seed=1)
    >>> leads.shape
    (200, 19)
    >>> bool(leads["true_probability"].between(0, 1).all())
    True
    """
    if n < 1:
        raise ValueError(f"rows must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    start = HISTORY_END - pd.Timedelta(days=days) if start is None else pd.Timestamp(start)
    offsets = np.sort(rng.uniform(0, days * 86_400, size=n))
    created = start + pd.to_timedelta(np.round(offsets), unit="s")
    t = offsets / (days * 86_400) if drift_at is None else np.full(n, float(drift_at))

    source = _pick(rng, SOURCES, n)
    channel = np.array([SOURCES[s][2] for s in source], dtype=object)
    industry = _pick(rng, INDUSTRIES, n)
    size = _pick(rng, SIZES, n)
    country = _pick(rng, COUNTRIES, n)
    seniority = _pick(rng, SENIORITY, n)
    timeline = _pick(rng, TIMELINES, n)
    need = _pick(rng, NEEDS, n)
    product = _pick(rng, PRODUCTS, n)

    median_budget = _effect(size, SIZES, 2)
    budget = np.round(median_budget * rng.lognormal(0.0, 0.8, n), -2)
    # Larger, more senior leads state a budget more often: missingness carries signal.
    senior = np.isin(seniority, ["c_level", "founder", "vp", "director"])
    budget_missing = rng.random(n) < np.where(senior, 0.30, 0.55)
    budget[budget_missing] = np.nan
    log_budget_ratio = np.where(budget_missing, 0.0, np.log(np.nan_to_num(budget, nan=1.0)
                                                            / median_budget))

    web_visits = rng.negative_binomial(2, 0.25, n)
    email_opens = rng.negative_binomial(1.5, 0.3, n)
    form_fills = rng.poisson(0.3 + 0.5 * np.isin(source, ["web_form", "webinar"]), n)
    meetings = rng.poisson(np.where(senior, 0.45, 0.2), n)

    true_fit = (  # who the lead is: the ideal customer profile
        _effect(industry, INDUSTRIES)
        + _effect(size, SIZES)
        + np.array([COUNTRY_EFFECT.get(c, 0.0) for c in country])
        + _effect(seniority, SENIORITY)
        + np.where(budget_missing, -0.35, 0.30 + 0.35 * np.clip(log_budget_ratio, -2, 2))
        + 0.55 * (np.isin(seniority, ["c_level", "vp"]) & np.isin(size, ["201-1000",
                                                                          "1001-5000", "5000+"]))
    )
    true_engagement = (  # what the lead did
        0.22 * np.log1p(web_visits) + 0.06 * np.log1p(email_opens)
        + 0.35 * np.minimum(form_fills, 3) + 0.55 * np.minimum(meetings, 3)
    )
    logit = (
        -3.6 + drift * t + swing * np.sin(2 * np.pi * swings * t)
        + _effect(source, SOURCES)
        + true_fit
        + _effect(timeline, TIMELINES)
        + _effect(need, NEEDS)
        + np.array([PRODUCT_EFFECT.get(p, 0.0) for p in product])
        + true_engagement
        + 0.60 * ((industry == "software") & (product == "api"))
        + 0.40 * ((source == "referral") & (meetings > 0))
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    converted = (rng.random(n) < p).astype(int)
    lag_days = rng.gamma(2.0, 15.0, n)
    converted_at = created + pd.to_timedelta(np.round(lag_days * 86_400), unit="s")

    ids = rng.choice(np.arange(10_000_000, 100_000_000), size=n, replace=False)
    frame = pd.DataFrame({
        "lead_id": [f"L{i}" for i in ids],
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S"),
        "lead_source": source,
        "channel": channel,
        "industry": _with_markers(rng, industry, 0.03),
        "company_size": _with_markers(rng, size, 0.02),
        "country": _with_markers(rng, country, 0.02),
        "job_title": _titles(rng, seniority),
        "estimated_budget": budget,
        "purchase_timeline": timeline,
        "stated_need": need,
        "product_interest": product,
        "web_visits": web_visits,
        "email_opens": email_opens,
        "form_fills": form_fills,
        "meetings": meetings,
        "true_probability": np.round(p, 6),
        "converted": converted,
        "converted_at": np.where(converted == 1, converted_at.strftime("%Y-%m-%dT%H:%M:%S"), ""),
    })
    for col in ["job_title", "purchase_timeline", "stated_need", "converted_at"]:
        frame[col] = frame[col].replace("", np.nan)
    if parts:
        return frame[COLUMNS].assign(true_fit=np.round(true_fit, 6),
                                     true_engagement=np.round(true_engagement, 6))
    return frame[COLUMNS]


#: The CRM's own columns of a nightly export: who the lead is and its record ids, for the
#: scored file to carry and the write-back file to key by (never model fields).
IDENTITY_COLUMNS = ["company", "email", "owner", "sf_lead_id", "hubspot_record_id"]
_BASE62 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
_NAMES = ["ana", "ben", "chen", "dana", "eli", "fatima", "goran", "hana", "ivan", "jo"]
_FAMILY = ["ruiz", "okafor", "lee", "novak", "smith", "haddad", "sato", "berg", "costa"]
_WORDS = ["North", "Blue", "Apex", "Cedar", "Nova", "Iron", "Bright", "Delta", "Summit"]
_KINDS = ["Systems", "Labs", "Logistics", "Health", "Foods", "Energy", "Retail", "Works"]
_SUFFIXES = ["Inc", "GmbH", "Ltd", "SA", "LLC"]
OWNERS = ["Maria Lopez", "Tom Becker", "Aisha Khan", "Li Wei", "Sven Olsen"]


def with_identity(leads: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``leads`` with the CRM columns of :data:`IDENTITY_COLUMNS`, from a stream of their
    own (the other columns are the same with or without them): a company, an email at its
    domain, the owning rep, an 18-character Salesforce Lead id and a HubSpot Record ID."""
    rng = np.random.default_rng(seed + 77)
    n = len(leads)
    word, kind = rng.choice(_WORDS, n), rng.choice(_KINDS, n)
    company = [f"{w} {k} {x}" for w, k, x in zip(word, kind, rng.choice(_SUFFIXES, n),
                                                  strict=True)]
    people = zip(rng.choice(_NAMES, n), rng.choice(_FAMILY, n), word, kind, strict=True)
    email = [f"{a}.{b}@{w.lower()}{k.lower()}.example" for a, b, w, k in people]
    body = ["".join(row) for row in rng.choice(_BASE62, size=(n, 9))]
    sf = [f"00Q5f{b}0" for b in body]  # the Lead key prefix 00Q, then 12 characters
    return leads.assign(
        company=company, email=email, owner=rng.choice(OWNERS, n),
        sf_lead_id=[i + salesforce_suffix(i) for i in sf],
        hubspot_record_id=(51_000_000_000 + rng.choice(10**9, size=n, replace=False)).astype(str))


def make_sample(rows: int, *, seed: int, nightly_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """History of ``rows`` leads and a nightly file of leads created the day after it ends.

    The nightly leads share the history's columns but carry no outcome; they are drawn
    from the same model at the end of the drift (``t = 1``). Their export also holds the
    CRM's own columns (:func:`with_identity`), which the history (a training export) does
    not need.
    """
    history = make_leads(rows, seed=seed)
    # A different stream from the same seed, created in the 24 h after the history.
    nightly = make_leads(nightly_rows, seed=seed + 1_000_003, start=HISTORY_END, days=1.0,
                         drift_at=1.0)
    nightly = with_identity(nightly.drop(columns=OUTCOME_COLUMNS), seed)
    return history, nightly
