"""One self-contained HTML page for sales ops: what the model is, how good it is in plain
words, whether its probabilities can be trusted, which fields matter, and tonight's leads.

Images are embedded (base64 PNG) and there are no scripts or links to fetch, so the file
opens offline, from an e-mail or a shared drive. :func:`report_data` gathers the numbers at
training time (logged to MLflow with the model); :func:`render` turns them into the page.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from leadml.data.schema import REPORTED_COLUMNS
from leadml.explain.effects import field_words as words
from leadml.explain.html import CSS, figure_bytes, figure_png, html_table, png_img, pyplot
from leadml.explain.importance import importance_figure
from leadml.rules import bant
from leadml.rules.capacity_plan import gain_figure
from leadml.training.metrics import calibration_table, wilson

#: What each chart shows, for a reader who cannot see it (the images' alt text).
RELIABILITY_ALT = (
    "Reliability chart: for leads grouped by predicted probability, the share that "
    "converted against the probability predicted; points on the dashed diagonal mean "
    "the probabilities can be taken at their word")
IMPORTANCE_ALT = (
    "Bar chart of the fields that move the probability most: how much worse the model "
    "ranks leads when each field is shuffled")
GAIN_ALT = (
    "Gain chart: the share of all conversions found when sales work the top share of "
    "leads by probability, against working leads at random")


#: A candidate's settings, in words (the machine name of any other is shown as it is).
SETTING_WORDS = {
    "C": "regularisation strength {}", "learning_rate": "learning rate {}",
    "max_iter": "at most {} trees", "max_leaf_nodes": "up to {} leaves per tree",
    "l2_regularization": "L2 penalty {}", "min_samples_leaf": "at least {} leads per leaf",
    "max_depth": "trees at most {} deep",
    "text_max_features": "up to {} words of text fields",
    "min_category_count": "values of fewer than {} leads grouped as 'other'",
}


def settings_words(settings: dict) -> str:
    """A candidate's settings as a sentence a sales manager can read.

    >>> settings_words({"learning_rate": 0.06, "max_iter": 300, "odd": 1})
    'learning rate 0.06, at most 300 trees, odd 1'
    """
    return ", ".join(SETTING_WORDS.get(k, f"{k.replace('_', ' ')} {{}}").format(
        f"{v:.3g}" if isinstance(v, float) else v) for k, v in settings.items())


def method_words(method: str) -> str:
    """How the probabilities were set, in words.

    >>> method_words("sigmoid")
    'probabilities set on newer leads with a smooth curve (sigmoid calibration)'
    """
    if method.startswith("none"):
        return "probabilities as the model gives them (no calibration needed)"
    shape = {"sigmoid": "a smooth curve", "isotonic": "a step curve"}.get(method, method)
    return f"probabilities set on newer leads with {shape} ({method} calibration)"


def day(when) -> str:
    """A time as its date (``2024-12-29``); a sequence number as it is."""
    try:
        return pd.Timestamp(str(when)).strftime("%Y-%m-%d")
    except (ValueError, TypeError):
        return str(when)


def _digest(facts: dict) -> str:
    """The history's digest as the model card says it (none for a file on a cluster)."""
    if facts.get("sha256"):
        return f"sha256 {facts['sha256'][:16]}..."
    return "read on Spark from cluster storage: no local digest"


def _spark_words(facts: dict) -> str:
    """What the Spark engine read and handed the driver (leadml.data.spark_history)."""
    read = f"- Read on Spark: {facts['spark_history_leads']:,} leads"
    if "spark_windows_on_cluster" not in facts:
        return read + ", every one handed to the training (each window within the budget)."
    cut = ", ".join(f"{k} {v:,}" for k, v in facts["spark_windows_on_cluster"].items())
    kept = ", ".join(f"{k} {v:,}" for k, v in facts["spark_kept_per_window"].items())
    return (f"{read}, cut into windows on the cluster ({cut}); trained and calibrated on "
            f"the newest of each ({kept}: `model.max_fit_leads`), tested on every lead of "
            "the test window (docs/spark.md).")


