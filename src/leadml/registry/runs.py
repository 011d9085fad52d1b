"""Scoring and backtest runs recorded in MLflow, beside the training runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leadml.registry import store
from leadml.training.metrics import score_distribution_figure


def log_scoring(manifest: dict[str, Any], *, experiment: str = "leadml-scoring",
                configured_uri: str | None = None) -> str:
    """Record a scoring run (counts, label and grade mix, model version) as an MLflow run."""
    import mlflow

    uri = store.tracking_uri(configured_uri)
    client = store.client(uri)
    experiment_id = store.experiment_id(client, experiment, uri)
    name = (f"score {Path(str(manifest['input']['path'])).name} with "
            f"{manifest['model']['name']} v{manifest['model']['version']}")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        mlflow.set_tags({"leadml.stage": "score", "leadml.status": manifest["status"]})
        mlflow.log_params({
            "model_name": manifest["model"]["name"],
            "model_version": manifest["model"]["version"],
            "rules_sha256": manifest["rules"]["sha256"],
            "input_sha256": manifest["input"]["sha256"],
            "input_path": manifest["input"]["path"],
            "scored_at": manifest["scored_at"],
        })
        mlflow.log_metrics({
            "rows": manifest["input"]["rows"], "scored": manifest["scored"],
            "rejected": manifest["rejected"], "reject_rate": manifest["reject_rate"],
            **{f"label_{k}": v for k, v in manifest["labels"].items()},
            **{f"grade_{k}": v for k, v in manifest["grades"].items()},
            **{k: v for k, v in manifest["timings"].items()},  # names end in _seconds
            **({"qualification_rate": manifest["qualification_rate"]}
               if manifest.get("qualification_rate") is not None else {}),
            **{f"expected_conversions_{k}": v["expected_conversions"]
               for k, v in (manifest.get("by_label") or {}).items()
               if "expected_conversions" in v},
        })
        dist = manifest.get("score_distribution")
        if dist and dist.get("p50") is not None:
            _log_score_distribution(dist, manifest)
        mlflow.log_dict(manifest, "manifest.json")
        return run.info.run_id


def _log_score_distribution(dist: dict[str, Any], manifest: dict[str, Any]) -> None:
    """The run's scores: percentiles and band counts as metrics, the mean probability,
    and the bar chart."""
    import matplotlib.pyplot as plt
    import mlflow

    expected = sum(v.get("expected_conversions", 0.0)
                   for v in (manifest.get("by_label") or {}).values())
    mlflow.log_metrics({
        **{f"score_{k}": dist[k] for k in ("p10", "p50", "p90")},
        **{f"score_band_{band.replace('-', '_')}": n for band, n in dist["bands"].items()},
        **({"mean_probability": expected / manifest["scored"]} if manifest["scored"] else {}),
    })
    fig = score_distribution_figure(dist, title=f"Scores of {manifest['scored']:,} leads")
    mlflow.log_figure(fig, "score_distribution.png")
    plt.close(fig)


def log_backtest(bt, cfg, files: list[Path], *, start: float, window: float,
                 end: float = 1.0) -> str:
    """Record a backtest as an MLflow run: pooled metrics per drift method, per-window
    metrics as steps, the tables and the plot. Returns the run id."""
    import mlflow

    uri = store.tracking_uri(cfg.registry.tracking_uri)
    client = store.client(uri)
    experiment_id = store.experiment_id(client, cfg.registry.experiment, uri)
    source = Path(cfg.dataset.source_name).name
    name = (f"backtest {source}: {len(bt.windows['window'].unique())} windows of "
            f"{window:.0%} from {start:.0%} to {end:.0%}")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        mlflow.set_tags({"leadml.stage": "backtest"})
        mlflow.log_params({"backtest_start": start, "backtest_window": window,
                           "backtest_end": end,
                           "drift_method": bt.configured, "config_sha256": cfg.sha256})
        if cfg.source:
            mlflow.log_artifact(str(cfg.source), "config")
        for row in bt.pooled.to_dict(orient="records"):
            mlflow.log_metrics({f"pooled_{row['method']}_{k}": float(v) for k, v in row.items()
                                if k not in ("method", "leads")})
        for row in bt.windows.to_dict(orient="records"):
            mlflow.log_metrics({f"window_{row['method']}_{k}": float(row[k])
                                for k in ("roc_auc", "log_loss", "brier", "ece",
                                          "positive_rate", "mean_probability")},
                               step=int(row["window"]))
        for path in files:
            mlflow.log_artifact(str(path), "backtest")
        return run.info.run_id


def log_monitoring(mon, folder: Path | None, *, experiment: str = "leadml-monitoring") -> str:
    """Record a monitoring pass: per period, the realised and predicted rates and the
    errors as metrics (step = the period's order), alerts as a tag, the page and JSON."""
    import mlflow

    uri = store.tracking_uri()
    client = store.client(uri)
    experiment_id = store.experiment_id(client, experiment, uri)
    periods = len(mon.periods)
    name = (f"monitor {periods} {mon.by}{'s' if periods != 1 else ''}, "
            f"{len(mon.alerts)} alert{'s' if len(mon.alerts) != 1 else ''}")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        mlflow.set_tags({"leadml.stage": "monitor", "leadml.alerts": str(len(mon.alerts))})
        keys = ("scored", "matured", "realised_rate", "predicted_rate",
                "calibration_in_the_large", "ece", "roc_auc", "qualification_rate",
                "sql_over_nurture", "estimated_conversions_unmatured")
        for step, row in enumerate(mon.periods.to_dict("records")):
            model = row["model"].replace(" ", "_")
            mlflow.log_metrics({f"{model}_{k}": float(row[k]) for k in keys
                                if row[k] is not None and row[k] == row[k]}, step=step)
        if folder is not None:
            for name in ("monitor.json", "monitor.html", "periods.csv"):
                if (folder / name).exists():
                    mlflow.log_artifact(str(folder / name), "monitor")
        return run.info.run_id
