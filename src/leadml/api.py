"""leadml from Python: train, audit, score and explain with DataFrames.

The same jobs as the command line, for notebooks and schedulers that call Python. Every
function here is importable from ``leadml`` itself::

    import leadml

    trained = leadml.train_model("pipelines/configs/sample.yaml")  # or data=a DataFrame
    model = leadml.load_model()  # the champion
    scored = leadml.score_leads(tonight, model, rules="pipelines/configs/bant.yaml")
    scored.leads  # the scored-lead columns
    leadml.explain_leads(tonight.head(5), model)  # why, per field

Scoring a DataFrame goes through exactly the code ``leadml score`` runs on a file (the frame
is written to a temporary Parquet file and scored there), so a lead gets the same
probability, label and reasons either way, and every row is accounted for: it is in
``scored.leads`` or, with its reason, in ``scored.rejects``.

The model a run registered is never refitted in place: :meth:`LeadModel.fit` raises, and
``sklearn.base.clone`` of the registered object gives one whose ``fit`` raises too. Train a
new version with :func:`train_model`.

docs/api.md walks through it; its examples run as tests.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadml.config import Rules, TrainConfig

__all__ = ["LeadModel", "Scored", "Trained", "audit_leads", "explain_leads", "load_config",
           "load_model", "load_rules", "sample_leads", "score_leads", "train_model"]

PathLike = str | os.PathLike


def load_config(config: PathLike | dict | TrainConfig) -> TrainConfig:
    """A validated training config from a YAML file, a dict of the same keys, or as is.

    >>> cfg = load_config({"dataset": {"id_column": "lead_id", "target": {"column": "won"},
    ...                                "columns": {"numeric": ["budget"]}}})
    >>> cfg.dataset.columns.features, cfg.dataset.source_name
    (['budget'], 'the leads DataFrame')
    """
    from leadml import config as _config

    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        try:
            return TrainConfig.model_validate(config)
        except Exception as exc:  # pydantic's ValidationError, said as the YAML loader says it
            raise _config.ConfigError(f"the config dict is not valid: {exc}") from None
    return _config.load_config(config)


def load_rules(rules: PathLike | Rules | None = None) -> Rules:
    """The BANT rules from a YAML file (``None``: the rules shipped with leadml).

    >>> load_rules().label_policy.sales_qualified.min_probability
    0.25
    """
    from leadml.config import default_rules
    from leadml.config import load_rules as _load

    if isinstance(rules, Rules):
        return rules
    return default_rules() if rules is None else _load(rules)


def sample_leads(rows: int = 20_000, *, seed: int = 42, nightly_rows: int = 2_000
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A generated lead history (with outcomes) and a nightly file of new leads: the
    sample ``leadml sample`` writes and ``pipelines/configs/sample.yaml`` describes.

    >>> history, tonight = sample_leads(1_000, seed=1, nightly_rows=10)
    >>> len(history), len(tonight), "converted" in tonight
    (1000, 10, False)
    """
    from leadml.setup.synthetic import make_sample

    return make_sample(rows, seed=seed, nightly_rows=nightly_rows)


# --- models --------------------------------------------------------------------------------

class LeadModel:
    """A registered leadml model: raw lead columns in, calibrated probability out.

    ``predict_proba`` reads leads as exported (numbers may be text; placeholders such as
    "Select" count as missing); ``contract`` says what the model expects; the training
    run's report data (metrics, importances, value insights, test-window predictions) are
    read from MLflow when first asked for.
    """

    def __init__(self, estimator, contract, *, uri: str):
        self.estimator = estimator
        self.contract = contract
        self.uri = uri

    @property
    def name(self) -> str:
        return self.contract.name

    @property
    def version(self) -> str:
        return self.contract.version

    @property
    def features(self) -> list[str]:
        return list(self.contract.features)

    def __repr__(self) -> str:
        return f"LeadModel({self.name} v{self.version}, {len(self.features)} fields)"

    def fit(self, *args, **kwargs):
        raise TypeError(f"{self!r} is a registered model and is not refitted in place: "
                        "train a new version with leadml.train_model(config) (or leadml train)")

    def predict_proba(self, leads: pd.DataFrame) -> np.ndarray:
        """The probability that each lead converts (within the model's horizon)."""
        from leadml.data.schema import require_columns
        from leadml.scoring.chunks import typed_features

        require_columns(list(leads.columns), self.features, what="the leads",
                        fix=f"{self!r} reads {self.features}.")
        return self.estimator.predict_proba(typed_features(leads, self.contract))[:, 1]

    @cached_property
    def _report(self) -> tuple[dict[str, Any], pd.DataFrame]:
        from leadml.registry import report_inputs

        return report_inputs(self.uri)

    @property
    def metrics(self) -> dict[str, float]:
        """Test-window metrics of the training run (ROC AUC, log loss, Brier, ECE, lift)."""
        return dict(self._report[0]["metrics"])

    @property
    def importances(self) -> pd.DataFrame:
        """Permutation importance per field on the test window, most important first."""
        return pd.DataFrame(self._report[0]["importances"])

    @property
    def insights(self) -> pd.DataFrame:
        """Conversion rate and lift per value of each field, over the training history."""
        return pd.DataFrame(self._report[0]["insights"])

    @property
    def test_predictions(self) -> pd.DataFrame:
        """The test window's outcome ``y`` and predicted probability ``p``, per lead."""
        return self._report[1]

    @property
    def report_data(self) -> dict[str, Any]:
        """Everything the HTML report shows, as logged with the training run."""
        return self._report[0]


