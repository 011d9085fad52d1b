"""The monitoring page: one self-contained HTML file, realised against predicted over time,
and a table per period (styles and figures shared with the sales-ops report)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from leadml.explain.html import CSS, figure_png, html_table, pyplot
from leadml.monitoring.monitor import Monitoring
from leadml.monitoring.outcomes import period_words


def _ticks(ax, x: np.ndarray, periods: pd.Series) -> None:
    """Whole period labels under a chart, at most 12 of them (every k-th)."""
    step = max(1, -(-len(x) // 12))
    ax.set_xticks(x[::step], [period_words(p) for p in periods.iloc[::step]], rotation=45,
                  ha="right", fontsize=7)


def _over_time(mon: Monitoring) -> str:
    from matplotlib.ticker import PercentFormatter

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
    ax.set(title="Realised against predicted conversion", xlabel=mon.by,
           ylabel="conversion rate")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _ticks(ax, x, t["period"])
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
    ax.set(title="Per grade (dotted: predicted)", xlabel=mon.by, ylabel="conversion rate")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _ticks(ax, x, t["period"])
    ax.legend(fontsize=7, ncol=2)
    return figure_png(fig, alt="Two charts over time: on the left the share of leads that "
                      "converted against the share the model predicted, with the 95% band of "
                      "the realised share; on the right the same per grade A to D")


def off_grades(mon: Monitoring, most: int = 8) -> list[str]:
    """A sentence per period and grade (and fit x engagement cell, when the rules name the
    axes) whose leads converted outside the 95% interval of their predicted rate, newest
    first (at most ``most``)."""
    said = []
    for key in reversed(list(mon.breakdowns)):
        for part, name in (("grade", "grade {} leads"),
                           ("cell", "{} leads (fit and engagement)")):
            for r in mon.breakdowns[key].get(part, []):
                lo, hi = r.get("realised_low"), r.get("realised_high")
                q = r.get("predicted_rate")
                if not r.get("matured") or q is None or lo is None or not (q < lo or q > hi):
                    continue
                way = "more" if q < lo else "less"
                said.append(f"{period_words(key.split(' | ')[0])}: "
                            f"{name.format(r[part])} converted {way} often than predicted "
                            f"({r['realised_rate']:.1%} of {r['matured']:,} with a known "
                            f"outcome, against {q:.1%}; chance allows {lo:.1%} to {hi:.1%}).")
    return said[:most]


#: Every term of the page a sales manager may not know, in one sentence each.
GLOSSARY = [
    ("outcome known (matured)", "a lead whose outcome can be known: scored long enough ago "
     "that it would have converted by now if it was going to."),
    ("realised", "the share of leads with a known outcome that converted."),
    ("predicted", "the share the model expected to convert, the average of their "
                  "probabilities; realised and predicted should agree."),
    ("95% interval", "the range the realised share would fall in 95 times in 100 by chance "
                     "alone, given how few leads it counts."),
    ("calibration error", "the average gap, in probability bands, between the predicted and "
                          "realised share: 0.02 means predictions off by about 2 points."),
    ("ranking (ROC AUC)", "how often a lead that converted had a higher probability than one "
                          "that did not: 0.5 is a coin toss, 1.0 is perfect."),
    ("sales-qualified vs nurture", "how many times more often sales-qualified leads "
                                   "converted than nurture leads."),
    ("expected, not known yet", "the conversions the model expects among the leads whose "
                                "outcome is not known yet: an estimate, not a result."),
    ("drift (PSI)", "how much the probabilities or a field's values moved away from those "
                    "of the leads the model was tested on; above 0.10 is worth a look."),
]


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
        columns={"matured": "outcome known", "realised_rate": "realised",
                 "interval": "95% interval", "predicted_rate": "predicted",
                 "ece": "calibration error", "roc_auc": "ranking (ROC AUC)",
                 "qualification_rate": "sales-qualified",
                 "sql_over_nurture": "sales-qualified vs nurture",
                 "estimated_conversions_unmatured": "expected, not known yet"})
    shown["period"] = t["period"].map(period_words)
    known = int(t["matured"].sum())
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">{esc(note)}</p>',
        "<h2>Alerts</h2>",
        f'<ul class="warn">{alerts}</ul>' if alerts else "<p>No threshold was crossed.</p>",
        "<h2>Did the leads convert as predicted?</h2>",
        "<p>Only leads whose outcome is known count as realised. The band is "
        "the 95% interval of the realised rate; a predicted line outside it, by more than "
        "the alert gap, is an alert. The last column is an <b>estimate</b>, not a result: "
        "the conversions the model expects among leads whose outcome is not known yet.</p>",
        _over_time(mon) if known else
        f"<p><b>Not enough outcomes yet</b>: none of the {int(t['scored'].sum()):,} scored "
        "leads is old enough for its outcome to be known, so there is nothing to compare "
        "the predictions with. The charts appear once leads mature; until then the last "
        "column says how many conversions the model expects.</p>",
        html_table(shown, {
            "scored": "{:,}", "outcome known": "{:,}", "realised": pct, "predicted": pct,
            "calibration error": "{:.3f}", "ranking (ROC AUC)": "{:.3f}",
            "sales-qualified": pct, "sales-qualified vs nurture": "{:.1f}x",
            "expected, not known yet": "{:,.1f}"}),
        "<h3>What the columns mean</h3><dl>" + "".join(
            f"<dt>{esc(term)}</dt><dd>{esc(text)}</dd>" for term, text in GLOSSARY) + "</dl>",
        "<h2>Per grade, label and score band</h2>",
        ('<ul class="warn">' + "".join(f"<li>{esc(x)}</li>" for x in off_grades(mon))
         + "</ul>") if off_grades(mon) else
        "<p>Each grade converted as predicted, within what chance allows.</p>",
    ]
    for key, parts in mon.breakdowns.items():
        period, _, model = key.partition(" | ")
        body.append(f"<details><summary>{esc(period_words(period))} | {esc(model)}</summary>")
        for rows in parts.values():
            if rows:
                body.append(html_table(pd.DataFrame(rows).rename(
                    columns=lambda c: c.replace("_", " ")),
                    {"matured": "{:,}", "realised rate": pct, "realised low": pct,
                     "realised high": pct, "predicted rate": pct}))
        body.append("</details>")
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{esc(title)}"
            f"</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>")
