"""When monitoring raises an alert: the thresholds, and the alerts of one period's numbers."""

from __future__ import annotations

from dataclasses import dataclass


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


def alerts_of(row: dict, th: Thresholds) -> list[dict]:
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
