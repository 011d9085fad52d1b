"""Replay history as production would have run it: retrain before each window, score it.

Windows are consecutive shares of the time-ordered history, from ``start`` on. For each,
the model is fitted on every older lead exactly as ``leadml train`` fits it (the newest part
of those leads chooses the candidate and fits the calibrator, in the config's train :
calibration proportion), then scores the window it has not seen. Each drift correction of
:mod:`leadml.training.rate_shift` is applied to the same predictions, so their effects are
measured side by side:

- ``none``: the calibrated probabilities as they are;
- ``recent_rate``: shifted so the mean prediction on the newest ``drift.recent_share`` of
  older leads equals their conversion rate;
- ``known_rate``: shifted to ``drift.base_rate`` (only when the config sets one);
- ``em``: shifted to the rate estimated from the window's own unlabelled leads (Saerens);
- ``oracle``: shifted so the mean prediction equals the window's true rate. Not a method
  (nobody knows tonight's rate); it shows the best any base-rate correction could do.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config import TrainConfig
from leadml.data.schema import History
from leadml.data.tables import write_json, write_table
from leadml.errors import LeadDataError
from leadml.model.wrappers import shift_rate
from leadml.training.fit import drift_rates, fit_calibrated, recent_rows
from leadml.training.metrics import metrics
from leadml.training.rate_shift import em_rate, embodied_rate

logger = logging.getLogger(__name__)

REPORTED = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_10", "positive_rate",
            "mean_probability")


@dataclass
class Backtest:
    windows: pd.DataFrame  # one row per window and method
    pooled: pd.DataFrame  # one row per method, over every window's leads
    configured: str  # the drift method the config uses

    def to_dict(self) -> dict:
        return {"configured_drift_method": self.configured,
                "pooled": self.pooled.to_dict(orient="records"),
                "windows": self.windows.to_dict(orient="records")}


def window_bounds(n: int, *, start: float, window: float, end: float = 1.0
                  ) -> list[tuple[int, int]]:
    """Consecutive windows of ``window`` x n leads from ``start`` x n to ``end`` x n; a
    remnant shorter than half a window joins the window before it (a window of a few
    leads measures nothing).

    >>> window_bounds(100, start=0.5, window=0.2)
    [(50, 70), (70, 90), (90, 100)]
    >>> window_bounds(100, start=0.5, window=0.1, end=0.8)
    [(50, 60), (60, 70), (70, 80)]
    >>> window_bounds(8001, start=0.6, window=0.1, end=0.8)
    [(4801, 5601), (5601, 6401)]
    >>> window_bounds(8004, start=0.6, window=0.1, end=0.8)
    [(4802, 5602), (5602, 6403)]
    """
    if not 0 < start < end <= 1 or not 0 < window <= end - start + 1e-9:
        raise LeadDataError(f"backtest needs 0 < start < end <= 1 and 0 < window <= end - "
                            f"start; got start {start}, end {end}, window {window}")
    size = max(1, int(round(n * window)))
    last = int(round(n * end))
    bounds = [(a, min(a + size, last)) for a in range(int(round(n * start)), last, size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < size / 2:
        bounds[-2:] = [(bounds[-2][0], bounds[-1][1])]
    return bounds


#: What each part of a backtest window needs of each outcome: the fit and the calibrator
#: split their leads by outcome (five folds at most), the scored window ranks them.
MIN_PER_OUTCOME = {"fit": 10, "calibration": 10, "scored": 1}


def _check_parts(k: int, bounds: tuple[int, int], parts: dict[str, np.ndarray]) -> None:
    for part, part_y in parts.items():
        won = int(part_y.sum())
        if min(won, len(part_y) - won) < MIN_PER_OUTCOME[part]:
            a, b = bounds
            raise LeadDataError(
                f"backtest window {k + 1} (leads {a}..{b}): its {part} part has "
                f"{len(part_y):,} leads and {won:,} conversions, too few to "
                f"{'score' if part == 'scored' else 'fit'} (at least "
                f"{MIN_PER_OUTCOME[part]} converted and {MIN_PER_OUTCOME[part]} not): start "
                "later (--start), use larger windows (--window) or end later (--end)")


def _rates(p: np.ndarray, p_recent: np.ndarray, y_recent: np.ndarray, y_w: np.ndarray,
           cfg: TrainConfig) -> dict[str, np.ndarray]:
    drift = cfg.drift
    source, recent = drift_rates(drift.model_copy(update={"method": "recent_rate"}), p_recent,
                                 y_recent)
    out = {"none": p, "recent_rate": shift_rate(p, source, recent)}
    if drift.base_rate is not None:
        out["known_rate"] = shift_rate(p, source, drift.base_rate)
    out["em"] = shift_rate(p, source, em_rate(p, source))
    truth = float(np.clip(y_w.mean(), 1e-4, 1 - 1e-4))
    out["oracle"] = shift_rate(p, embodied_rate(p, truth), truth)
    return out


def backtest(history: History, cfg: TrainConfig, *, start: float = 0.5,
             window: float = 0.1, end: float = 1.0) -> Backtest:
    """Metrics per window and pooled, for each drift correction; see the module docstring."""
    X, y = history.features, history.target
    share = cfg.split.calibration / (cfg.split.train + cfg.split.calibration)
    rows, pooled_p, pooled_y = [], {}, []
    for k, (a, b) in enumerate(window_bounds(len(y), start=start, window=window, end=end)):
        cut = int(round(a * (1 - share)))
        y_fit, y_cal, y_w = y[:cut], y[cut:a], y[a:b]
        _check_parts(k, (a, b), {"fit": y_fit, "calibration": y_cal, "scored": y_w})
        began = time.perf_counter()
        fitted = fit_calibrated(X.iloc[:cut], y_fit, X.iloc[cut:a], y_cal, cfg)
        p = fitted.model.predict_proba(X.iloc[a:b])[:, 1]
        recent = recent_rows(a, cfg.drift.recent_share)
        p_recent = fitted.model.predict_proba(X.iloc[recent])[:, 1]
        seconds = time.perf_counter() - began
        pooled_y.append(y_w)
        for method, q in _rates(p, p_recent, y[recent], y_w, cfg).items():
            pooled_p.setdefault(method, []).append(q)
            m = metrics(y_w, q, bins=cfg.evaluation.calibration_bins)
            rows.append({"window": k + 1, "method": method, "first_time":
                         str(history.time.iloc[a]), "last_time": str(history.time.iloc[b - 1]),
                         "train_leads": a, "leads": b - a, "model_kind": fitted.kind,
                         "seconds": round(seconds, 2), **{key: m[key] for key in REPORTED}})
        logger.info("window %d (%s .. %s): %d leads, rate %.3f, ROC AUC %.4f, mean p %.3f "
                    "(%.1fs)", k + 1, history.time.iloc[a], history.time.iloc[b - 1], b - a,
                    y_w.mean(), rows[-1]["roc_auc"], float(p.mean()), seconds)
    y_all = np.concatenate(pooled_y)
    pooled = pd.DataFrame([
        {"method": method, "leads": len(y_all),
         **{k: v for k, v in metrics(y_all, np.concatenate(ps),
                                     bins=cfg.evaluation.calibration_bins).items()
            if k in REPORTED}}
        for method, ps in pooled_p.items()])
    return Backtest(windows=pd.DataFrame(rows), pooled=pooled, configured=cfg.drift.method)


def plot_backtest(bt: Backtest, path: Path) -> Path:
    """Predicted against realised conversion rate per window, one line per drift method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    none = bt.windows[bt.windows.method == "none"]
    ax.plot(none.window, none.positive_rate, "ko-", lw=2, label="realised")
    for method, rows in bt.windows.groupby("method", sort=False):
        if method != "oracle":
            ax.plot(rows.window, rows.mean_probability, "o--", label=f"predicted ({method})")
    ax.set_xlabel("backtest window (oldest to newest)")
    ax.set_ylabel("conversion rate")
    ax.set_xticks(none.window)
    ax.legend(fontsize=8)
    ax.set_title("Predicted against realised conversion per window")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_backtest(bt: Backtest, folder: Path) -> list[Path]:
    """windows.csv, pooled.csv, backtest.json and the plot, each written whole."""

    paths = [folder / "windows.csv", folder / "pooled.csv", folder / "backtest.json"]
    write_table(bt.windows, paths[0])
    write_table(bt.pooled, paths[1])
    write_json(bt.to_dict(), paths[2])
    return [*paths, plot_backtest(bt, folder / "predicted_vs_realised.png")]
