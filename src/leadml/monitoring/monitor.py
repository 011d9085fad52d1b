"""How the leads a model scored actually converted, run by run, as their outcomes mature.

Input: the files ``leadml score`` wrote (each with its manifest: model, rules, time) and an
outcomes table (lead id, and the conversion time or a converted flag). A lead is **matured**
once its outcome can be known: ``horizon_days`` after it was scored when the probability
has a horizon ("converts within 60 days"), else (outcomes declared final) once the outcomes
table lists it. Only
matured leads count as realised; for the rest, the sum of their probabilities is shown as an
**estimate**, labelled so (as NannyML estimates performance before labels arrive).

Per scoring run (or week) and model version: leads scored and matured, realised against
predicted conversion (with a 95% Wilson interval), calibration in the large, calibration
error and ROC AUC on matured leads, per grade, label and score band; the qualification
rate and how much better sales-qualified leads convert than nurture ones; score and input
drift (PSI against the model's test window) and unseen-category rates, each with its test's
p-value. The same for the newest periods of each model pooled, so that a change no small
night shows alone is found and dated. Alerts need a test that chance rarely passes and a
difference worth acting on (:mod:`~leadml.monitoring.alerts`). Pure computation; the job is
:func:`leadml.jobs.monitor`, the statistics :mod:`~leadml.monitoring.statistics`, the tests
:mod:`~leadml.monitoring.significance`, the page :mod:`~leadml.monitoring.page`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadml.monitoring.alerts import Thresholds, alerts_of
from leadml.monitoring.significance import (
    calibration_p_value,
    homogeneity_p_value,
    rate_p_value,
    unseen_p_value,
)
from leadml.monitoring.statistics import score_counts, shares_psi, wilson
from leadml.training.metrics import expected_calibration_error

#: A conversion this long before its lead was scored was not the future the probability
#: spoke of (a day absorbs a CRM's local times read as UTC).
EARLY = pd.Timedelta(days=1)


def mature(scored: pd.DataFrame, outcomes: pd.DataFrame, *, horizon_days: float | None,
           as_of: pd.Timestamp) -> pd.DataFrame:
    """``scored`` with ``matured``, ``converted`` (NaN until matured) and
    ``converted_before_scoring``.

    ``outcomes`` has ``lead_id`` and ``converted_at`` (a UTC time, NaT when not converted)
    or ``converted`` (0/1). ``scored`` has ``lead_id`` and ``scored_at`` (UTC). A lead that
    had converted more than :data:`EARLY` before it was scored (a nightly export that held
    customers already won) never matures: counted as a conversion, it would pass for the
    model's foresight and move the realised rate, the alerts and a recalibration."""
    out = scored.merge(outcomes, on="lead_id", how="left", validate="many_to_one")
    listed = out["lead_id"].isin(outcomes["lead_id"]).to_numpy()
    if horizon_days is not None:
        due = out["scored_at"] + pd.Timedelta(days=horizon_days)
        matured = (due <= as_of).to_numpy()
    else:
        matured = listed
    early = np.zeros(len(out), dtype=bool)
    if "converted_at" in out:
        when = out["converted_at"]
        converted = when.notna().to_numpy()
        early = (when < out["scored_at"] - EARLY).fillna(False).to_numpy(dtype=bool)
        if horizon_days is not None:
            converted = converted & (when <= out["scored_at"] + pd.Timedelta(
                days=horizon_days)).fillna(False).to_numpy()
    else:
        converted = out["converted"].fillna(0).astype(bool).to_numpy()
    out["matured"] = matured & ~early
    out["converted"] = np.where(out["matured"], converted.astype(float), np.nan)
    out["converted_before_scoring"] = early
    return out.drop(columns=[c for c in ("converted_at",) if c in out])


def _group(frame: pd.DataFrame) -> dict:
    """The numbers of one group of scored leads."""
    m = frame[frame["matured"]]
    y, p = m["converted"].to_numpy(float), m["conversion_probability"].to_numpy(float)
    n, k = len(m), float(y.sum())
    lo, hi = wilson(k, n)
    realised = k / n if n else math.nan
    predicted = float(p.mean()) if n else math.nan
    early = frame["converted_before_scoring"].to_numpy(bool) \
        if "converted_before_scoring" in frame else np.zeros(len(frame), dtype=bool)
    young = frame[~frame["matured"] & ~early]["conversion_probability"].to_numpy(float)
    both = 0 < k < n
    row = {
        "scored": int(len(frame)), "matured": n, "converted": int(k),
        "realised_rate": realised, "realised_low": lo, "realised_high": hi,
        "predicted_rate": predicted,
        "calibration_in_the_large": realised - predicted if n else math.nan,
        "observed_over_expected": k / p.sum() if n and p.sum() > 0 else math.nan,
        "ece": expected_calibration_error(y.astype(int), p) if n else math.nan,
        "roc_auc": _auc(y, p) if both else math.nan,
        "estimated_conversions_unmatured": float(young.sum()),
        "unmatured": int(len(young)),
        "converted_before_scoring": int(early.sum()),
    }
    return row


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _breakdown(frame: pd.DataFrame, column: str, order) -> list[dict]:
    rows = []
    for value in order:
        part = frame[(frame[column] == value) & frame["matured"]]
        if len(part) == 0:
            continue
        k, n = float(part["converted"].sum()), len(part)
        lo, hi = wilson(k, n)
        rows.append({column: value, "matured": n, "realised_rate": k / n,
                     "realised_low": lo, "realised_high": hi,
                     "predicted_rate": float(part["conversion_probability"].mean())})
    return rows


