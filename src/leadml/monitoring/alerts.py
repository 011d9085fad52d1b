"""When monitoring raises an alert: a difference chance alone would rarely give (the tests
and the false-alarm budget of :mod:`~leadml.monitoring.significance`) and large enough to
act on (the thresholds). Alerts come from each period and from pooled windows (the newest
periods together), so a change that no single small night shows is still found."""

from __future__ import annotations

from dataclasses import dataclass

from leadml.errors import ConfigError
from leadml.monitoring.outcomes import period_words
from leadml.monitoring.significance import per_test_level, significant


@dataclass(frozen=True)
class Thresholds:
    """When ``leadml monitor`` alerts (exit 7). Every alert needs its test to pass at the
    run's false-alarm level (``alpha``: the chance that a monitor run with no change
    raises any alert at all) and a difference at least this large:

    - ``max_gap``: realised and predicted rates apart by this much (or by half the
      predicted rate, whichever is smaller), judged on at least ``min_matured`` matured
      leads (one period, or the newest periods pooled);
    - ``max_ece``: a calibration error this high on a period's matured leads;
    - ``max_psi``: probabilities or a field distributed this differently (PSI) from the
      leads the model was tested on;
    - ``max_unseen``: this share of a column's values never seen in training."""

    min_matured: int = 200
    max_gap: float = 0.03
    max_ece: float = 0.10
    max_psi: float = 0.10
    max_unseen: float = 0.05
    alpha: float = 0.01

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.min_matured < 1:
            raise ConfigError(f"--min-matured must be at least 1, got {self.min_matured}")


def gap_floor(predicted: float, th: Thresholds) -> float:
    """The smallest rate gap worth an alert: ``max_gap``, or half the predicted rate for a
    funnel whose rates are a few percent (a rate doubled or halved always counts).

    >>> gap_floor(0.02, Thresholds())
    0.01
    """
    return min(th.max_gap, predicted / 2)


def _rate_judged(g: dict, th: Thresholds) -> bool:
    return g["matured"] >= th.min_matured and g.get("rate_p") is not None


def _count_tests(groups: list[dict], th: Thresholds) -> dict[str, int]:
    tests = {"rate": 0, "calibration": 0, "score_drift": 0, "input_drift": 0, "unseen": 0}
    for g in groups:
        tests["rate"] += _rate_judged(g, th)
        tests["calibration"] += g.get("calibration_p") is not None and \
            g["matured"] >= th.min_matured
        tests["score_drift"] += g.get("score_p") is not None
        tests["input_drift"] += len(g.get("input_p") or {})
        tests["unseen"] += len(g.get("unseen_p") or {})
    return tests


def alerts_of(rows: list[dict], windows: list[dict], th: Thresholds) -> list[dict]:
    """The alerts of every period (``rows``) and pooled window (``windows``: the newest
    periods of a model together, ``since`` naming the first), in that order. Sets each
    row's ``calibration_alert`` and ``ece_alert``."""
    # A model's newest period alone is one of the windows a change may have begun at,
    # but it was tested as a period already: it is not counted, or alerted, twice.
    level = per_test_level(th.alpha, _count_tests(
        [*rows, *(w for w in windows if w["periods"] > 1)], th))
    out = []
    for row in rows:
        out += _alerts(row, f"{period_words(row['period'])} ({row['model']})", level, th)
        row["calibration_alert"] = any(a["kind"] == "calibration" and a["period"] ==
                                       row["period"] for a in out)
        row["ece_alert"] = any(a["kind"] == "ece" and a["period"] == row["period"]
                               for a in out)
    for window in windows:
        where = (f"the {window['periods']} newest {window['by']}s since {window['since']} "
                 f"pooled ({window['model']})")
        found = _alerts(window, where, level, th)
        out += [{**a, "since": window["since"], "pooled_periods": window["periods"]}
                for a in found]
    return _strongest_window(out)


