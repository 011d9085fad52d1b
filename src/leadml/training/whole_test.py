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
from leadml.training.metrics import (
    band_table,
    bootstrap_intervals,
    calibration_table,
    importance_sample,
    metrics,
)

logger = logging.getLogger(__name__)

CHUNK = 200_000
NOTHING_LEFT = ("every lead is still open", "every lead is younger than horizon_days")


def _parts(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("part-*.parquet"))


def older_scores(result: TrainResult, cfg: TrainConfig, history: History, folder: Path,
                 outcomes: pd.DataFrame | None, wanted: np.ndarray | None = None):
    """(outcomes, probabilities, times, and the features of the leads at positions
    ``wanted``) of the leads spilled in ``folder``, in time order (``wanted``: sorted
    positions among them; None: none picked)."""
    import pyarrow.parquet as pq

    ds = cfg.dataset
    pinned = cfg if history.as_of is None else cfg.model_copy(update={
        "dataset": ds.model_copy(update={"as_of": history.as_of.to_pydatetime()})})
    features = list(ds.columns.features)
    ys, ps, times, picked, seen = [], [], [], [], 0
    wanted = np.array([], dtype=int) if wanted is None else wanted
    for part in _parts(folder):
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
            here = wanted[(wanted >= seen) & (wanted < seen + len(found.target))] - seen
            picked.append(found.features[features].iloc[here])
            seen += len(found.target)
    if not ys:
        return (np.array([], dtype=int), np.array([]), pd.Series([], dtype=object),
                pd.DataFrame(columns=features))
    return (np.concatenate(ys), np.concatenate(ps), pd.concat(times, ignore_index=True),
            pd.concat(picked, ignore_index=True))


def over_whole_window(result: TrainResult, cfg: TrainConfig, history: History, folder: Path,
                      outcomes: pd.DataFrame | None) -> TrainResult:
    """``result`` with its test metrics, intervals, calibration table, bands and test
    window counted over the whole test window: the older leads in ``folder`` and the kept
    ones, and the importances' sample drawn from the whole window. The kept leads'
    predictions (``X_test``, ``p_test``) stay what the uncalibrated metrics and the report's
    charts read."""
    import pyarrow.parquet as pq

    n_old = sum(pq.ParquetFile(part).metadata.num_rows for part in _parts(folder))
    sample = importance_sample(n_old + len(result.y_test), cfg.model.seed)
    if sample is None:
        sample = np.arange(n_old + len(result.y_test))
    y_old, p_old, t_old, X_old = older_scores(result, cfg, history, folder, outcomes,
                                              sample[sample < n_old])
    y = np.concatenate([y_old, result.y_test])
    # the importances read the leads the local engine's importances read: the same seeded
    # sample of the whole window (every older lead was labelled on the cluster: n_old)
    importance_leads = None
    if len(y_old) == n_old:
        newer = sample[sample >= n_old] - n_old
        features = list(cfg.dataset.columns.features)
        importance_leads = (pd.concat([X_old, result.X_test[features].iloc[newer]],
                                      ignore_index=True), y[sample])
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
        calibration=calibration_table(y, p, bins), bands=band_table(y, p, cfg.evaluation.bands),
        importance_leads=importance_leads)

