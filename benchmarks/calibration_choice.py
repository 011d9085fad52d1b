"""Test-window calibration of the evidence-chosen calibration against plain peers, on data
whose conversion rate stays, trends, swings, and on the bank data.

    python benchmarks/calibration_choice.py

For each dataset, on the same time-ordered windows (60% train, 20% calibration, 20% test):

- leadml as configured by default (``model.calibration_window: auto``, ``drift.method:
  auto``: the calibration window and drift correction chosen by a backtest on the windows
  before the test window, leadml.training.calibration);
- leadml as it calibrated before (the calibration window alone, no drift correction);
- a constant at the labelled rate (train + calibration windows);
- plain logistic regression and gradient boosting (leadml's own encoding) fitted on every
  labelled lead, uncalibrated.

Datasets: the sample (``leadml sample``: 20,000 leads, a slow upward drift); ``trend``
(a strong upward drift, base log-odds +1.5); ``swing`` (no trend, the base log-odds swinging
by +-1.0 over 2.5 cycles, so the rate moves between about 5% and 25%); ``falling`` (a
strong downward drift, base log-odds -1.5, as a funnel whose lead quality falls); and
``../shared/data/bank-marketing/bank-full.csv`` when present (its config, ``duration``
excluded). Results: ``benchmarks/results/calibration_choice.{md,json}``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from _common import REPO, write_results

SCENARIOS = {
    "sample": {"seed": 42},
    "trend": {"seed": 4, "drift": 1.5},
    "swing": {"seed": 3, "drift": 0.0, "swing": 1.0, "swings": 2.5},
    "falling": {"seed": 6, "drift": -1.5},
}


def _configs(tmp: Path):
    from leadml.setup.synthetic import make_leads

    for name, kwargs in SCENARIOS.items():
        leads = make_leads(20_000, **kwargs)
        leads.to_csv(tmp / f"{name}.csv", index=False)
        raw = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
        raw["dataset"]["path"] = str(tmp / f"{name}.csv")
        yield name, raw
    bank = REPO.parent / "shared/data/bank-marketing/bank-full.csv"
    if bank.exists():
        raw = yaml.safe_load((REPO / "pipelines/configs/bank_full.yaml").read_text())
        raw["dataset"]["path"] = str(bank)
        yield "bank", raw


def _load(raw: dict, tmp: Path, **overrides):
    from leadml.config import load_config

    raw = {**raw, **{k: {**raw.get(k, {}), **v} for k, v in overrides.items()}}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def evaluate(name: str, raw: dict, tmp: Path) -> list[dict]:
    from leadml.jobs import audited_history
    from leadml.model.pipeline import build_pipeline
    from leadml.training.fit import train
    from leadml.training.metrics import metrics

    auto = _load(raw, tmp, model={"calibration_window": "auto"}, drift={"method": "auto"})
    _, history = audited_history(auto)
    rows = []
    for label, cfg in (
        ("leadml (calibration chosen by backtest)", auto),
        ("leadml before (calibration window, no drift)",
         _load(raw, tmp, model={"calibration_window": "newest"}, drift={"method": "none"})),
    ):
        start = time.perf_counter()
        result = train(history, cfg)
        seconds = time.perf_counter() - start
        choice = result.calibration_choice or {}
        rows.append({"dataset": name, "model": label, **result.test_metrics,
                     "chosen": f"{choice.get('window', 'newest')}, drift "
                               f"{result.drift.get('method', 'none')}",
                     "train_seconds": round(seconds, 1)})
    w = result.windows
    labelled = slice(0, w["test"].start)
    X, y = history.features, history.target
    X_test, y_test = X.iloc[w["test"].rows_slice], y[w["test"].rows_slice]
    rate = float(y[labelled].mean())
    rows.append({"dataset": name, "model": "constant at the labelled rate",
                 **metrics(y_test, np.full(len(y_test), rate))})
    for kind in ("logistic_regression", "gradient_boosting"):
        pipe = build_pipeline(kind, auto.dataset.columns, auto.model,
                              missing_values=auto.dataset.missing_values)
        pipe.fit(X.iloc[labelled], y[labelled])
        rows.append({"dataset": name, "model": f"plain {kind.replace('_', ' ')}, all labelled "
                                              "leads, uncalibrated",
                     **metrics(y_test, pipe.predict_proba(X_test)[:, 1])})
    return rows


def verdict(frame: pd.DataFrame) -> list[str]:
    out = []
    for name, rows in frame.groupby("dataset", sort=False):
        ours = rows.iloc[0]
        const = rows[rows.model.str.startswith("constant")].iloc[0]
        lr = rows[rows.model.str.startswith("plain logistic")].iloc[0]
        best_auc = rows[rows.model.str.startswith("plain")]["roc_auc"].max()
        checks = [
            f"Brier {ours.brier:.4f} below constant {const.brier:.4f}: "
            f"{'met' if ours.brier < const.brier else 'missed'}",
            f"within 0.001 of plain LR {lr.brier:.4f}: "
            f"{'met' if ours.brier <= lr.brier + 0.001 else 'missed'}",
            f"ROC AUC {ours.roc_auc:.4f} within 0.005 of the best plain peer {best_auc:.4f}: "
            f"{'met' if ours.roc_auc >= best_auc - 0.005 else 'missed'}",
        ]
        if name == "bank":
            checks.append(f"ECE {ours.ece:.4f} at most 0.10: "
                          f"{'met' if ours.ece <= 0.10 else 'missed'}")
        out.append(f"- **{name}**: " + "; ".join(checks))
    return out


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = [r for name, raw in _configs(tmp) for r in evaluate(name, raw, tmp)]
    frame = pd.DataFrame(rows)
    cols = ["dataset", "model", "chosen", "roc_auc", "brier", "log_loss", "ece",
            "positive_rate", "mean_probability", "train_seconds"]
    table = frame[cols].fillna("").to_markdown(index=False, floatfmt=".4f")
    write_results("calibration_choice", {"rows": frame.to_dict("records")},
                  table + "\n\nThe bars of issue 36 (test window; Brier within 0.001 of plain "
                  "logistic regression, issue 12 asked for below it):\n\n" +
                  "\n".join(verdict(frame)) + "\n")


if __name__ == "__main__":
    main()