def model_card(result, cfg, facts: dict[str, Any]) -> str:
    """The model card (Markdown): data, windows, features, test metrics, use and limits;
    the registered version's description."""
    m, ci = result.test_metrics, result.intervals

    def fmt(key: str) -> str:
        lo, hi = ci.get(key, (float("nan"), float("nan")))
        return f"{m[key]:.4f} (95% CI {lo:.4f} to {hi:.4f})"

    w = result.windows
    return "\n".join([
        f"# Model card: {cfg.registry.model_name}",
        "",
        f"- Classifier: {result.kind}, calibrated with {result.calibration_method} "
        "(CalibratedClassifierCV over a FrozenEstimator), "
        + _calibration_words(result.calibration_choice),
        *([f"- Drift correction {result.drift['method']}: base rate "
           f"{result.drift['source_rate']:.4f} shifted to {result.drift['target_rate']:.4f}."]
          if result.drift.get("method", "none") != "none" else []),
        f"- Predicts {facts.get('probability_means', 'the probability that a lead converts')}"
        ".",
        f"- Data: `{facts['path']}` ({_digest(facts)}), {facts['rows']} leads, "
        f"positive rate {facts['positive_rate']:.4f}.",
        *([f"- Time order: leads are ordered by {facts['time_order']}; the newest are the "
           "last by it."] if facts.get("time_order") else []),
        *([f"- Horizon: {facts['horizon_days']:g} days at {facts['as_of']}; "
           f"{facts['unlabelled_young_leads']} leads younger than that were left out "
           "(their outcome is not known yet)."] if facts.get("horizon_days") else []),
        *([f"- {facts['open_leads']} leads still open (outcome in neither "
           "`target.positive_values` nor `target.negative_values`) were left out."]
          if facts.get("open_leads") else []),
        *(f"- {n} window: {x.rows} leads, {x.conversions} conversions, "
          f"{x.first_time} to {x.last_time}" for n, x in w.items()),
        *([f"- Fitted on the newest {result.fitted_leads:,} labelled leads "
           f"(`model.max_fit_leads`); chosen, calibrated and tested on every lead of its "
           "windows."] if result.fitted_leads == cfg.model.max_fit_leads
          and "spark_windows_on_cluster" not in facts else []),
        *([_spark_words(facts)] if "spark_history_leads" in facts else []),
        f"- Features: numeric {list(cfg.dataset.columns.numeric)}, categorical "
        f"{list(cfg.dataset.columns.categorical)}, text {list(cfg.dataset.columns.text)}.",
        f"- Excluded (never used): {list(cfg.dataset.columns.excluded)}.",
        "",
        "## Test window (newest leads, unseen until the model was final)",
        "",
        f"- ROC AUC {fmt('roc_auc')}",
        f"- PR AUC {fmt('pr_auc')}",
        f"- Log loss {fmt('log_loss')}",
        f"- Brier {fmt('brier')}",
        f"- Expected calibration error {fmt('ece')}",
        f"- Lift at top 10% {m['lift_10']:.2f}, at top 20% {m['lift_20']:.2f}",
        "",
        "## Use and limits",
        "",
        "Scores new leads from the same CRM and process as the training data. Probabilities "
        "are calibrated to the calibration window's conversion rate: if the rate drifts, "
        "retrain or recalibrate. Not for decisions about individuals beyond lead routing.",
    ])


WINDOW_WORDS = {
    "newest": "its map fitted on the calibration window",
    "own": "the classifier's own probabilities (no map)",
    "cross_fitted": "its map fitted on every labelled window, each scored by a model that "
                    "had not seen it",
    "recency_weighted": "its map fitted on every labelled window, newer ones weighing more",
}


def _calibration_words(choice: dict | None) -> str:
    if choice is None:
        return "its map fitted on the calibration window."
    table = pd.DataFrame(choice["candidates"])
    rows = ", ".join(f"{r.window}/{r.drift} {r.log_loss:.4f}" for r in table.itertuples())
    why = choice.get("reason") or ("the simplest within one standard error of the lowest "
                                   "wins")
    return (f"{WINDOW_WORDS[choice['window']]}, drift correction {choice['drift']}: chosen "
            f"by a backtest on the windows before the test window (pooled log loss of each "
            f"candidate: {rows}); {why}.")