@dataclass
class Monitoring:
    periods: pd.DataFrame  # one row per period and model version
    breakdowns: dict[str, dict[str, list[dict]]]  # period -> grade/label/band -> rows
    alerts: list[dict] = field(default_factory=list)
    by: str = "run"
    note: str = ""
    run_id: str | None = None  # the MLflow run it was logged as

    def to_dict(self) -> dict:
        return {"by": self.by, "periods": self.periods.to_dict("records"),
                "breakdowns": self.breakdowns, "alerts": self.alerts}


@dataclass(frozen=True)
class Reference:
    """What a model's leads looked like in its test window, for drift: its probabilities
    (:func:`~leadml.monitoring.statistics.numeric_reference`), each field
    (:func:`~leadml.monitoring.statistics.field_reference`) and the share of each
    categorical field's values training never saw."""

    score: dict | None = None
    fields: dict | None = None
    unseen: dict | None = None


@dataclass
class _Sums:
    """What a period adds to a pooled window: each lead counted at its first scoring."""

    converted: float = 0.0
    matured: int = 0
    predicted: float = 0.0  # the sum of the matured leads' probabilities
    scored: int = 0
    score: np.ndarray | None = None  # leads per bin of the score reference
    inputs: dict = field(default_factory=dict)  # field -> leads per reference bin
    unseen: dict = field(default_factory=dict)  # column -> unseen values

    def __add__(self, other: _Sums) -> _Sums:
        def add(a, b):
            return b if a is None else a if b is None else a + b

        return _Sums(self.converted + other.converted, self.matured + other.matured,
                     self.predicted + other.predicted, self.scored + other.scored,
                     add(self.score, other.score),
                     {c: add(self.inputs.get(c), other.inputs.get(c))
                      for c in {*self.inputs, *other.inputs}},
                     {c: self.unseen.get(c, 0) + other.unseen.get(c, 0)
                      for c in {*self.unseen, *other.unseen}})


def _sums(leads: pd.DataFrame, runs: pd.DataFrame, ref: Reference) -> _Sums:
    """The sums of ``leads`` (a period's, or their first scorings only) and of the
    ``runs`` that scored them."""
    m = leads[leads["matured"]]
    p = leads["conversion_probability"].to_numpy(float)
    inputs: dict = {}
    for found in runs.get("input_bins", pd.Series(dtype=object)):
        for col, counts in (found or {}).items():
            inputs[col] = inputs.get(col, 0) + np.asarray(counts, float)
    unseen: dict = {}
    for counts in runs["unseen"]:
        for col, c in (counts or {}).items():
            unseen[col] = unseen.get(col, 0) + c
    return _Sums(float(m["converted"].sum()), len(m),
                 float(m["conversion_probability"].sum()), int(runs["scored"].sum()),
                 score_counts(p[np.isfinite(p)], ref.score) if ref.score else None,
                 inputs, unseen)


def _tests(s: _Sums, ref: Reference) -> dict:
    """Drift and unseen values of a period or window, with their tests' p-values."""
    out: dict = {"score_psi": None, "score_p": None}
    if s.score is not None and s.score.sum() > 0:
        shares = ref.score["shares"][:len(s.score)]
        out["score_psi"] = shares_psi(shares, s.score)
        out["score_p"] = homogeneity_p_value(s.score, shares, ref.score.get("n"))
    fields = ref.fields or {}
    out["input_psi"], out["input_p"] = {}, {}
    for col, counts in s.inputs.items():
        if col in fields and counts.sum() > 0:
            out["input_psi"][col] = shares_psi(fields[col]["shares"], counts)
            out["input_p"][col] = homogeneity_p_value(
                counts, fields[col]["shares"], fields[col].get("n"),
                ordered=fields[col]["kind"] == "numeric")
    total = s.scored or 1
    out["unseen_rates"] = {c: v / total for c, v in s.unseen.items()}
    out["unseen_p"] = {c: unseen_p_value(int(v), s.scored, (ref.unseen or {}).get(c, 0.0))
                       for c, v in s.unseen.items() if v}
    return out


def _window(s: _Sums, ref: Reference, **where) -> dict:
    lo, hi = wilson(s.converted, s.matured)
    rate = s.converted / s.matured if s.matured else math.nan
    predicted = s.predicted / s.matured if s.matured else math.nan
    return {**where, "matured": s.matured, "converted": int(s.converted),
            "realised_rate": rate, "realised_low": lo, "realised_high": hi,
            "predicted_rate": predicted,
            "rate_p": rate_p_value(s.converted, s.matured, predicted) if s.matured else None,
            **_tests(s, ref)}


