"""Fit candidates on the oldest leads, pick and calibrate on the next, test on the newest.

Nothing here looks at the test window until the model is final: the candidate is chosen
by ROC AUC on the calibration window, and the calibrator is fitted there too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import log_loss, roc_auc_score

from leadml.config import TrainConfig
from leadml.evaluate import band_table, bootstrap_intervals, calibration_table, metrics
from leadml.features import build_pipeline
from leadml.schema import History, LeadDataError

logger = logging.getLogger(__name__)

WINDOWS = ("train", "calibration", "test")


@dataclass(frozen=True)
class Window:
    name: str
    start: int
    stop: int
    first_time: str
    last_time: str
    rows: int
    conversions: int

    @property
    def rows_slice(self) -> slice:
        return slice(self.start, self.stop)


@dataclass
class TrainResult:
    model: CalibratedClassifierCV
    kind: str
    calibration_method: str
    windows: dict[str, Window]
    candidates: dict[str, dict[str, float]]
    test_metrics: dict[str, float]
    uncalibrated_test_metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    calibration: pd.DataFrame
    bands: pd.DataFrame
    X_test: pd.DataFrame
    y_test: np.ndarray
    p_test: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


def split_windows(history: History, cfg: TrainConfig) -> dict[str, Window]:
    """Train, calibration and test windows over the time-ordered history (newest last)."""
    n = len(history.target)
    cut1 = int(round(n * cfg.split.train))
    cut2 = int(round(n * (cfg.split.train + cfg.split.calibration)))
    bounds = {"train": (0, cut1), "calibration": (cut1, cut2), "test": (cut2, n)}
    windows = {}
    for name, (a, b) in bounds.items():
        y = history.target[a:b]
        if b - a == 0 or y.sum() == 0 or y.sum() == len(y):
            raise LeadDataError(
                f"the {name} window (rows {a}..{b} of {n} in time order) has {b - a} leads and "
                f"{int(y.sum())} conversions; each window needs both converted and unconverted "
                "leads. Add history or change the shares under 'split:' in the config."
            )
        windows[name] = Window(
            name=name, start=a, stop=b, rows=b - a, conversions=int(y.sum()),
            first_time=str(history.time.iloc[a]), last_time=str(history.time.iloc[b - 1]),
        )
    return windows


def choose_calibration(method: str, positives: int, negatives: int, threshold: int) -> str:
    """Isotonic needs many leads of both outcomes to beat a sigmoid; below that, sigmoid.

    >>> choose_calibration("auto", 5_000, 40_000, 1000), choose_calibration("auto", 300, 9_000, 1000)
    ('isotonic', 'sigmoid')
    """
    if method != "auto":
        return method
    return "isotonic" if min(positives, negatives) >= threshold else "sigmoid"


def train(history: History, cfg: TrainConfig) -> TrainResult:
    """Fit, choose, calibrate and evaluate; returns the calibrated pipeline and its numbers."""
    windows = split_windows(history, cfg)
    X, y = history.features, history.target
    part = {name: (X.iloc[w.rows_slice], y[w.rows_slice]) for name, w in windows.items()}
    X_train, y_train = part["train"]
    X_cal, y_cal = part["calibration"]
    X_test, y_test = part["test"]

    timings: dict[str, float] = {}
    fitted, candidates = {}, {}
    for kind in cfg.model.candidates:
        start = time.perf_counter()
        pipe = build_pipeline(kind, cfg.dataset.columns, cfg.model,
                              missing_values=cfg.dataset.missing_values)
        pipe.fit(X_train, y_train)
        timings[f"fit_{kind}_seconds"] = time.perf_counter() - start
        p_cal = pipe.predict_proba(X_cal)[:, 1]
        candidates[kind] = {
            "calibration_window_roc_auc": float(roc_auc_score(y_cal, p_cal)),
            "calibration_window_log_loss_uncalibrated": float(log_loss(y_cal, p_cal)),
        }
        fitted[kind] = pipe
        logger.info("candidate %s: calibration-window ROC AUC %.4f (%.1fs)", kind,
                    candidates[kind]["calibration_window_roc_auc"],
                    timings[f"fit_{kind}_seconds"])
    kind = max(candidates, key=lambda k: candidates[k]["calibration_window_roc_auc"])
    method = choose_calibration(cfg.model.calibration, int(y_cal.sum()),
                                int(len(y_cal) - y_cal.sum()), cfg.model.isotonic_min_positives)
    start = time.perf_counter()
    model = CalibratedClassifierCV(FrozenEstimator(fitted[kind]), method=method)
    model.fit(X_cal, y_cal)
    timings["calibrate_seconds"] = time.perf_counter() - start
    logger.info("chose %s, calibrated with %s on %d leads", kind, method, len(y_cal))

    p_test = model.predict_proba(X_test)[:, 1]
    p_raw = fitted[kind].predict_proba(X_test)[:, 1]
    bins = cfg.evaluation.calibration_bins
    return TrainResult(
        model=model,
        kind=kind,
        calibration_method=method,
        windows=windows,
        candidates=candidates,
        test_metrics=metrics(y_test, p_test, bins=bins),
        uncalibrated_test_metrics=metrics(y_test, p_raw, bins=bins),
        intervals=bootstrap_intervals(y_test, p_test, n=cfg.evaluation.bootstrap,
                                      seed=cfg.model.seed),
        calibration=calibration_table(y_test, p_test, bins),
        bands=band_table(y_test, p_test, cfg.evaluation.bands),
        X_test=X_test,
        y_test=y_test,
        p_test=p_test,
        timings=timings,
    )


def dataset_facts(history: History, cfg: TrainConfig, sha256: str) -> dict:
    """What data trained the model: logged with the run and written in the model card."""
    return {
        "path": str(cfg.dataset.path),
        "sha256": sha256,
        "rows": int(len(history.target)),
        "conversions": int(history.target.sum()),
        "positive_rate": round(float(history.target.mean()), 6),
        "first_time": str(history.time.iloc[0]),
        "last_time": str(history.time.iloc[-1]),
    }


def train_from_config(cfg: TrainConfig, *, force_promote: bool = False):
    """The training job: read, validate, train, log, register, promote.

    Returns the :class:`TrainResult` and the registry's :class:`~leadml.registry.Registered`.
    """
    from leadml import io, registry
    from leadml.schema import validate_history

    ds = cfg.dataset
    raw = io.read_table(ds.path, delimiter=ds.csv.delimiter, encoding=ds.csv.encoding)
    outcomes = None
    if ds.outcomes is not None:
        outcomes = io.read_table(ds.outcomes.path, delimiter=ds.csv.delimiter,
                                 encoding=ds.csv.encoding)
    unused = sorted(set(raw.columns) - set(ds.columns.features) - set(ds.columns.excluded)
                    - {ds.id_column, ds.time_column, ds.target and ds.target.column})
    if unused:
        logger.warning("columns not named in the config are not used: %s (list them under "
                       "columns.excluded to silence this)", unused)
    history = validate_history(raw, cfg, outcomes)
    facts = dataset_facts(history, cfg, io.file_sha256(ds.path))
    logger.info("%d leads, %d conversions (%.2f%%), %s to %s", facts["rows"],
                facts["conversions"], 100 * facts["positive_rate"], facts["first_time"],
                facts["last_time"])
    result = train(history, cfg)
    registered = registry.log_training(result, cfg, facts, force_promote=force_promote)
    return result, registered