def load_model(model: str | None = None, *, name: str = "leadml") -> LeadModel:
    """A registered model: ``models:/<name>@champion`` by default, or any model URI
    (``models:/leadml/3``, ``models:/leadml@challenger``) or exported folder."""
    from leadml.registry import load_scoring_model, resolve_model_uri

    uri = resolve_model_uri(model, name)
    estimator, contract = load_scoring_model(uri)
    return LeadModel(estimator, contract, uri=uri)


def _model(model: LeadModel | str | None) -> LeadModel:
    return model if isinstance(model, LeadModel) else load_model(model)


# --- training ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trained:
    """What :func:`train_model` made: the registered version and the fit behind it."""

    name: str
    version: str
    uri: str  # models:/<name>/<version>
    run_id: str
    promoted: bool  # now the champion
    decision: str  # why (or why not) it was promoted
    metrics: dict[str, float]  # test window
    result: Any  # leadml.training.fit.TrainResult: windows, candidates, calibration, importances

    def load(self) -> LeadModel:
        """This version as :func:`load_model` gives it."""
        return load_model(self.uri)


def train_model(config: PathLike | dict | TrainConfig, data: pd.DataFrame | None = None, *,
                outcomes: pd.DataFrame | None = None, rules: PathLike | Rules | None = None,
                force_promote: bool = False, engine: str = "local",
                spark_master: str | None = None, spark_conf: dict[str, str] | None = None,
                source: str | None = None) -> Trained:
    """Audit, fit, calibrate, evaluate, log to MLflow, register and (when it beats the
    champion on the newest leads) promote, as ``leadml train`` does.

    ``config``: a training config (YAML path, dict or :class:`~leadml.config.TrainConfig`).
    ``data``: the lead history as a DataFrame, instead of the config's ``dataset.path``
    (``outcomes`` likewise for an outcomes table). ``engine="spark"``: read the history
    (the config's, or ``source``: any URI Spark reads) on Spark, the driver holding the newest
    leads of each window (docs/spark.md); ``spark_master`` and ``spark_conf`` as the CLI's
    ``--spark-master`` and ``--spark-conf``. Raises
    :class:`~leadml.errors.LeadDataError` when the audit finds a leak, too few leads or
    repeated ids, with each problem and its fix.
    """
    from leadml import jobs

    spark = jobs.spark_engine(engine, master=spark_master, source=source,
                              conf=tuple(f"{k}={v}" for k, v in (spark_conf or {}).items()))
    result, reg = jobs.train(load_config(config), force_promote=force_promote,
                             rules=load_rules(rules) if rules is not None else None,
                             data=data, outcomes=outcomes, spark=spark)
    return Trained(name=reg.name, version=reg.version, uri=reg.uri, run_id=reg.run_id,
                   promoted=reg.promoted, decision=reg.decision,
                   metrics=dict(result.test_metrics), result=result)


def audit_leads(config: PathLike | dict | TrainConfig, data: pd.DataFrame | None = None, *,
                outcomes: pd.DataFrame | None = None, engine: str = "local",
                spark_master: str | None = None, spark_conf: dict[str, str] | None = None,
                source: str | None = None):
    """The pre-training audit (:class:`~leadml.data.audit.Audit`): leaks, maturity, health and
    drift per column. ``audit.blocking`` lists what would stop :func:`train_model`;
    ``audit.table()`` prints every column. ``engine="spark"`` as for :func:`train_model`
    (the audit is then of the leads a training on Spark keeps)."""
    from leadml import jobs

    spark = jobs.spark_engine(engine, master=spark_master, source=source,
                              conf=tuple(f"{k}={v}" for k, v in (spark_conf or {}).items()))
    report, _ = jobs.audit(load_config(config), data=data, outcomes=outcomes, spark=spark)
    return report


