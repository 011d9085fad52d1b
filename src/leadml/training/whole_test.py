"""The test metrics of a training on Spark over its whole test window: the window's older
leads, which the driver did not keep (:mod:`leadml.data.spark_history`), are read back in
chunks from where the cluster spilled them in time order, validated as the kept leads were
(the same export time for a horizon), scored by the trained model, and put before the kept
leads' scores; the metrics, their bootstrap intervals, the calibration table and the bands
are then computed by the same functions as any training's. Memory stays that of a chunk.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config import TrainConfig
from leadml.data.schema import History, validate_history
from leadml.errors import LeadDataError
from leadml.training.fit import TrainResult
from leadml.training.metrics import band_table, bootstrap_intervals, calibration_table, metrics

logger = logging.getLogger(__name__)

CHUNK = 200_000
NOTHING_LEFT = ("every lead is still open", "every lead is younger than horizon_days")


def older_scores(result: TrainResult, cfg: TrainConfig, history: History, folder: Path,
                 outcomes: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """(outcomes, probabilities, times) of the leads spilled in ``folder``, in time order."""
    import pyarrow.parquet as pq

    ds = cfg.dataset
    pinned = cfg if history.as_of is None else cfg.model_copy(update={
        "dataset": ds.model_copy(update={"as_of": history.as_of.to_pydatetime()})})
    features = list(ds.columns.features)
    ys, ps, times = [], [], []
    for part in sorted(Path(folder).glob("part-*.parquet")):
        for batch in pq.ParquetFile(part).iter_batches(batch_size=CHUNK):
            raw = batch.to_pandas()
            try:
                found = validate_history(raw, pinned, outcomes)
            except LeadDataError as exc:
                if str(exc).startswith(NOTHING_LEFT):
                    continue
                raise
            ys.append(found.target)
            ps.append(result.model.predict_proba(found.features[features])[:, 1])
            times.append(found.time)
    if not ys:
        return np.array([], dtype=int), np.array([]), pd.Series([], dtype=object)
    return np.concatenate(ys), np.concatenate(ps), pd.concat(times, ignore_index=True)


def over_whole_window(result: TrainResult, cfg: TrainConfig, history: History, folder: Path,
                      outcomes: pd.DataFrame | None) -> TrainResult:
    """``result`` with its test metrics, intervals, calibration table, bands and test
    window counted over the whole test window: the older leads in ``folder`` and the kept
    ones. The kept leads' predictions (``X_test``, ``p_test``) stay what importances, the
    uncalibrated metrics and the report's charts read."""
    y_old, p_old, t_old = older_scores(result, cfg, history, folder, outcomes)
    y = np.concatenate([y_old, result.y_test])
    p = np.concatenate([p_old, result.p_test])
    kept = result.windows["test"]
    bins = cfg.evaluation.calibration_bins
    logger.info("test metrics over the whole test window: %d older leads read back from "
                "the cluster and %d kept", len(y_old), kept.rows)
    whole = dataclasses.replace(
        kept, rows=len(y), conversions=int(y.sum()),
        first_time=str(t_old.iloc[0]) if len(t_old) else kept.first_time)
    return dataclasses.replace(
        result, windows={**result.windows, "test": whole},
        test_metrics=metrics(y, p, bins=bins),
        intervals=bootstrap_intervals(y, p, n=cfg.evaluation.bootstrap, seed=cfg.model.seed),
        calibration=calibration_table(y, p, bins), bands=band_table(y, p, cfg.evaluation.bands))

