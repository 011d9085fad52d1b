"""What a retrain costs: `leadml train` wall time against fitting the plain peers, same run.

    python benchmarks/train_speed.py --label after [--repeats 3] [--only sample crm bank]

Three histories: the committed sample (20,000 leads, pipelines/configs/sample.yaml), the
CRM-style sample (9,240 leads as the export comes, its leaky fields excluded, outcomes in a
second table under a 60-day horizon) and the bank data (45,211 leads,
pipelines/configs/bank_full.yaml). For each:

- ``leadml train`` in its own process, into a new MLflow store (the first training of a
  project) and then again into the same store (a data scientist iterating), ``--repeats``
  times each; wall time from the process start to its exit, and the test metrics it prints;
- the plain peers on the same windows of the same validated history, in this process:
  scikit-learn logistic regression (impute + scale numbers, one-hot categories, defaults
  with ``max_iter=1000``) and HistGradientBoosting with its defaults (categories native),
  each fitted on the train + calibration windows and uncalibrated; their fitting time (the
  sum of both) and their test metrics. Text fields are left out of the peers.

The budget the issue sets: leadml's wall at most 5x the peers' fitting time plus 3 s.

Results go to benchmarks/results/train_speed.{json,md}; each ``--label`` (``before``,
``after``) keeps its own rows, so the file holds both sides of a change.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, run_measured, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BANK = REPO.parent / "shared" / "data" / "bank-marketing" / "bank-full.csv"
PLANTED = ["Deal Amount", "Contract Type", "Last Activity", "Last Notable Activity",
           "Lead Quality", "Lead Profile", "Activity Score"]
SHOWN = ("roc_auc", "log_loss", "ece")
LINE = re.compile(r"^\s+(\w+)\s+([-\d.]+)\s+\(95% CI ([-\d.]+) to ([-\d.]+)\)")


def configs(tmp: Path) -> dict[str, Path]:
    """Each history's training config, with absolute paths."""
    from leadml.setup.synthetic_crm import write_crm_export

    out = {}
    sample = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
    sample["dataset"]["path"] = str(REPO / "data/sample/leads.csv")
    out["sample"] = sample
    crm = tmp / "crm"
    crm.mkdir()
    write_crm_export(crm, 9_240, seed=0, nightly_rows=10)
    raw = yaml.safe_load((crm / "train.yaml").read_text())
    cols = raw["dataset"]["columns"]
    for kind in ("numeric", "categorical"):
        cols[kind] = [c for c in cols[kind] if c not in PLANTED]
    cols["excluded"] = PLANTED
    raw["dataset"]["path"] = str(crm / "leads.csv")
    raw["dataset"]["outcomes"]["path"] = str(crm / "outcomes.csv")
    raw["dataset"]["outcomes"]["horizon_days"] = 60
    out["crm"] = raw
    if BANK.exists():
        bank = yaml.safe_load((REPO / "pipelines/configs/bank_full.yaml").read_text())
        bank["dataset"]["path"] = str(BANK)
        out["bank"] = bank
    paths = {}
    for name, raw in out.items():
        paths[name] = tmp / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(raw, sort_keys=False))
    return paths


def leadml_runs(config: Path, tmp: Path, repeats: int) -> dict:
    """``leadml train`` into a new store, then again into that store, ``repeats`` times."""
    first, again, printed = [], [], None
    for k in range(repeats):
        home = tmp / f"store_{config.stem}_{k}"
        home.mkdir()
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
               "LEADML_HOME": str(home)}
        cmd = [sys.executable, "-m", "leadml.cli", "train", "--config", str(config)]
        for wall in (first, again):
            done = run_measured(cmd, env)
            wall.append(done["seconds"])
            printed = done["stdout"]
    metrics = {}
    for line in printed.splitlines():
        found = LINE.match(line)
        if found and found[1] in SHOWN:
            metrics[found[1]] = [float(found[2]), float(found[3]), float(found[4])]
    chosen = next((line.split(":", 1)[1].strip() for line in printed.splitlines()
                   if line.startswith("model:")), "")
    return {"new_store_seconds": first, "same_store_seconds": again, "model": chosen,
            "test": metrics}


FLOOR = ("import leadml.jobs.training, leadml.registry.training, mlflow.sklearn, skops.io, "
         "matplotlib.pyplot; from mlflow import MlflowClient; "
         "MlflowClient(__import__('os').environ['MLFLOW_TRACKING_URI']).search_experiments()")


def floor(tmp: Path, repeats: int) -> dict:
    """What any training process pays before its first lead: starting Python, importing
    what training imports (pandas, scikit-learn, MLflow, skops, matplotlib) and opening the
    MLflow store (new, then existing)."""
    home = tmp / "floor"
    home.mkdir()
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
    new = run_measured([sys.executable, "-c", FLOOR], env)["seconds"]
    existing = [run_measured([sys.executable, "-c", FLOOR], env)["seconds"]
                for _ in range(repeats)]
    return {"new_store_seconds": new, "same_store_seconds": statistics.median(existing)}