def report_data(result, cfg, facts: dict[str, Any], *, name: str, version: str,
                importances: pd.DataFrame | None, insights: pd.DataFrame | None) -> dict:
    """Everything the page shows, as plain JSON-able values (logged with the model)."""
    w = result.windows
    return {
        "model": {"name": name, "version": version, "kind": result.kind,
                  "calibration": result.calibration_method, "drift": result.drift,
                  "calibration_choice": result.calibration_choice,
                  "leaderboard": result.leaderboard},
        "data": facts,
        "windows": {n: {"rows": x.rows, "conversions": x.conversions, "first": x.first_time,
                        "last": x.last_time} for n, x in w.items()},
        "metrics": result.test_metrics,
        "intervals": {k: list(v) for k, v in result.intervals.items()},
        "features": {"numeric": list(cfg.dataset.columns.numeric),
                     "categorical": list(cfg.dataset.columns.categorical),
                     "text": list(cfg.dataset.columns.text),
                     "excluded": list(cfg.dataset.columns.excluded)},
        "importances": [] if importances is None else importances.to_dict("records"),
        "insights": [] if insights is None else insights.to_dict("records"),
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _reliability(y: np.ndarray, p: np.ndarray) -> str:
    plt = pyplot()
    t = calibration_table(y, p, 10)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", label="predicted = converted")
    ax.plot(t["predicted"], t["observed"], "o-", c="#3b7dd8", label="this model")
    ax.set(xlabel="predicted probability", ylabel="share that converted", xlim=(0, 1),
           ylim=(0, 1), title="Do the probabilities mean what they say?")
    ax.legend(loc="upper left")
    return figure_png(fig, RELIABILITY_ALT)


def _importance_chart(rows: list[dict]) -> str:
    return figure_png(importance_figure(pd.DataFrame(rows)), IMPORTANCE_ALT)


def _plain_metrics(m: dict, ci: dict) -> str:
    auc, lift, ece = m["roc_auc"], m["lift_10"], m["ece"]
    lo, hi = ci.get("roc_auc", (np.nan, np.nan))
    cards = [
        (f"{auc:.2f}", "ROC AUC",
         f"Pick a lead that converted and one that did not: {auc:.0%} of the time the model "
         f"scores the converted one higher (0.5 is a coin toss; 95% range {lo:.2f} to "
         f"{hi:.2f})."),
        (f"{lift:.1f}x", "lift in the top 10%",
         f"The 10% of leads the model likes best converted {lift:.1f} times as often as "
         "leads on average."),
        (f"{100 * ece:.1f} pts", "calibration error",
         f"On average a predicted probability was {100 * ece:.1f} percentage points away "
         "from the share of such leads that converted."),
        (f"{m['positive_rate']:.1%}", "converted in the test window",
         f"against {m['mean_probability']:.1%} predicted on average."),
    ]
    out = '<div class="cards">' + "".join(
        f"<div class=card><b>{v}</b><span>{html.escape(t)}</span><p>{html.escape(d)}</p></div>"
        for v, t, d in cards) + "</div>"
    if ece > 0.05:
        out += ('<p class="warn">The probabilities were off by more than 5 points on the '
                "newest leads: the conversion rate has moved since the model was trained. Use "
                "the grades and the ranking with confidence; read the exact percentages as "
                "relative, and retrain soon.</p>")
    return out


def grade_table(y: np.ndarray, p: np.ndarray, cutoffs: tuple[float, ...]) -> pd.DataFrame:
    """Leads, conversion and prediction per grade, and whether the conversion is within
    what chance allows of the prediction (the 95% Wilson interval of the converted share)."""
    g = bant.grade(p, cutoffs)
    t = pd.DataFrame({"grade": g, "y": y, "p": p}).groupby("grade").agg(
        leads=("y", "size"), won=("y", "sum"), predicted=("p", "mean")).reindex(list("ABCD"))
    t = t.fillna(0).reset_index()
    t["leads"] = t["leads"].astype(int)
    t["converted"] = np.where(t["leads"] > 0, t["won"] / t["leads"].clip(lower=1), 0.0)
    bands = [wilson(k, n) for k, n in zip(t["won"], t["leads"], strict=True)]
    t["as predicted?"] = [
        "" if n == 0 else "more often than predicted" if q < lo else
        "less often than predicted" if q > hi else "yes, within chance"
        for n, q, (lo, hi) in zip(t["leads"], t["predicted"], bands, strict=True)]
    return t[["grade", "leads", "converted", "predicted", "as predicted?"]]


def outside_words(t: pd.DataFrame) -> str:
    """A sentence per grade that converted outside what chance allows of its prediction."""
    off = t[t["as predicted?"].str.endswith("than predicted")]
    return " ".join(
        f"Grade {r['grade']} leads converted {r['as predicted?'].split(' than')[0]} than "
        f"predicted ({r['converted']:.1%} against {r['predicted']:.1%}), by more than chance "
        f"explains on {r['leads']:,} leads: their probabilities are too "
        f"{'low' if r['as predicted?'].startswith('more') else 'high'}; recalibrating or "
        "retraining fixes it." for _, r in off.iterrows())


def _grades(y: np.ndarray, p: np.ndarray, cutoffs: tuple[float, ...]) -> str:
    t = grade_table(y, p, cutoffs)
    bounds = ", ".join(f"{g} from {c:.1%}" for g, c in zip("ABC", cutoffs, strict=True))
    said = outside_words(t)
    return (f"<p>Grade cut-offs (from the BANT rules file): {bounds}, D below.</p>"
            + html_table(t, {"leads": "{:,}", "converted": "{:.1%}", "predicted": "{:.1%}"})
            + (f'<p class="warn">{html.escape(said)}</p>' if said else
               "<p>Every grade converted as predicted, within what chance allows.</p>"))


def _insights(rows: list[dict], fields: list[str]) -> str:
    if not rows:
        return "<p>No field insights were recorded for this model.</p>"
    t = pd.DataFrame(rows)
    parts = []
    for i, field in enumerate(fields):
        sub = t[t["field"] == field][["value", "leads", "conversion_rate", "lift"]]
        if len(sub):  # the three most important fields open, the rest one click away
            sub = sub.rename(columns=lambda c: c.replace("_", " "))
            parts.append(f"<details{' open' if i < 3 else ''}><summary>{html.escape(words(field))}"
                         "</summary>"
                         + html_table(sub, {"leads": "{:,}", "conversion rate": "{:.1%}",
                                        "lift": "{:.2f}x"}) + "</details>")
    return "".join(parts)


def _gain(y: np.ndarray, p: np.ndarray, capacities: list[float]) -> str:
    return figure_png(gain_figure(y, p, capacities), GAIN_ALT)


IMPORTANCE_WORDS = (
    "How much worse the model ranks the newest leads when one field's values are shuffled "
    "between leads, so that the field tells it nothing. A drop of 0.05 means the chance of "
    "ranking a lead that converted above one that did not falls by 5 points without the "
    "field; the range is the lowest and highest drop over repeated shuffles, and a field "
    "near zero adds little.")


def importance_png(rows: list[dict]) -> bytes:
    """The importance chart as PNG, the fields in words: logged with the run and embedded
    in the report, drawn once."""
    return figure_bytes(importance_figure(
        pd.DataFrame(rows).assign(field=lambda f: f["field"].map(words))))


def _importances(rows: list[dict], png: bytes | None = None) -> str:
    t = pd.DataFrame(rows).assign(field=lambda f: f["field"].map(words))
    table = pd.DataFrame({"rank": t["rank"], "field": t["field"],
                          "drop in ranking quality": t["importance"],
                          "range": [f"{lo:.3f} to {hi:.3f}" for lo, hi in
                                    zip(t["low"], t["high"], strict=True)]}) \
        if {"low", "high"} <= set(t) else t[["rank", "field", "importance"]]
    chart = png_img(png, IMPORTANCE_ALT) if png is not None else \
        _importance_chart(t.to_dict("records"))
    return (f"<p>{html.escape(IMPORTANCE_WORDS)}</p>" + chart
            + html_table(table, {"drop in ranking quality": "{:.3f}",
                                 "importance": "{:.3f}"}))


def _leaderboard(rows: list[dict]) -> str:
    t = pd.DataFrame([{
        "rank": r["rank"], "candidate": r["name"].replace("_", " "),
        "ranking on the newer leads (ROC AUC)": r["calibration_window_roc_auc"],
        "settings": settings_words(r["settings"]),
        "seconds": r["seconds"], "chosen": "chosen" if r["chosen"] else ""} for r in rows])
    return ("<p>Each candidate was fitted on the older leads and ranked on the leads just "
            "after them (the calibration window): ranking quality (ROC AUC) is how often a "
            "lead that converted scored above one that did not, 0.5 a coin toss, 1.0 perfect. "
            "The best had its probabilities set and was tested; the test window played no "
            "part in the choice.</p>"
            + html_table(t, {"ranking on the newer leads (ROC AUC)": "{:.4f}",
                         "seconds": "{:.1f}"}))


def _labels(meanings: dict[str, str]) -> str:
    return ("<p>What each label means, from the BANT rules file:</p><ul>"
            + "".join(f"<li><b>{html.escape(k.replace('_', ' '))}</b>: {html.escape(v)}</li>"
                      for k, v in meanings.items()) + "</ul>")


def render(data: dict, y_test: np.ndarray, p_test: np.ndarray, *,
           cutoffs: tuple[float, ...], scored: pd.DataFrame | None = None,
           scored_name: str = "", capacities: list[float] | None = None,
           meanings: dict[str, str] | None = None, charts: dict[str, bytes] | None = None,
           typical: float | None = None, matrix: pd.DataFrame | None = None,
           matrix_note: str = "") -> str:
    """The report page as one HTML string. ``meanings``: what each label means under the
    rules (:func:`leadml.rules.bant.meanings`). ``charts``: PNGs already drawn
    (``reliability``, ``importance``: a training draws each once, logs it and embeds it);
    the others are drawn here."""
    charts = charts or {}
    m, d, w = data["model"], data["data"], data["windows"]
    esc = html.escape
    order = [r["field"] for r in data["importances"]] or [
        *data["features"]["numeric"], *data["features"]["categorical"],
        *data["features"]["text"]]
    body = [
        f"<h1>Lead scoring model: {esc(m['name'])} version {esc(str(m['version']))}</h1>",
        f'<p class="sub">{esc(m["kind"].replace("_", " "))}, '
        f"{esc(method_words(m['calibration']))}; report made {esc(data['created'])}</p>",
        f"<p>It predicts {esc(d.get('probability_means', 'the probability that a lead converts'))}"
        + (f"; {d['unlabelled_young_leads']:,} leads younger than {d['horizon_days']:g} days "
           "were left out, their outcome not known yet" if d.get("horizon_days") else "")
        + (f"; {d['open_leads']:,} leads still open were left out" if d.get("open_leads")
           else "")
        + ".</p>",
        "<h2>What it learned from</h2>",
        f"<p>{d['rows']:,} past leads from <code>{esc(str(d['path']))}</code>, created "
        f"{esc(day(d['first_time']))} to {esc(day(d['last_time']))}, of which "
        f"{d['conversions']:,} ({d['positive_rate']:.1%}) converted. The oldest "
        f"{w['train']['rows']:,} taught the model; the next {w['calibration']['rows']:,} (the "
        "calibration window) set how its scores turn into probabilities; the newest "
        f"{w['test']['rows']:,} (the test window, from {esc(day(w['test']['first']))}) were "
        "kept aside to test it, as if they were tonight's leads"
        + (f" (oldest and newest by {esc(d['time_order'])})" if d.get("time_order") else "")
        + ".</p>",
        f"<p>Fields used: {esc(', '.join(map(words, order)))}. Never used: "
        f"{esc(', '.join(map(words, data['features']['excluded'])) or 'none')}.</p>",
        *(["<h2>How the model was chosen</h2>", _leaderboard(m["leaderboard"])]
          if m.get("leaderboard") else []),
        "<h2>How good is it, in plain words</h2>",
        _plain_metrics(data["metrics"], data["intervals"]),
        "<h2>Can the probabilities be trusted?</h2>",
        "<p>Each dot groups leads with similar predictions: if it sits on the dashed line, "
        "those leads converted as often as predicted.</p>",
        png_img(charts["reliability"], RELIABILITY_ALT) if "reliability" in charts
        else _reliability(y_test, p_test),
        "<h2>Conversion per grade (test window)</h2>", _grades(y_test, p_test, cutoffs),
        *([_labels(meanings)] if meanings else []),
        *(["<h2>Fit and engagement (test window)</h2>", matrix_section(matrix, matrix_note)]
          if matrix is not None or matrix_note else []),
        "<h2>Working the best leads first</h2>",
        "<p>If sales work the leads the model likes best first, how many of the conversions "
        "do they reach? Read across from the share of leads the team can work (its "
        "capacity" + (", the red line, from the rules file" if capacities else "") + ") to "
        "the share of all conversions among them. Your data team's capacity plan gives the "
        "exact numbers, and the lines of the rules file that set a capacity.</p>",
        _gain(y_test, p_test, capacities or []),
        "<h2>Which fields matter</h2>",
    ]
    if data["importances"]:
        body += [_importances(data["importances"], charts.get("importance"))]
    body += ["<h2>How each field's values convert</h2>",
             "<p>Conversion rate per value over all past leads; lift is the rate over the "
             "overall rate (above 1x: converts more often than average).</p>",
             _insights(data["insights"], order)]
    if scored is not None:
        body += _tonight(scored, scored_name, typical)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>leadml report: "
            f"{esc(m['name'])} v{esc(str(m['version']))}</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>")


