"""Do the fit and engagement axes find the truth? Against the generator's own parts.

    python benchmarks/axes_truth.py [--leads 5000]

For each model kind, trains on the committed sample (data/sample/leads.csv, the sample's
config) and scores new leads drawn at the end of its drift whose true fit and engagement (the
parts of their true log-odds their profile and their actions make: ``make_leads(parts=True)``)
are known. Writes the Spearman correlation of each axis with its truth, for the points that
add up (``fit_points``: the lead's own share, in probability) and for what grades the leads
(what the axis alone adds to a typical lead), and the conversion rate of the matrix's corner
cells against the generator's probabilities, to benchmarks/results/axes_truth.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, write_results  # noqa: E402

FIT = ["industry", "company_size", "country", "job_title", "estimated_budget"]
ENGAGEMENT = ["web_visits", "email_opens", "form_fills", "meetings"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=5000)
    args = parser.parse_args()

    from leadml.config import Axes, load_config
    from leadml.data.schema import validate_history
    from leadml.explain.effects import Explainer
    from leadml.registry import input_example
    from leadml.rules import axes
    from leadml.setup.synthetic import HISTORY_END, make_leads
    from leadml.training.fit import train

    leads = make_leads(args.leads, seed=9, start=HISTORY_END, days=1.0, drift_at=1.0,
                       parts=True)
    rows, numbers = [], {}
    for kind in ("logistic_regression", "gradient_boosting"):
        cfg = load_config(REPO / "pipelines/configs/sample.yaml")
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(
            update={"candidates": [kind]})})
        raw = pd.read_csv(cfg.dataset.path, dtype=str, keep_default_na=False)
        result = train(validate_history(raw, cfg), cfg)
        features = list(cfg.dataset.columns.features)
        reference = input_example(result.X_test[features], cfg.dataset.columns.numeric)
        X = leads[features].copy()
        for col in cfg.dataset.columns.numeric:
            X[col] = pd.to_numeric(X[col])
        shares = Explainer(result.model, reference.iloc[0].to_dict()).shares(X)
        on = axes.columns(shares, Axes(fit=FIT, engagement=ENGAGEMENT))
        cell = pd.Series(np.asarray(on["fit_grade"]).astype(str)) + \
            pd.Series(np.asarray(on["engagement_level"]).astype(str))
        truth = np.log(leads["true_probability"] / (1 - leads["true_probability"]))
        row = {
            "model": spearmanr(shares.p, truth).statistic,
            "fit_points": spearmanr(on["fit_points"], leads["true_fit"]).statistic,
            "fit_graded": spearmanr(shares.at_typical(FIT), leads["true_fit"]).statistic,
            "engagement_points": spearmanr(on["engagement_points"],
                                           leads["true_engagement"]).statistic,
            "engagement_graded": spearmanr(shares.at_typical(ENGAGEMENT),
                                           leads["true_engagement"]).statistic,
        }
        corners = {c: {"leads": int((cell == c).sum()),
                       "true_rate": float(leads["true_probability"][cell == c].mean())
                       if (cell == c).any() else None}
                   for c in ("A1", "A4", "D1", "D4")}
        numbers[kind] = {**{k: round(float(v), 4) for k, v in row.items()},
                         "corners": corners}
        rows.append(f"| {kind.replace('_', ' ')} | {row['model']:.3f} | "
                    f"{row['fit_points']:.3f} | "
                    f"{row['fit_graded']:.3f} | {row['engagement_points']:.3f} | "
                    f"{row['engagement_graded']:.3f} | " + ", ".join(
                        f"{c} {v['leads']:,} at {v['true_rate']:.1%}" if v["true_rate"]
                        is not None else f"{c} none" for c, v in corners.items()) + " |")
        print(kind, numbers[kind], flush=True)
    load = [round(x, 2) for x in os.getloadavg()]
    summary = (
        f"{args.leads:,} new leads drawn at the end of the sample's drift, each with its true "
        "fit and engagement (the parts of its true log-odds its profile and its actions make). "
        "One model of each kind trained on the committed sample. Spearman correlation of each "
        "axis with its truth: the points that add up (the axis' share of the lead's distance "
        "from a typical lead, in probability: they also carry the lead's other fields, through "
        "the calibration curve's slope), and what the grades are cut on (what the axis' "
        "fields alone add to a typical lead). Corner cells with the default cut-offs: leads "
        f"and their true conversion rate. Load average at the end: {load}.\n\n"
        "| model | model: its probability against the true one | fit: points | fit: graded "
        "| engagement: points | engagement: graded | corner cells (true rate) |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows)
        + "\n\nThe issue's target is 0.9 for each axis. The engagement axis meets it; the fit "
        "axis reaches 0.90 with the logistic regression (the model leadml chooses on the "
        "sample) and about 0.8 with gradient boosting, which ranks the leads' true "
        "probabilities less well as a whole (the second column): an axis is a part of the "
        "model, and cannot know the truth better than the model does. The sample's fit part "
        "holds an interaction (senior title x large company) and a budget relative to the "
        "company's size, which 12,000 training leads teach only in part.")
    print(write_results("axes_truth", {"leads": args.leads, "models": numbers}, summary)
          .read_text())


if __name__ == "__main__":
    main()