def peers(config: Path) -> dict:
    """The plain peers' fitting time and test metrics on the same windows."""
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from leadml.config import load_config
    from leadml.data.values import parse_numbers
    from leadml.jobs import audited_history
    from leadml.training.fit import split_windows
    from leadml.training.metrics import metrics

    cfg = load_config(config)
    _, history = audited_history(cfg)
    cols = cfg.dataset.columns
    X = pd.DataFrame(index=history.features.index)
    for c in cols.numeric:
        X[c] = parse_numbers(history.features[c], tuple(cfg.dataset.missing_values))[0]
    for c in cols.categorical:
        X[c] = history.features[c].astype("string").fillna("(missing)").astype("category")
    windows = split_windows(history, cfg)
    fit = slice(0, windows["calibration"].stop)
    test = windows["test"].rows_slice
    y = history.target
    logistic = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), list(cols.numeric)),
            (OneHotEncoder(handle_unknown="ignore"), list(cols.categorical))),
        LogisticRegression(max_iter=1000))
    boosting = HistGradientBoostingClassifier(categorical_features="from_dtype",
                                              random_state=0)
    out, total = {}, 0.0
    for name, model in (("logistic_regression", logistic), ("hist_gradient_boosting", boosting)):
        start = time.perf_counter()
        model.fit(X.iloc[fit], y[fit])
        seconds = time.perf_counter() - start
        total += seconds
        m = metrics(y[test], model.predict_proba(X.iloc[test])[:, 1])
        out[name] = {"fit_seconds": round(seconds, 2),
                     **{k: round(float(m[k]), 4) for k in SHOWN}}
    return {"fit_seconds": round(total, 2), "models": out,
            "leads": {"fit": int(fit.stop), "test": int(test.stop - test.start)}}


def load() -> dict:
    path = RESULTS / "train_speed.json"
    return json.loads(path.read_text()).get("labels", {}) if path.exists() else {}


def table(labels: dict) -> str:
    rows = ["| history | label | peers' fits | `leadml train` (same store, median) | new store "
            "(median) | budget 5x + 3 s | within | chosen | test ROC AUC (95%) | log loss "
            "(95%) | ECE (95%) | peers' ROC AUC LR / HGB |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, data in labels.items():
        for name, r in data["histories"].items():
            same = statistics.median(r["leadml"]["same_store_seconds"])
            new = statistics.median(r["leadml"]["new_store_seconds"])
            budget = 5 * r["peers"]["fit_seconds"] + 3
            t = r["leadml"]["test"]
            shown = ["{:.4f} ({:.4f}-{:.4f})".format(*t[k]) if k in t else "" for k in SHOWN]
            p = r["peers"]["models"]
            rows.append(
                f"| {name} | {label} ({data['date']}, load {data['load']}) | "
                f"{r['peers']['fit_seconds']:.2f} s | {same:.1f} s | {new:.1f} s | "
                f"{budget:.1f} s | {'yes' if same <= budget else 'no'} | "
                f"{r['leadml']['model']} | {' | '.join(shown)} | "
                f"{p['logistic_regression']['roc_auc']:.4f} / "
                f"{p['hist_gradient_boosting']['roc_auc']:.4f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    histories = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start_floor = floor(tmp, args.repeats)
        print("floor", start_floor, flush=True)
        for name, config in configs(tmp).items():
            if args.only and name not in args.only:
                continue
            peer = peers(config)
            ran = leadml_runs(config, tmp, args.repeats)
            histories[name] = {"peers": peer, "leadml": ran}
            print(name, json.dumps(histories[name]), flush=True)
    labels = load()
    labels[args.label] = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load": f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after",
        "commit": os.popen(f"git -C {REPO} rev-parse --short HEAD").read().strip(),
        "floor": start_floor, "histories": histories}
    summary = (
        "`leadml train` (read, audit, candidates, calibration choice, refit, bootstrap "
        "intervals, importances, plots, report, MLflow run, registration, promotion) against "
        "fitting the plain peers (logistic regression and HistGradientBoosting with defaults, "
        "each on the train + calibration windows) on the same windows, in the same run. Load "
        "is the 1-minute load average before and after the run (2 cores). 'Same store': a "
        "second training into an existing MLflow store; 'new store': the project's first.\n\n"
        + table(labels)
        + "\n\nThe floor (a process that imports what training imports and opens the MLflow "
        "store, nothing else), per run: " + "; ".join(
            f"{label}: {d['floor']['same_store_seconds']:.1f} s with the store existing, "
            f"{d['floor']['new_store_seconds']:.1f} s creating it"
            for label, d in labels.items() if "floor" in d))
    write_results("train_speed", {"labels": labels}, summary)


if __name__ == "__main__":
    main()
