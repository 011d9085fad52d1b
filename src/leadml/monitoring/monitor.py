"""How the leads a model scored actually converted, run by run, as their outcomes mature.

Input: the files ``leadml score`` wrote (each with its manifest: model, rules, time) and an
outcomes table (lead id, and the conversion time or a converted flag). A lead is **matured**
once its outcome can be known: ``horizon_days`` after it was scored when the probability
has a horizon ("converts within 60 days"), else once the outcomes table lists it. Only
matured leads count as realised; for the rest, the sum of their probabilities is shown as an
**estimate**, labelled so (as NannyML estimates performance before labels arrive).

Per scoring run (or week) and model version: leads scored and matured, realised against
predicted conversion (with a 95% Wilson interval), calibration in the large, calibration
error and ROC AUC on matured leads, per grade, label and score band; the qualification
rate and how much better sales-qualified leads convert than nurture ones; score drift
(PSI against the model's reference probabilities) and unseen-category rates. Alerts are
raised when a configured threshold is crossed. Pure computation; the job is
:func:`leadml.jobs.monitor`, the page :func:`render`.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadml.data.values import is_missing, parse_numbers
from leadml.explain.html import CSS, figure_png, html_table, pyplot
from leadml.training.metrics import expected_calibration_error

Z95 = 1.959964


@dataclass(frozen=True)
class Thresholds:
    """When ``leadml monitor`` alerts (exit 7): a group of at least ``min_matured`` leads
    whose predicted rate lies outside the realised rate's 95% interval and differs from it
    by at least ``max_gap``, or whose calibration error reaches ``max_ece``; a score PSI of
    at least ``max_psi``; a column with at least ``max_unseen`` of its values unseen."""

    min_matured: int = 200
    max_gap: float = 0.03
    max_ece: float = 0.10
    max_psi: float = 0.25
    max_unseen: float = 0.05


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a rate of ``k`` in ``n``.

    >>> [round(x, 3) for x in wilson(30, 100)]
    [0.219, 0.396]
    """
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two distributions over the same bins.

    >>> round(psi(np.array([.5, .5]), np.array([.5, .5])), 6)
    0.0
    """
    e = np.clip(np.asarray(expected, float), 1e-4, None)
    a = np.clip(np.asarray(actual, float), 1e-4, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def score_psi(p: np.ndarray, reference_quantiles, bins: int = 10) -> float | None:
    """PSI of probabilities against the model's reference probabilities, over the
    ``bins`` equal-mass bins of the reference (its deciles, the usual PSI).

    ``reference_quantiles``: evenly spaced quantiles (0 to 1) of the reference."""
    q = np.asarray(reference_quantiles, float)
    if len(q) < bins + 1 or len(p) == 0:
        return None
    levels = np.linspace(0, 1, len(q))
    edges = np.interp(np.linspace(0, 1, bins + 1), levels, q)[1:-1]
    if len(np.unique(edges)) < len(edges):  # many tied probabilities: too coarse to bin
        return None
    counts = np.bincount(np.searchsorted(edges, p, side="right"), minlength=bins)
    return psi(np.full(bins, 1 / bins), counts / counts.sum())


MISSING = "(missing)"
OTHER = "(other)"


def field_reference(X: pd.DataFrame, numeric, categorical, missing_values, *, top: int = 20
                    ) -> dict:
    """What each field looked like in the newest leads a model was tested on, stored with
    the model for input drift: numbers by their deciles (edges and shares, missing apart),
    categories by the ``top`` commonest values' shares (the rest as one)."""

    out: dict = {}
    for col in numeric:
        x = parse_numbers(X[col], tuple(missing_values))[0].to_numpy(float)
        known = x[np.isfinite(x)]
        if len(known) < 20:
            continue
        edges = np.unique(np.quantile(known, np.linspace(0, 1, 11))[1:-1]).tolist()
        out[col] = {"kind": "numeric", "edges": edges,
                    "shares": _numeric_shares(x, edges).tolist()}
    for col in categorical:
        values = X[col].astype(object).where(~is_missing(X[col], tuple(missing_values)),
                                             MISSING).astype(str).str.strip()
        shares = values.value_counts(normalize=True)
        kept = shares.head(top)
        out[col] = {"kind": "categorical", "values": kept.index.tolist(),
                    "shares": [*kept.round(6).tolist(), round(float(1 - kept.sum()), 6)]}
    return out


