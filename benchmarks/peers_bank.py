"""leadml's default against the tools a data scientist would pick instead, on bank-full.

Same data (UCI bank-full without ``duration``), same time-ordered split (first 60% train,
next 20% calibration, last 20% test), same run, same machine. Nothing sees the test window
before its predictions are final. Every model may use the first 80% of leads as its own
default would:

- leadml: ``leadml train`` with pipelines/configs/bank_full.yaml, as shipped; also with the
  ``recent_rate`` drift correction, and shifted to the test window's true rate (a bound on
  what any base-rate correction could do, not a method: nobody knows tonight's rate);
- scikit-learn logistic regression (one-hot + scaling, defaults), fitted on the train window
  and Platt-calibrated on the calibration window, and fitted on both windows uncalibrated;
- LightGBM with its defaults, the same two ways;
- FLAML AutoML with the train window to fit and the calibration window to validate, with
  leadml's training wall-clock as its budget, and with 120 s (the reference run's budget).

Also written: the Brier score of a constant at the recent rate (the calibration window's,
and the newest tenth of the leads before the test window), and published figures.

    pip install -e ".[bench]"
    python benchmarks/peers_bank.py [--data ../shared/data/bank-marketing/bank-full.csv]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pipelines" / "configs" / "bank_full.yaml"
REPORTED = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_10")
PUBLISHED = [
    {"model": "Moro, Cortez & Rita 2014 (neural net, rolling window, bank-additional with "
              "22 features incl. economic indicators)", "roc_auc": 0.80},
    {"model": "open leakage-safe project (chronological split, bank-additional-full, no "
              "duration)", "roc_auc": 0.645},
]


def _frames(cfg):
    from leadml.data.audit import audit_frame
    from leadml.jobs import read_history
    from leadml.training.fit import split_windows

    raw, outcomes = read_history(cfg)
    _, history = audit_frame(raw, cfg, outcomes)
    windows = split_windows(history, cfg)
    features = list(cfg.dataset.columns.features)
    X = history.features[features].copy()
    for col in cfg.dataset.columns.numeric:
        X[col] = pd.to_numeric(X[col])
    for col in cfg.dataset.columns.categorical:
        X[col] = X[col].astype("category")
    parts = {n: (X.iloc[w.rows_slice], history.target[w.rows_slice]) for n, w in windows.items()}
    return history, parts


def _platt(model, X_cal, y_cal):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    return CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid").fit(X_cal, y_cal)


def _logistic(cfg):
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cols = cfg.dataset.columns
    return make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), list(cols.numeric)),
            (OneHotEncoder(handle_unknown="ignore"), list(cols.categorical))),
        LogisticRegression(max_iter=2000))


def _lightgbm():
    from lightgbm import LGBMClassifier

    return LGBMClassifier(verbose=-1, random_state=0)


def _flaml(budget: float, X_fit, y_fit, X_val, y_val):
    from flaml import AutoML

    automl = AutoML()
    automl.fit(X_fit, y_fit, X_val=X_val, y_val=y_val, task="classification",
               metric="roc_auc", time_budget=budget, seed=0, verbose=0)
    return automl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--flaml-reference-budget", type=float, default=120.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")

    from leadml.config import load_config
    from leadml.model.wrappers import shift_rate
    from leadml.training.fit import train
    from leadml.training.metrics import metrics
    from leadml.training.rate_shift import embodied_rate

    cfg = load_config(args.config)
    history, parts = _frames(cfg)
    (X_tr, y_tr), (X_cal, y_cal), (X_te, y_te) = parts["train"], parts["calibration"], \
        parts["test"]
    X_80, y_80 = pd.concat([X_tr, X_cal]), np.concatenate([y_tr, y_cal])
    rows = []

    def record(name: str, p: np.ndarray, seconds: float) -> None:
        m = metrics(y_te, p)
        rows.append({"model": name, **{k: round(m[k], 4) for k in REPORTED},
                     "mean_probability": round(m["mean_probability"], 4),
                     "train_seconds": round(seconds, 1)})
        print(f"{name:<58} ROC AUC {m['roc_auc']:.4f}  ECE {m['ece']:.4f}  "
              f"({seconds:.1f}s)", flush=True)

    start = time.perf_counter()
    result = train(history, cfg)  # exactly what `leadml train` fits, without the registry
    leadml_seconds = time.perf_counter() - start
    record(f"leadml default ({result.kind}, {result.calibration_method}, refit)",
           result.p_test, leadml_seconds)
    start = time.perf_counter()
    shifted = train(history, cfg.model_copy(update={"drift": cfg.drift.model_copy(
        update={"method": "recent_rate"})}))
    record("leadml with drift: recent_rate (newest 10% before the test window)",
           shifted.p_test, time.perf_counter() - start)
    truth = float(y_te.mean())
    record("leadml default shifted to the test window's true rate (oracle bound, not a "
           "method)", shift_rate(result.p_test, embodied_rate(result.p_test, truth), truth),
           leadml_seconds)

    for name, make in (("scikit-learn logistic regression", lambda: _logistic(cfg)),
                       ("LightGBM defaults", _lightgbm)):
        start = time.perf_counter()
        model = _platt(make().fit(X_tr, y_tr), X_cal, y_cal)
        record(f"{name}: train window, Platt on calibration window",
               model.predict_proba(X_te)[:, 1], time.perf_counter() - start)
        start = time.perf_counter()
        model = make().fit(X_80, y_80)
        record(f"{name}: train + calibration windows, uncalibrated",
               model.predict_proba(X_te)[:, 1], time.perf_counter() - start)

    for budget in (max(leadml_seconds, 1.0), args.flaml_reference_budget):
        start = time.perf_counter()
        automl = _flaml(budget, X_tr, y_tr, X_cal, y_cal)
        seconds = time.perf_counter() - start
        record(f"FLAML AutoML, {budget:.0f} s budget ({automl.best_estimator})",
               automl.predict_proba(X_te)[:, 1], seconds)

    from sklearn.metrics import brier_score_loss

    before = np.concatenate([y_tr, y_cal])
    newest = before[-int(round(0.1 * len(before))):]
    constants = {
        "calibration window rate": float(y_cal.mean()),
        "newest tenth before the test window": float(newest.mean()),
    }
    constant_rows = [{"constant": k, "rate": round(v, 4),
                      "brier": round(float(brier_score_loss(y_te, np.full(len(y_te), v))), 4)}
                     for k, v in constants.items()]
    best_peer = max((r for r in rows if not r["model"].startswith("leadml")),
                    key=lambda r: r["roc_auc"])
    ours = rows[0]
    checks = {
        "roc_auc_at_least_best_peer": ours["roc_auc"] >= best_peer["roc_auc"],
        "ece_at_most_0.05": ours["ece"] <= 0.05,
        "brier_below_constant_at_recent_rate": all(ours["brier"] < c["brier"]
                                                   for c in constant_rows),
    }
    table = pd.DataFrame(rows)
    summary = "\n".join([
        f"bank-full without `duration`: {len(y_tr)} / {len(y_cal)} / {len(y_te)} leads "
        f"(train / calibration / test, time order); test window rate {y_te.mean():.1%}, "
        f"train window rate {y_tr.mean():.1%}.",
        "",
        table.to_markdown(index=False),
        "",
        "Brier score of a constant prediction on the test window:",
        "",
        pd.DataFrame(constant_rows).to_markdown(index=False),
        "",
        "Published figures (other data or setups; for orientation, not comparable):",
        "",
        pd.DataFrame(PUBLISHED).to_markdown(index=False),
        "",
        f"Targets: ROC AUC >= best peer ({best_peer['model']}: {best_peer['roc_auc']}): "
        f"{'met' if checks['roc_auc_at_least_best_peer'] else 'missed'} "
        f"({ours['roc_auc']}); ECE <= 0.05: "
        f"{'met' if checks['ece_at_most_0.05'] else 'missed'} ({ours['ece']}); Brier below "
        f"every constant above: "
        f"{'met' if checks['brier_below_constant_at_recent_rate'] else 'missed'} "
        f"({ours['brier']}).",
    ])
    print("\n" + summary)
    write_results("peers_bank", {"models": rows, "constants": constant_rows,
                                 "published": PUBLISHED, "checks": checks,
                                 "test_rate": float(y_te.mean())}, summary)


if __name__ == "__main__":
    main()
