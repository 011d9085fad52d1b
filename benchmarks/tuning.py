"""Is tuning worth it? The default settings against ``model.tune`` on the same windows.

    python benchmarks/tuning.py [--trials 10] [--budget 300]

For the sample (``leadml sample``: 20,000 leads) and ``../shared/data/bank-marketing/
bank-full.csv`` when present (its config, ``duration`` excluded), leadml trains twice on the
same time-ordered windows (60% train, 20% calibration, 20% test): with each candidate's
configured settings, and with ``model.tune`` (``--trials`` drawn settings per candidate,
within ``--budget`` seconds of fitting). Settings are chosen on the calibration window only;
the test window is read once, at the end, for the table. Per run: the chosen trial and its
calibration-window ROC AUC, test-window ROC AUC, log loss, Brier and ECE, and the seconds
spent. Results: ``benchmarks/results/tuning.{md,json}``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml
from _common import REPO, write_results


def _datasets(tmp: Path):
    from leadml.setup.synthetic import make_leads

    leads = make_leads(20_000, seed=42)
    leads.to_csv(tmp / "sample.csv", index=False)
    raw = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
    raw["dataset"]["path"] = str(tmp / "sample.csv")
    yield "sample", raw
    bank = REPO.parent / "shared/data/bank-marketing/bank-full.csv"
    if bank.exists():
        raw = yaml.safe_load((REPO / "pipelines/configs/bank_full.yaml").read_text())
        raw["dataset"]["path"] = str(bank)
        yield "bank", raw


def _config(raw: dict, tmp: Path, tune: dict | None):
    from leadml.config import load_config

    raw = {**raw, "model": {**raw.get("model", {}), **({"tune": tune} if tune else {})}}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--budget", type=float, default=300.0)
    args = parser.parse_args()

    from leadml.jobs import audited_history
    from leadml.training.fit import train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, raw in _datasets(tmp):
            _, history = audited_history(_config(raw, tmp, None))
            for label, tune in (("configured settings", None),
                                (f"tuned ({args.trials} draws per candidate, "
                                 f"{args.budget:g} s budget)",
                                 {"trials": args.trials, "budget_seconds": args.budget})):
                start = time.perf_counter()
                result = train(history, _config(raw, tmp, tune))
                seconds = time.perf_counter() - start
                chosen = next(r for r in result.leaderboard if r["chosen"])
                m = result.test_metrics
                rows.append({
                    "data": name, "run": label, "trials": len(result.leaderboard),
                    "chosen": chosen["name"],
                    "settings": ", ".join(f"{k}={v:.3g}" if isinstance(v, float)
                                          else f"{k}={v}"
                                          for k, v in chosen["settings"].items()),
                    "calibration_window_roc_auc": round(chosen["calibration_window_roc_auc"],
                                                        4),
                    "test_roc_auc": round(m["roc_auc"], 4),
                    "test_log_loss": round(m["log_loss"], 4),
                    "test_brier": round(m["brier"], 4), "test_ece": round(m["ece"], 4),
                    "train_seconds": round(seconds, 1),
                    "tune_seconds": round(result.timings.get("tune_seconds", 0.0), 1),
                })
                print(rows[-1], flush=True)
    import pandas as pd

    table = pd.DataFrame(rows).to_markdown(index=False)
    write_results("tuning", {"rows": rows}, (
        "Settings chosen on the calibration window only; the test window is read once for "
        "this table. Seconds are the whole train() call (fits, tuning, calibration choice, "
        "refit, evaluation).\n\n" + table))


if __name__ == "__main__":
    main()