def reference_missing_share(reference: dict) -> float:
    """The share of the model's newest training leads missing a field, from its
    :func:`field_reference` (a category below the commonest kept: at most the least
    common kept share).

    >>> reference_missing_share({"kind": "numeric", "edges": [1.0], "shares": [0.5, 0.3, 0.2]})
    0.2
    >>> reference_missing_share({"kind": "categorical", "values": ["a", "(missing)"],
    ...                          "shares": [0.9, 0.1, 0.0]})
    0.1
    """
    shares = reference["shares"]
    if reference["kind"] == "numeric":
        return float(shares[-1])
    values = reference["values"]
    if MISSING in values:
        return float(shares[values.index(MISSING)])
    return float(min(shares[:len(values)], default=0.0)) if shares[-1] > 0 else 0.0


def _numeric_shares(x: np.ndarray, edges) -> np.ndarray:
    known = np.isfinite(x)
    counts = np.bincount(np.searchsorted(np.asarray(edges), x[known], side="right"),
                         minlength=len(edges) + 1).astype(float)
    return np.append(counts, (~known).sum()) / max(len(x), 1)


def field_psi(X: pd.DataFrame, reference: dict, missing_values, *, decimal: str = ".",
              thousands: str | None = None) -> dict[str, float]:
    """PSI of each field of ``X`` (leads as read; numbers with the ``decimal`` and
    ``thousands`` marks) against the model's reference."""

    out = {}
    for col, ref in reference.items():
        if col not in X.columns or len(X) == 0:
            continue
        if ref["kind"] == "numeric":
            x = parse_numbers(X[col], tuple(missing_values), decimal=decimal,
                              thousands=thousands)[0].to_numpy(float)
            actual = _numeric_shares(x, ref["edges"])
        else:
            values = X[col].astype(object).where(~is_missing(X[col], tuple(missing_values)),
                                                 MISSING).astype(str).str.strip()
            shares = values.value_counts(normalize=True)
            kept = [float(shares.get(v, 0.0)) for v in ref["values"]]
            actual = np.array([*kept, max(0.0, 1 - sum(kept))])
        out[col] = round(psi(np.asarray(ref["shares"], float), actual), 6)
    return out


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


def _group(frame: pd.DataFrame, th: Thresholds) -> dict:
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
    row["calibration_alert"] = bool(n >= th.min_matured and not lo <= predicted <= hi
                                    and abs(realised - predicted) >= th.max_gap)
    row["ece_alert"] = bool(n >= th.min_matured and row["ece"] >= th.max_ece)
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