def matrix_section(table: pd.DataFrame | None, note: str = "") -> str:
    """The fit x engagement matrix of the test window (:func:`leadml.rules.axes.matrix`):
    per cell the share that converted, the share predicted and the leads, shaded by the
    conversion; then in words which cells convert."""
    if table is None:
        return f"<p>{html.escape(note)}</p>" if note else ""
    top = max(float(table["converted"].max(skipna=True) or 0), 1e-9)
    cells = {(r.fit, r.engagement): r for r in table.itertuples()}
    rows = []
    for g in "ABCD":
        tds = []
        for e in "1234":
            r = cells[(g, e)]
            if r.leads == 0:
                tds.append('<td class="n">no leads</td>')
                continue
            shade = int(255 - 120 * (r.converted / top))
            tds.append(f'<td class="n" style="background:rgb({shade},{255},{shade})">'
                       f"<b>{r.converted:.1%}</b> converted<br>{r.predicted:.1%} predicted"
                       f"<br>{r.leads:,} leads</td>")
        rows.append(f"<tr><th>fit {g}</th>{''.join(tds)}</tr>")
    head = "".join(f"<th>engagement {e}</th>" for e in "1234")
    filled = table[table["leads"] >= 20].sort_values("converted", ascending=False)
    words = []
    if len(filled):
        best, worst = filled.iloc[0], filled.iloc[-1]
        words.append(f"{best.fit}{best.engagement} leads converted most ({best.converted:.1%} "
                     f"of {best.leads:,}), {worst.fit}{worst.engagement} least "
                     f"({worst.converted:.1%} of {worst.leads:,}).")
    for cell, meaning in (("A4", "fit the profile but have not acted: nurture them with "
                                 "content"),
                          ("D1", "act but fall outside the profile: self-service, or "
                                 "disqualify")):
        r = cells[(cell[0], cell[1])]
        if r.leads:
            words.append(f"{cell} leads {meaning} ({r.converted:.1%} converted of "
                         f"{r.leads:,}).")
    return ("<p>Fit (A to D) is who the lead is, the fields of the ideal customer profile; "
            "engagement (1 to 4) is what it did. Each cell holds the newest test leads with "
            "that fit grade and engagement level, graded as tonight's leads are.</p>"
            f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"
            f"<p>{html.escape(' '.join(words))}</p>")