def summarize(frame: pd.DataFrame, runs: pd.DataFrame, *, by: str = "run",
              thresholds: Thresholds | None = None,
              references: dict[str, Reference] | None = None, bands: int = 10) -> Monitoring:
    """Numbers per period (a scoring run, or the week it ran in) and model version, the
    newest periods of each model pooled, and the alerts of both
    (:func:`~leadml.monitoring.alerts.alerts_of`).

    ``frame``: one row per scored lead (``run``, ``scored_at``, ``model``, ``lead_id``,
    ``conversion_probability``, ``grade``, ``label``, ``matured``, ``converted``).
    ``runs``: one row per scoring run (``run``, ``unseen`` column->count, ``scored``,
    ``warnings``: the run's own, such as a field its export left empty; ``input_bins``:
    field -> leads per reference bin, when its lead file could be read again).
    ``references``: model -> its :class:`Reference`."""
    thresholds = thresholds or Thresholds()
    frame = frame.copy()
    frame["period"] = frame["run"] if by == "run" else \
        frame["scored_at"].dt.tz_convert(None).dt.to_period("W-SUN").dt.start_time.dt.strftime(
            "week of %Y-%m-%d")
    # A lead scored by several runs of one period (overlapping nightly exports) counts
    # once there, as first scored (runs come oldest first); in a pooled window, once.
    frame = frame.drop_duplicates(["period", "model", "lead_id"], keep="first")
    frame["first"] = ~frame.duplicated(["model", "lead_id"], keep="first")
    edges = np.linspace(0, 1, bands + 1)
    frame["band"] = pd.cut(frame["conversion_probability"], edges, include_lowest=True,
                           labels=[f"{a:.0%}-{b:.0%}" for a, b in zip(edges[:-1], edges[1:],
                                                                      strict=True)]).astype(str)
    rows, breakdowns, sums = [], {}, {}
    for (period, model), part in frame.groupby(["period", "model"], sort=False):
        ref = (references or {}).get(model) or Reference()
        in_runs = runs[runs["run"].isin(part["run"].unique())]
        period_sums = _sums(part, in_runs, ref)
        sums.setdefault(model, []).append(
            (period, _sums(part[part["first"]], in_runs, ref)))
        row = {"period": period, "model": model,
               "scored_at": part["scored_at"].min().strftime("%Y-%m-%dT%H:%M:%SZ"),
               **_group(part), **_tests(period_sums, ref)}
        row["rate_p"] = rate_p_value(row["converted"], row["matured"], row["predicted_rate"]) \
            if row["matured"] else None
        m = part[part["matured"]]
        row["calibration_p"] = calibration_p_value(
            m["converted"].to_numpy(float), m["conversion_probability"].to_numpy(float)) \
            if len(m) else None
        labels = part["label"].value_counts()
        row["qualification_rate"] = float(labels.get("sales_qualified", 0) / len(part))
        sql = m[m["label"] == "sales_qualified"]["converted"]
        nurture = m[m["label"] == "nurture"]["converted"]
        row["sql_conversion_rate"] = float(sql.mean()) if len(sql) else math.nan
        row["nurture_conversion_rate"] = float(nurture.mean()) if len(nurture) else math.nan
        row["sql_over_nurture"] = row["sql_conversion_rate"] / row["nurture_conversion_rate"] \
            if len(sql) and len(nurture) and row["nurture_conversion_rate"] > 0 else math.nan
        row["warnings"] = [w for found in in_runs.get("warnings", pd.Series(dtype=object))
                           for w in (found or [])]  # (the runs' own: fields left empty)
        rows.append(row)
        breakdowns[f"{period} | {model}"] = {
            "grade": _breakdown(part, "grade", list("ABCD")),
            "label": _breakdown(part, "label", ["sales_qualified", "nurture", "disqualified"]),
            "band": _breakdown(part, "band", sorted(part["band"].unique(),
                                                    key=lambda b: float(b.split("%")[0]))),
            **({"cell": _breakdown(part.assign(cell=part["fit_grade"].astype(str)
                                               + part["engagement_level"].astype(str)),
                                   "cell", [f"{g}{e}" for g in "ABCD" for e in "1234"])}
               if "fit_grade" in part and part["fit_grade"].notna().any() else {}),
        }
    windows = []
    for model, periods in sums.items():
        ref = (references or {}).get(model) or Reference()
        pooled = _Sums()
        for k, (period, s) in enumerate(reversed(periods), start=1):
            pooled = pooled + s
            windows.append(_window(pooled, ref, model=model, period=period, since=period,
                                   periods=k, by=by))
    alerts = alerts_of(rows, windows, thresholds)
    return Monitoring(pd.DataFrame(rows), breakdowns, alerts, by)
