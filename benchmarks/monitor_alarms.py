"""How often `leadml monitor` pages when nothing changed, and how soon it pages when
something did.

    python benchmarks/monitor_alarms.py [--months 200] [--shift-months 40]

A model is trained on the committed sample (``data/sample/leads.csv``, the config of
``make run``) into a temporary store. Its test window is the reference drift is measured
against; every simulated night draws leads from that window at random, and their outcomes
from the model's own probabilities (a model that is right and leads that do not change).

- **False alarms**: ``--months`` months of 30 nightly runs, for nights of 50, 120 and 500
  leads; each month is one monitor run (``--by run``, every lead matured): the share of
  months with any alert, per kind, against the documented level (1%).
- **Detection**: the same months with a change from night 16 on: the conversion rate
  x1.5 and x2 (each lead's probability times the factor), one category's share doubled
  (the second commonest ``industry``; the rest drawn in proportion), a field emptied
  (``web_visits`` blank for every lead, as an export that lost it). Monitor runs every
  night over the nights so far; the share of months where it found the change by night
  30, and the median number of nights from the change to the first alert of its kind.

The numbers come from :func:`leadml.monitoring.monitor.summarize` (what ``leadml monitor``
computes) on the nights' leads, with the inputs' bins, unseen values and empty-field
warnings computed as scoring computes them. Results: ``benchmarks/results/monitor_alarms.*``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from _common import REPO, write_results

NIGHTS, CHANGE_AT = 30, 16
SIZES = (50, 120, 500)
KINDS = ("calibration", "ece", "score_drift", "input_drift", "unseen", "empty_field")


def train(tmp: Path):
    """The sample's model, trained in-process into a temporary store: (test result,
    contract, reference, known categories)."""
    import yaml

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    os.environ["LEADML_HOME"] = str(tmp)
    from leadml import jobs
    from leadml.config import load_config
    from leadml.monitoring.monitor import Reference
    from leadml.registry import load_scoring_model
    from leadml.scoring.chunks import known_categories

    config = yaml.safe_load((REPO / "pipelines/configs/sample.yaml").read_text())
    config["dataset"]["path"] = str(REPO / "data/sample/leads.csv")
    config["evaluation"]["bootstrap"] = 0
    (tmp / "train.yaml").write_text(yaml.safe_dump(config))
    result, registered = jobs.train(load_config(tmp / "train.yaml"))
    model, contract = load_scoring_model(registered.uri)
    reference = Reference(score=contract.score_reference, fields=contract.field_reference,
                          unseen=contract.unseen_reference)
    return result, contract, reference, known_categories(model)


class Nights:
    """Draws nights from the test window with everything monitoring reads of them."""

    def __init__(self, result, contract, reference, categories):
        from leadml.data.values import is_missing, parse_numbers

        self.X = result.X_test.reset_index(drop=True)
        self.p = np.asarray(result.p_test, float)
        self.contract, self.reference = contract, reference
        missing = {}
        for col in contract.features:
            if col in contract.numeric:
                missing[col] = np.isnan(parse_numbers(self.X[col], contract.missing_values)[0]
                                        .to_numpy(float))
            else:
                missing[col] = np.asarray(is_missing(self.X[col], contract.missing_values))
        self.missing = missing
        self.unseen = {col: (~missing[col]) & ~self.X[col].astype(str).str.strip().isin(known)
                       .to_numpy() for col, known in categories.items()}
        industry = self.X["industry"].astype(str).str.strip()
        self.category = industry.value_counts().index[1]
        self.in_category = (industry == self.category).to_numpy()

    def draw(self, rng, n: int, change: str | None):
        weights = None
        if change == "category":  # its share doubled, the rest in proportion
            share = self.in_category.mean()
            w = np.where(self.in_category, 2 * share / self.in_category.sum(),
                         (1 - 2 * share) / (~self.in_category).sum())
            weights = w / w.sum()
        idx = rng.choice(len(self.p), size=n, replace=False, p=weights)
        p = self.p[idx]
        truth = np.clip(p * {"rate_x1.5": 1.5, "rate_x2": 2.0}.get(change, 1.0), 0, 1)
        y = (rng.random(n) < truth).astype(float)
        leads = self.X.iloc[idx]
        missing = Counter({col: int(m[idx].sum()) for col, m in self.missing.items()})
        if change == "emptied":
            leads = leads.assign(web_visits="")
            missing["web_visits"] = n
        return idx, p, y, leads, missing

    def month(self, rng, n: int, change: str | None, nights: int = NIGHTS):
        """Per night: the scored leads' frame and the run's row, as monitor reads them."""
        from leadml.monitoring.statistics import field_bins
        from leadml.scoring.run import empty_fields

        frames, runs = [], []
        for t in range(nights):
            idx, p, y, leads, missing = self.draw(rng, n, change if t + 1 >= CHANGE_AT
                                                  else None)
            run = f"night {t + 1:02d}"
            frames.append(pd.DataFrame({
                "run": run, "scored_at": pd.Timestamp("2026-01-01", tz="UTC")
                + pd.Timedelta(days=t), "model": "m v1",
                "lead_id": [f"{t}-{i}" for i in range(n)], "conversion_probability": p,
                "grade": "C", "label": "nurture", "matured": True, "converted": y,
                "converted_before_scoring": False}))
            runs.append({"run": run, "scored": n, "warnings": empty_fields(
                missing, n, self.contract),
                "unseen": {c: int(u[idx].sum()) for c, u in self.unseen.items()},
                "input_bins": field_bins(leads, self.contract.field_reference,
                                         self.contract.missing_values)})
        return frames, runs


def alerts(nights: Nights, frames, runs, upto: int) -> list[dict]:
    from leadml.monitoring.monitor import summarize

    return summarize(pd.concat(frames[:upto], ignore_index=True), pd.DataFrame(runs[:upto]),
                     references={"m v1": nights.reference}).alerts


def false_alarms(nights: Nights, months: int, seed: int) -> dict:
    out = {}
    for n in SIZES:
        rng = np.random.default_rng(seed + n)
        any_alert, per_kind, seen = 0, Counter(), []
        for _ in range(months):
            frames, runs = nights.month(rng, n, None)
            found = alerts(nights, frames, runs, NIGHTS)
            kinds = {a["kind"] for a in found}
            any_alert += bool(kinds)
            per_kind.update(kinds)
            seen += [a["message"] for a in found]
        out[n] = {"months": months, "any_alert_share": any_alert / months,
                  **{f"{k}_share": per_kind[k] / months for k in KINDS},
                  "false_alarms": seen}
        print(f"no change, nights of {n}: {any_alert}/{months} months with an alert "
              f"{dict(per_kind)}", flush=True)
    return out


FOUND_BY = {"rate_x1.5": {"calibration", "ece"}, "rate_x2": {"calibration", "ece"},
            "category": {"input_drift", "score_drift"}, "emptied": {"empty_field",
                                                                    "input_drift"}}


def detection(nights: Nights, months: int, seed: int) -> dict:
    out = {}
    for change, kinds in FOUND_BY.items():
        for n in SIZES:
            rng = np.random.default_rng(seed + n + len(change))
            delays = []
            for _ in range(months):
                frames, runs = nights.month(rng, n, change)
                for upto in range(CHANGE_AT, NIGHTS + 1):
                    if {a["kind"] for a in alerts(nights, frames, runs, upto)} & kinds:
                        delays.append(upto - CHANGE_AT + 1)
                        break
            out[f"{change} n={n}"] = {
                "change": change, "leads_per_night": n, "months": months,
                "detected_share": len(delays) / months,
                "median_nights_to_detection": float(np.median(delays)) if delays else None}
            print(f"{change}, nights of {n}: found in {len(delays)}/{months} months, median "
                  f"{out[f'{change} n={n}']['median_nights_to_detection']} nights", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--months", type=int, default=200)
    parser.add_argument("--shift-months", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    load = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        nights = Nights(*train(Path(tmp)))
        print(f"reference window: {len(nights.p):,} leads; category doubled: industry = "
              f"{nights.category!r} ({nights.in_category.mean():.1%})", flush=True)
        null = false_alarms(nights, args.months, args.seed)
        found = detection(nights, args.shift_months, args.seed)
    from leadml.monitoring.alerts import Thresholds

    alpha = Thresholds().alpha
    lines = ["## No change: months with any alert (each month one monitor run over 30 "
             f"nights; documented level {alpha:.0%})", "",
             "| leads per night | months | any alert | " + " | ".join(KINDS) + " |",
             "|---|---|---|" + "---|" * len(KINDS)]
    for n, row in null.items():
        lines.append(f"| {n} | {row['months']} | {row['any_alert_share']:.1%} | "
                     + " | ".join(f"{row[f'{k}_share']:.1%}" for k in KINDS) + " |")
    lines += ["", f"## A change from night {CHANGE_AT} of {NIGHTS} (monitor every night)", "",
              "| change | leads per night | months | found by night 30 | median nights to "
              "the first alert |", "|---|---|---|---|---|"]
    for row in found.values():
        med = row["median_nights_to_detection"]
        lines.append(f"| {row['change']} | {row['leads_per_night']} | {row['months']} | "
                     f"{row['detected_share']:.0%} | {'-' if med is None else f'{med:g}'} |")
    lines += ["", f"Reference window: {len(nights.p):,} leads of the sample's test window; the "
              f"category doubled: industry = {nights.category!r} "
              f"({nights.in_category.mean():.1%} of the window). Load average at the start "
              f"{load[0]:.2f}; {time.perf_counter() - started:.0f} s in all."]
    path = write_results("monitor_alarms", {"false_alarms": null, "detection": found,
                                             "alpha": alpha, "load_average": load[0]},
                         "\n".join(lines))
    print(path.read_text())


if __name__ == "__main__":
    sys.exit(main())