def summarize(frame: pd.DataFrame, runs: pd.DataFrame, *, by: str = "run",
              thresholds: Thresholds = Thresholds(), references: dict | None = None,
              bands: int = 10) -> Monitoring:
    """Numbers per period (a scoring run, or the week it ran in) and model version.

    ``frame``: one row per scored lead (``run``, ``scored_at``, ``model``,
    ``conversion_probability``, ``grade``, ``label``, ``matured``, ``converted``).
    ``runs``: one row per scoring run (``run``, ``unseen`` column->count, ``scored``,
    ``warnings``: the run's own, such as a field its export left empty).
    ``references``: model -> its reference probability quantiles (for score drift)."""
    frame = frame.copy()
    frame["period"] = frame["run"] if by == "run" else \
        frame["scored_at"].dt.tz_convert(None).dt.to_period("W-SUN").dt.start_time.dt.strftime(
            "week of %Y-%m-%d")
    # A lead scored by several runs of one period (overlapping nightly exports) counts
    # once there, as first scored (runs come oldest first).
    frame = frame.drop_duplicates(["period", "model", "lead_id"], keep="first")
    edges = np.linspace(0, 1, bands + 1)
    frame["band"] = pd.cut(frame["conversion_probability"], edges, include_lowest=True,
                           labels=[f"{a:.0%}-{b:.0%}" for a, b in zip(edges[:-1], edges[1:],
                                                                      strict=True)]).astype(str)
    rows, breakdowns, alerts = [], {}, []
    for (period, model), part in frame.groupby(["period", "model"], sort=False):
        row = {"period": period, "model": model,
               "scored_at": part["scored_at"].min().strftime("%Y-%m-%dT%H:%M:%SZ"),
               **_group(part, thresholds)}
        labels = part["label"].value_counts()
        row["qualification_rate"] = float(labels.get("sales_qualified", 0) / len(part))
        m = part[part["matured"]]
        sql = m[m["label"] == "sales_qualified"]["converted"]
        nurture = m[m["label"] == "nurture"]["converted"]
        row["sql_conversion_rate"] = float(sql.mean()) if len(sql) else math.nan
        row["nurture_conversion_rate"] = float(nurture.mean()) if len(nurture) else math.nan
        row["sql_over_nurture"] = row["sql_conversion_rate"] / row["nurture_conversion_rate"] \
            if len(sql) and len(nurture) and row["nurture_conversion_rate"] > 0 else math.nan
        ref = (references or {}).get(model)
        row["score_psi"] = score_psi(part["conversion_probability"].to_numpy(float), ref) \
            if ref else None
        in_runs = runs[runs["run"].isin(part["run"].unique())]
        unseen: dict[str, float] = {}
        for counts in in_runs["unseen"]:
            for col, c in (counts or {}).items():
                unseen[col] = unseen.get(col, 0) + c
        total = int(in_runs["scored"].sum()) or 1
        row["unseen_rates"] = {c: v / total for c, v in unseen.items()}
        drift: dict[str, float] = {}  # the largest PSI of each field over the period's runs
        for found in in_runs.get("input_psi", pd.Series(dtype=object)):
            for col, value in (found or {}).items():
                drift[col] = max(drift.get(col, 0.0), value)
        row["input_psi"] = drift
        row["warnings"] = [w for found in in_runs.get("warnings", pd.Series(dtype=object))
                           for w in (found or [])]  # (the runs' own: fields left empty)
        rows.append(row)
        breakdowns[f"{period} | {model}"] = {
            "grade": _breakdown(part, "grade", list("ABCD")),
            "label": _breakdown(part, "label", ["sales_qualified", "nurture", "disqualified"]),
            "band": _breakdown(part, "band", sorted(part["band"].unique(),
                                                    key=lambda b: float(b.split("%")[0]))),
        }
        alerts += _alerts(row, thresholds)
    return Monitoring(pd.DataFrame(rows), breakdowns, alerts, by)


def _alerts(row: dict, th: Thresholds) -> list[dict]:
    where = f"{row['period']} ({row['model']})"
    out = []
    if row["calibration_alert"]:
        out.append({"period": row["period"], "model": row["model"], "kind": "calibration",
                    "message": f"{where}: {row['matured']:,} matured leads converted at "
                    f"{row['realised_rate']:.1%} (95% {row['realised_low']:.1%} to "
                    f"{row['realised_high']:.1%}) against {row['predicted_rate']:.1%} "
                    "predicted: the conversion rate has moved; run leadml recalibrate"})
    if row["ece_alert"]:
        out.append({"period": row["period"], "model": row["model"], "kind": "ece",
                    "message": f"{where}: calibration error {row['ece']:.3f} on matured "
                    f"leads, at or above {th.max_ece}"})
    if row["score_psi"] is not None and row["score_psi"] >= th.max_psi:
        out.append({"period": row["period"], "model": row["model"], "kind": "score_drift",
                    "message": f"{where}: the probabilities shifted (PSI "
                    f"{row['score_psi']:.2f} against the model's reference, at or above "
                    f"{th.max_psi}): the leads coming in have changed"})
    for col, value in sorted(row.get("input_psi", {}).items(), key=lambda kv: -kv[1]):
        if value >= th.max_psi:
            out.append({"period": row["period"], "model": row["model"], "kind": "input_drift",
                        "message": f"{where}: '{col}' is distributed differently from the "
                        f"leads the model was tested on (PSI {value:.2f}, at or above "
                        f"{th.max_psi})"})
    for warning in row["warnings"]:
        out.append({"period": row["period"], "model": row["model"], "kind": "empty_field",
                    "message": f"{where}: {warning}"})
    for col, rate in row["unseen_rates"].items():
        if rate >= th.max_unseen:
            out.append({"period": row["period"], "model": row["model"], "kind": "unseen",
                        "message": f"{where}: {rate:.1%} of '{col}' values were never seen "
                        "in training: a new value in the CRM? retrain to learn it"})
    return out


# --- the page ------------------------------------------------------------------------------