def _strongest_window(alerts: list[dict]) -> list[dict]:
    """Of the pooled windows that alert on one thing, the one chance explains least: it
    names when the change began (none when that is the newest period alone, whose own
    alert says so)."""
    best: dict[tuple, dict] = {}
    plain = []
    for a in alerts:
        if "since" not in a:
            plain.append(a)
            continue
        key = (a["model"], a["kind"], a.get("field"))
        if key not in best or a["p_value"] < best[key]["p_value"]:
            best[key] = a
    return plain + [a for a in best.values() if a["pooled_periods"] > 1]


def chance(p: float) -> str:
    """How likely chance alone makes a finding, in words (with the p-value).

    >>> chance(1e-52), chance(0.004)
    ('far beyond chance: p = 1e-52', 'chance alone would show it 4 times in 1,000: p = 0.004')
    """
    if p < 1e-3:
        return f"far beyond chance: p = {p:.1g}"
    return f"chance alone would show it {p * 1000:.2g} times in 1,000: p = {p:.1g}"


def _alerts(g: dict, where: str, level: dict[str, float], th: Thresholds) -> list[dict]:
    head = {"period": g["period"], "model": g["model"]}
    out = []
    if _rate_judged(g, th) and significant(g["rate_p"], level["rate"]) and \
            abs(g["realised_rate"] - g["predicted_rate"]) >= gap_floor(g["predicted_rate"], th):
        began = f"; it began around {g['since']}" if "since" in g else ""
        out.append({**head, "kind": "calibration", "p_value": g["rate_p"],
                    "message": f"{where}: {g['matured']:,} leads with a known outcome "
                    f"converted at {g['realised_rate']:.1%} (95% {g['realised_low']:.1%} to "
                    f"{g['realised_high']:.1%}) against {g['predicted_rate']:.1%} "
                    f"predicted ({chance(g['rate_p'])}){began}: the conversion "
                    "rate has moved; run leadml recalibrate"})
    if g.get("calibration_p") is not None and g["matured"] >= th.min_matured and \
            significant(g["calibration_p"], level["calibration"]) and g["ece"] >= th.max_ece:
        out.append({**head, "kind": "ece", "p_value": g["calibration_p"],
                    "message": f"{where}: the probabilities are off by {100 * g['ece']:.1f} points "
                    "on average from the share that converted, on leads with a known "
                    f"outcome (calibration error {g['ece']:.3f}, alert from {th.max_ece}; "
                    f"{chance(g['calibration_p'])})"})
    if g.get("score_p") is not None and significant(g["score_p"], level["score_drift"]) and \
            g["score_psi"] >= th.max_psi:
        out.append({**head, "kind": "score_drift", "p_value": g["score_p"],
                    "message": f"{where}: the probabilities shifted from those of the "
                    f"leads the model was tested on (drift, PSI {g['score_psi']:.2f}, alert "
                    f"from {th.max_psi}; {chance(g['score_p'])}): the leads coming "
                    "in have changed"})
    drift = g.get("input_psi") or {}
    for col, p in sorted((g.get("input_p") or {}).items(), key=lambda kv: kv[1]):
        if significant(p, level["input_drift"]) and drift[col] >= th.max_psi:
            out.append({**head, "kind": "input_drift", "field": col, "p_value": p,
                        "message": f"{where}: '{col}' takes other values, or in other "
                        "shares, than in the leads the model was tested on (drift, PSI "
                        f"{drift[col]:.2f}, alert from {th.max_psi}; {chance(p)})"})
    for warning in g.get("warnings") or []:
        out.append({**head, "kind": "empty_field", "p_value": 0.0,
                    "message": f"{where}: {warning}"})
    rates = g.get("unseen_rates") or {}
    for col, p in (g.get("unseen_p") or {}).items():
        if significant(p, level["unseen"]) and rates[col] >= th.max_unseen:
            out.append({**head, "kind": "unseen", "field": col, "p_value": p,
                        "message": f"{where}: {rates[col]:.1%} of '{col}' values were never "
                        "seen in training: a new value in the CRM? retrain to learn it"})
    return out
