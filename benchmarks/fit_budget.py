"""What fitting on only the newest leads costs in test-window quality, and saves in time.

    python benchmarks/fit_budget.py [--rows 1000000] [--budgets 0 400000 200000 100000]

``model.max_fit_leads`` caps every fit of training (the candidates, the calibration folds,
the refit) to the newest leads of its window; choosing the candidate, fitting the
calibration map and the test window still use every lead. For each dataset, on the same
time-ordered windows (60% train, 20% calibration, 20% test), ``leadml.training.fit.train`` runs
with each budget (0: no cap) and the test-window metrics and fit time are recorded.

Datasets (generated, ``--rows`` leads each): ``trend`` (the sample's slow upward drift of
the base log-odds, +0.45 over 18 months) and ``swing`` (no trend, the base log-odds swinging
by +-1.0 over 2.5 cycles, so the conversion rate moves between about 5% and 25%).
Results: ``benchmarks/results/fit_budget.{md,json}``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from _common import REPO, write_results

SCENARIOS = {
    "trend": {"seed": 11},
    "swing": {"seed": 3, "drift": 0.0, "swing": 1.0, "swings": 2.5},
}


def evaluate(name: str, rows: int, budgets: list[int], tmp: Path) -> list[dict]:
    from leadml.config import load_config
    from leadml.jobs import audited_history
    from leadml.setup.synthetic import make_leads
    from leadml.training.fit import train

    make_leads(rows, **SCENARIOS[name]).to_csv(tmp / f"{name}.csv", index=False)
    raw = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
    raw["dataset"]["path"] = str(tmp / f"{name}.csv")
    (tmp / "config.yaml").write_text(yaml.safe_dump(raw))
    _, history = audited_history(load_config(tmp / "config.yaml"))
    out = []
    for budget in budgets:
        raw["model"]["max_fit_leads"] = budget or None
        (tmp / "config.yaml").write_text(yaml.safe_dump(raw))
        cfg = load_config(tmp / "config.yaml")
        start = time.perf_counter()
        result = train(history, cfg)
        seconds = time.perf_counter() - start
        choice = result.calibration_choice or {}
        out.append({"dataset": name, "max_fit_leads": budget or "all",
                    "chosen": result.kind, "calibration": f"{choice.get('window', 'newest')}"
                    f", drift {result.drift.get('method', 'none')}",
                    **{k: round(v, 4) for k, v in result.test_metrics.items()},
                    "train_seconds": round(seconds, 1),
                    **{k: round(v, 1) for k, v in result.timings.items()}})
        print(out[-1], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--budgets", type=int, nargs="+",
                        default=[0, 400_000, 200_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for name in SCENARIOS
                for r in evaluate(name, args.rows, args.budgets, Path(tmp))]
    frame = pd.DataFrame(rows)
    cols = ["dataset", "max_fit_leads", "chosen", "calibration", "roc_auc", "log_loss",
            "brier", "ece", "train_seconds"]
    table = frame[cols].to_markdown(index=False, floatfmt=".4f")
    write_results("fit_budget", {"rows": args.rows, "results": rows},
                  f"{args.rows:,} generated leads per dataset; `leadml.training.fit.train` (fits, "
                  f"calibration choice, test metrics; no importances or logging), each "
                  f"budget in the same run:\n\n{table}\n")


if __name__ == "__main__":
    main()