def _over_time(mon: Monitoring) -> str:
    plt = pyplot()
    t = mon.periods
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    x = np.arange(len(t))
    ax.fill_between(x, t["realised_low"], t["realised_high"], color="#3b7dd8", alpha=0.2,
                    label="realised, 95% interval")
    ax.plot(x, t["realised_rate"], "o-", c="#3b7dd8", label="realised (matured leads)")
    ax.plot(x, t["predicted_rate"], "s--", c="#d1495b", label="predicted")
    for i in np.flatnonzero(t["calibration_alert"].to_numpy()):
        ax.annotate("alert", (x[i], t["realised_rate"].iloc[i]), textcoords="offset points",
                    xytext=(0, 8), ha="center", color="#d1495b", fontsize=8)
    ax.set(title="Realised against predicted conversion", xlabel=mon.by, ylabel="rate")
    ax.set_xticks(x, [str(p)[:16] for p in t["period"]], rotation=45, ha="right", fontsize=7)
    ax.legend(fontsize=8)
    ax = axes[1]
    colours = {"A": "#2a9d5c", "B": "#3b7dd8", "C": "#e0a100", "D": "#888888"}
    for grade, colour in colours.items():
        realised, predicted = [], []
        for key in (f"{p} | {m}" for p, m in zip(t["period"], t["model"], strict=True)):
            rows = {r["grade"]: r for r in mon.breakdowns[key]["grade"]}
            realised.append(rows[grade]["realised_rate"] if grade in rows else np.nan)
            predicted.append(rows[grade]["predicted_rate"] if grade in rows else np.nan)
        ax.plot(x, realised, "o-", c=colour, label=f"grade {grade} realised")
        ax.plot(x, predicted, ":", c=colour)
    ax.set(title="Per grade (dotted: predicted)", xlabel=mon.by, ylabel="rate")
    ax.set_xticks(x, [str(p)[:16] for p in t["period"]], rotation=45, ha="right", fontsize=7)
    ax.legend(fontsize=7, ncol=2)
    return figure_png(fig)


def render(mon: Monitoring, *, title: str, note: str = "") -> str:
    """The monitoring page: one self-contained HTML string (images embedded)."""

    esc = html.escape
    t = mon.periods
    alerts = "".join(f"<li>{esc(a['message'])}</li>" for a in mon.alerts)
    pct = "{:.1%}"
    shown = t[["period", "model", "scored", "matured", "realised_rate"]].assign(
        interval=[f"{lo:.1%} to {hi:.1%}" if n else "" for lo, hi, n in
                  zip(t["realised_low"], t["realised_high"], t["matured"], strict=True)],
        **{c: t[c] for c in ("predicted_rate", "ece", "roc_auc", "qualification_rate",
                             "sql_over_nurture", "estimated_conversions_unmatured")}).rename(
        columns={"realised_rate": "realised", "interval": "95% interval",
                 "predicted_rate": "predicted", "ece": "calibration error",
                 "roc_auc": "ROC AUC", "qualification_rate": "qualified",
                 "sql_over_nurture": "SQL vs nurture",
                 "estimated_conversions_unmatured": "estimate, not matured"})
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">{esc(note)}</p>',
        "<h2>Alerts</h2>",
        f'<ul class="warn">{alerts}</ul>' if alerts else "<p>No threshold was crossed.</p>",
        "<h2>Did the leads convert as predicted?</h2>",
        "<p>Only matured leads count as realised (their outcome can be known). The band is "
        "the 95% interval of the realised rate; a predicted line outside it, by more than "
        "the alert gap, is an alert. The last column is an <b>estimate</b>, not a result: "
        "the conversions the model expects among leads whose outcome is not known yet.</p>",
        _over_time(mon),
        html_table(shown, {"scored": "{:,}", "matured": "{:,}", "realised": pct,
                       "predicted": pct, "calibration error": "{:.3f}", "ROC AUC": "{:.3f}",
                       "qualified": pct, "SQL vs nurture": "{:.1f}x",
                       "estimate, not matured": "{:,.1f}"}),
        "<h2>Per grade, label and score band</h2>",
    ]
    for key, parts in mon.breakdowns.items():
        body.append(f"<details><summary>{esc(key)}</summary>")
        for rows in parts.values():
            if rows:
                body.append(html_table(pd.DataFrame(rows).rename(
                    columns=lambda c: c.replace("_", " ")),
                    {"matured": "{:,}", "realised rate": pct, "realised low": pct,
                     "realised high": pct, "predicted rate": pct}))
        body.append("</details>")
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{esc(title)}"
            f"</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>")