def _tonight(scored: pd.DataFrame, name: str, typical: float | None = None) -> list[str]:
    per_label = scored.groupby("label").agg(
        leads=("lead_id", "size"), expected_conversion_rate=("conversion_probability", "mean"),
        expected_conversions=("conversion_probability", "sum"),
        **({"expected_value": ("expected_value", "sum")} if "expected_value" in scored
           else {})).reindex(list(bant.LABELS)).fillna(0).reset_index()
    per_label["leads"] = per_label["leads"].astype(int)
    qualified = per_label.loc[per_label["label"] == "sales_qualified", "leads"].sum()
    grades = scored["grade"].value_counts().reindex(list("ABCD"), fill_value=0)
    top = scored.sort_values("conversion_probability", ascending=False, kind="stable").head(20)
    top = top[REPORTED_COLUMNS]
    return [
        f"<h2>Tonight's leads: {len(scored):,} scored from {html.escape(name)}</h2>",
        f"<p>{qualified / max(len(scored), 1):.1%} of them are sales-qualified (the "
        "qualification rate). The expected conversions of a label are the sum of its leads' "
        "probabilities: what the model expects them to bring.</p>",
        html_table(per_label.rename(columns=lambda c: c.replace("_", " ")),
               {"leads": "{:,}", "expected conversion rate": "{:.1%}",
                "expected conversions": "{:,.1f}", "expected value": "{:,.0f}"}),
        html_table(pd.DataFrame({"grade": grades.index, "leads": grades.to_numpy()}),
               {"leads": "{:,}"}),
        "<h3>The 20 most likely to convert, and why</h3>",
        *([f"<p>A reason's points are that field's share of the distance from a typical "
           f"lead, which converts at {typical:.1%}, to this lead: the typical lead's "
           "probability plus the points of every reason (the fields named and \"Other "
           "fields\") is the lead's probability. Then come the BANT criteria it failed.</p>"]
          if typical is not None else []),
        html_table(top.rename(columns=lambda c: c.replace("_", " ")).assign(
            label=lambda f: f["label"].str.replace("_", " ")),
            {"conversion probability": "{:.1%}"}),
    ]