# --- scoring -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scored:
    """Scored leads (the scored-lead columns, in input order), the rows that could not be
    scored with their reasons, and the run's manifest (counts per label and grade, the
    model and rules used). ``len(leads) + len(rejects)`` is the number of input rows."""

    leads: pd.DataFrame
    rejects: pd.DataFrame
    manifest: dict[str, Any]


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns pyarrow cannot store as one type (text mixed with numbers) become text, as
    they would be in a CSV export; missing stays missing."""
    import pyarrow as pa

    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            try:
                pa.array(out[col], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # (2**70: text)
                out[col] = out[col].map(lambda v: v if v is None or v != v else str(v))
    return out


def score_leads(leads: pd.DataFrame, model: LeadModel | str | None = None, *,
                rules: PathLike | Rules | None = None, reasons: bool = True,
                scored_at: str | None = None, max_reject_rate: float = 1.0) -> Scored:
    """Score a DataFrame of leads as ``leadml score`` scores a file: probability, score,
    grade, BANT flags, label and reasons per lead.

    ``model``: a :class:`LeadModel`, a model URI, or ``None`` for the champion. ``rules``:
    the BANT rules file (default: the rules shipped with leadml). A row that cannot be
    scored (no id, a repeated id, a number that is not one) is returned in
    ``Scored.rejects`` with its reason; set ``max_reject_rate`` below 1 to raise
    :class:`~leadml.errors.TooManyRejects` instead when more than that share is rejected.
    """
    from leadml.errors import LeadDataError
    from leadml.scoring.chunks import score_file
    from leadml.scoring.settings import ScoreSettings

    if not isinstance(leads, pd.DataFrame):
        raise TypeError(f"leads must be a pandas DataFrame, got {type(leads)}")
    names = pd.Index([str(c) for c in leads.columns])  # 1 and "1" are one column in a file
    repeated = sorted(set(names[names.duplicated()]))
    if repeated:
        raise LeadDataError(f"the leads have repeated column names {repeated}: rename or drop "
                            "the copies")
    leads = leads.set_axis([str(c) for c in leads.columns], axis=1)
    from leadml.registry import axes_in_points

    chosen = _model(model)
    ruleset = axes_in_points(load_rules(rules), chosen.estimator, chosen.contract)
    with tempfile.TemporaryDirectory(prefix="leadml-score-") as tmp:
        source, target = Path(tmp, "leads.parquet"), Path(tmp, "scored.parquet")
        settings = ScoreSettings(reasons=reasons, scored_at=scored_at,
                                 max_reject_rate=max_reject_rate,
                                 rejects=Path(tmp, "scored.rejects.parquet"))
        _arrow_safe(leads.reset_index(drop=True)).to_parquet(source, index=False)
        try:
            manifest = score_file(source, target, model=chosen.estimator,
                                  contract=chosen.contract, rules=ruleset, settings=settings)
        except LeadDataError as exc:  # name the frame, not the temporary files it went to
            said = (str(exc).replace(str(settings.rejects), "the rejects (returned in "
                                     "Scored.rejects with max_reject_rate=1.0)")
                    .replace(f"'{source}'", "the leads DataFrame")
                    .replace(str(source), "the leads DataFrame"))
            raise type(exc)(said) from None
        scored = pd.read_parquet(target)
        rejects = pd.read_parquet(settings.rejects)
    rejects = rejects.assign(row=pd.to_numeric(rejects["record"]).astype("int64") - 1)
    manifest = {k: v for k, v in manifest.items() if k not in ("input", "output", "rejects")}
    return Scored(leads=scored, rejects=rejects[["row", "lead_id", "reason"]],
                  manifest=manifest)


def explain_leads(leads: pd.DataFrame, model: LeadModel | str | None = None, *,
                  points: str = "contributions") -> pd.DataFrame:
    """Why each lead scores as it does: its probability, the typical lead's, the reasons a
    salesperson reads (every field that moved it by half a point or more, not only the top
    three), and one column per field in probability points.

    ``points="contributions"`` (default): each field's share of the lead's distance from
    the typical lead; they add up (typical + every field = the lead's probability), as the
    scored file's reasons do. ``points="what_if"``: how far the probability would move if
    that one field alone took the typical lead's value; each is exact on its own, but they
    do not add up (fields act together)."""
    from leadml.data.schema import require_columns
    from leadml.errors import ConfigError, LeadDataError
    from leadml.explain.effects import Explainer, remainder_slot, sentences
    from leadml.scoring.chunks import typed_features

    if points not in ("contributions", "what_if"):
        raise ConfigError(f"points must be 'contributions' or 'what_if', got {points!r}")

    chosen = _model(model)
    contract = chosen.contract
    if contract.reference_lead is None:
        raise LeadDataError(f"{chosen!r} has no reference lead (trained before reasons "
                            "existed); retrain it")
    require_columns(list(leads.columns), chosen.features, what="the leads",
                    fix=f"{chosen!r} reads {chosen.features}.")
    typed = typed_features(leads, contract)
    explainer = Explainer(chosen.estimator, contract.reference_lead)
    p, typical, contributions = explainer.contributions(typed)
    effects = contributions if points == "contributions" else explainer.effects(typed)[1]
    ids = leads[contract.id_column].astype(str).to_numpy() \
        if contract.id_column in leads else np.arange(1, len(leads) + 1).astype(str)
    words = sentences(typed, contributions, top=len(chosen.features),
                      missing_values=contract.missing_values)
    rest = remainder_slot(contributions, top=len(chosen.features))
    if rest is not None:
        words = [f"{w}; {r}" if w and r else w or r or ""
                 for w, r in zip(words, rest.to_pylist(), strict=True)]
    return pd.concat([pd.DataFrame({"lead_id": ids, "conversion_probability": p,
                                    "typical_probability": typical, "reasons": words},
                                   index=effects.index),
                      (100 * effects).round(2)], axis=1).reset_index(drop=True)
