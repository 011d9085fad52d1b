"""The monitoring page: one self-contained HTML file, realised against predicted over time,
and a table per period (styles and figures shared with the sales-ops report)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from leadml.explain.html import CSS, figure_png, html_table, pyplot
from leadml.monitoring.monitor import Monitoring


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
