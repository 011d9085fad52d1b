"""Discrimination and calibration metrics, tables and plots for a window of leads.

Calibration is reported beside discrimination: a lead-scoring model whose 0.3 does not
mean 30 conversions in 100 misleads every threshold sales sets on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-width bins, weighted by count.

    >>> round(expected_calibration_error(np.array([0, 1, 0, 1]), np.array([.5, .5, .5, .5])), 3)
    0.0
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / len(y))


def lift_at(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Conversion rate among the top ``share`` of leads by probability, over the base rate.

    Leads tied at the cut-off count in proportion (the expected lift when ties are broken
    at random), so calibrators that give many leads one value (isotonic) are not judged by
    the order the rows happen to be in.

    >>> lift_at(np.array([1, 0, 1, 0]), np.array([.9, .5, .5, .1]), 0.5)
    1.5
    """
    base = y.mean()
    if base == 0:
        return float("nan")
    k = max(1, int(round(share * len(y))))
    cut = -np.partition(-p, k - 1)[k - 1]
    above, tied = p > cut, p == cut
    conversions = y[above].sum() + (k - above.sum()) * y[tied].mean()
    return float(conversions / k / base)


def metrics(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> dict[str, float]:
    """All headline metrics of probabilities ``p`` against outcomes ``y``."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
        "ece": expected_calibration_error(y, p, bins),
        "lift_10": lift_at(y, p, 0.10),
        "lift_20": lift_at(y, p, 0.20),
        "positive_rate": float(y.mean()),
        "mean_probability": float(p.mean()),
        "rows": float(len(y)),
    }


def bootstrap_intervals(y: np.ndarray, p: np.ndarray, *, n: int, seed: int,
                        level: float = 0.95, bins: int = 10) -> dict[str, tuple[float, float]]:
    """Percentile intervals of each metric over ``n`` resamples of the leads.

    A resample is a count per lead (how often it was drawn), so each is computed from
    weighted sums over the leads sorted once by probability, instead of re-sorting a copy:
    the same draws and the same numbers as :func:`metrics` on the copy (ties in
    probability handled as scikit-learn does), in a fraction of the time.
    """
    if n <= 0:
        return {}
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    rng = np.random.default_rng(seed)
    resampled = _Resampled(y, p, bins)
    draws: dict[str, list[float]] = {}
    for _ in range(n):
        counts = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y))
        for key, value in resampled.metrics(counts).items():
            draws.setdefault(key, []).append(value)
    alpha = (1 - level) / 2
    return {k: (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha)))
            for k, v in draws.items()}


class _Resampled:
    """The headline metrics of a resample given as a count per lead (see
    :func:`bootstrap_intervals`); leads are grouped by distinct probability, highest first."""

    def __init__(self, y: np.ndarray, p: np.ndarray, bins: int):
        self.y, self.p = y, p
        values, self.group = np.unique(-p, return_inverse=True)  # group 0: highest p
        self.values = -values
        self.groups = len(values)
        self.loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        self.sq = (p - y) ** 2
        edges = np.linspace(0.0, 1.0, bins + 1)
        self.bin = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
        self.bins = bins

    def _by(self, index: np.ndarray, size: int, weights: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=weights, minlength=size)

    def metrics(self, counts: np.ndarray) -> dict[str, float]:
        w = counts.astype(float)
        total = w.sum()
        wy = w * self.y
        positives = wy.sum()
        if not 0 < positives < total:
            return {}
        pos = self._by(self.group, self.groups, wy)
        neg = self._by(self.group, self.groups, w - wy)
        negatives = total - positives
        neg_below = negatives - np.cumsum(neg)  # negatives scored strictly lower
        roc_auc = float((pos * (neg_below + 0.5 * neg)).sum() / (positives * negatives))
        tp, fp = np.cumsum(pos), np.cumsum(neg)
        precision = tp / np.maximum(tp + fp, 1e-300)
        recall_step = pos / positives
        pr_auc = float((recall_step * precision).sum())
        n_bin = self._by(self.bin, self.bins, w)
        gap = np.abs(self._by(self.bin, self.bins, wy) - self._by(self.bin, self.bins,
                                                                    w * self.p))
        ece = float(gap[n_bin > 0].sum() / total)
        base = positives / total
        return {
            "roc_auc": roc_auc, "pr_auc": pr_auc,
            "log_loss": float((w * self.loss).sum() / total),
            "brier": float((w * self.sq).sum() / total),
            "ece": ece,
            "lift_10": self._lift(pos, pos + neg, total, base, 0.10),
            "lift_20": self._lift(pos, pos + neg, total, base, 0.20),
            "mean_probability": float((w * self.p).sum() / total),
        }

    @staticmethod
    def _lift(pos: np.ndarray, size: np.ndarray, total: float, base: float,
              share: float) -> float:
        """As :func:`lift_at`: leads tied at the cut-off count in proportion."""
        k = max(1, int(round(share * total)))
        cumulative = np.cumsum(size)
        g = int(np.searchsorted(cumulative, k))  # the group the k-th lead falls in
        above = cumulative[g - 1] if g else 0.0
        conversions = pos[:g].sum() + (k - above) * pos[g] / size[g]
        return float(conversions / k / base)


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per probability bin: leads, mean predicted probability, observed conversion rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "y": y, "p": p})
    table = frame.groupby("bin").agg(leads=("y", "size"), predicted=("p", "mean"),
                                     observed=("y", "mean")).reset_index()
    table["from"] = edges[table["bin"]]
    table["to"] = edges[table["bin"] + 1]
    return table[["from", "to", "leads", "predicted", "observed"]]


def band_table(y: np.ndarray, p: np.ndarray, bands: int = 10) -> pd.DataFrame:
    """Conversion per score band: band 1 holds the highest-probability tenth of leads."""
    order = np.argsort(-p, kind="stable")
    band = np.empty(len(p), dtype=int)
    band[order] = np.arange(len(p)) * bands // len(p) + 1
    frame = pd.DataFrame({"band": band, "y": y, "p": p})
    table = frame.groupby("band").agg(
        leads=("y", "size"), conversions=("y", "sum"), min_probability=("p", "min"),
        mean_probability=("p", "mean"), conversion_rate=("y", "mean"),
    ).reset_index()
    table["lift"] = table["conversion_rate"] / max(y.mean(), 1e-12)
    table["cumulative_share_of_conversions"] = table["conversions"].cumsum() / max(y.sum(), 1)
    return table


def save_plots(y: np.ndarray, p: np.ndarray, folder: Path, *, bins: int = 10,
               title: str = "") -> list[Path]:
    """Reliability diagram, ROC, precision-recall and cumulative gain, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []

    def finish(fig, name: str) -> None:
        fig.tight_layout()
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    table = calibration_table(y, p, bins)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", label="perfectly calibrated")
    ax.plot(table["predicted"], table["observed"], "o-", label="model")
    for _, row in table.iterrows():
        ax.annotate(f"{int(row['leads'])}", (row["predicted"], row["observed"]),
                    fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set(xlabel="predicted probability", ylabel="share that converted",
           title=f"Do the probabilities mean what they say? {title}".strip(), xlim=(0, 1),
           ylim=(0, 1))
    ax.legend(loc="upper left")
    finish(fig, "reliability")

    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y, p):.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    finish(fig, "roc")

    precision, recall, _ = precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, label=f"AP {average_precision_score(y, p):.3f}")
    ax.axhline(y.mean(), ls="--", c="grey", label=f"base rate {y.mean():.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1))
    ax.legend(loc="upper right")
    finish(fig, "precision_recall")

    order = np.argsort(-p, kind="stable")
    gain = np.concatenate([[0], np.cumsum(y[order]) / max(y.sum(), 1)])
    share = np.linspace(0, 1, len(gain))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(share, gain, label="model")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", label="random")
    ax.set(xlabel="share of leads contacted (highest first)",
           ylabel="share of conversions reached", title="Cumulative gain")
    ax.legend(loc="lower right")
    finish(fig, "cumulative_gain")
    return paths


def score_distribution_figure(distribution: dict, title: str = ""):
    """Leads per band of score (1-99) in one scoring run, as a bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bands = distribution["bands"]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.bar(list(bands), list(bands.values()), color="#3b7dd8")
    ax.set(xlabel="score", ylabel="leads", title=title or "Scores of this run")
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig
