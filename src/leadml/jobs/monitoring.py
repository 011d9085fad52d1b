"""The monitoring job: how scored leads converted as their outcomes matured, with alerts;
and the outcomes both it and :mod:`~leadml.jobs.recalibration` read."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadml.data.tables import (
    cells_as_json,
    write_json,
    write_table,
    write_text,
    written_together,
)
from leadml.errors import ConfigError, LeadDataError
from leadml.monitoring.alerts import Thresholds
from leadml.monitoring.monitor import Reference, mature, summarize
from leadml.monitoring.outcomes import (
    NEGATIVE_VALUES,
    POSITIVE_VALUES,
    read_input,
    read_outcomes,
    read_scored,
)
from leadml.monitoring.page import render
from leadml.monitoring.statistics import field_bins, quantile_reference
from leadml.registry import load_scoring_model, log_monitoring

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutcomeSource:
    """Where the outcomes of scored leads are, and how a conversion is recorded.

    ``final``: every lead the table lists has its final outcome (won or lost, none still
    open), for outcomes without a horizon. ``min_matched``: the share of scored leads
    whose outcome is due that the table must list, else the job stops (a table of other
    leads, or ids written differently, would read as leads that never converted)."""

    path: str | Path
    id_column: str = "lead_id"
    converted_at_column: str | None = None
    converted_column: str | None = None
    positive_values: tuple[str, ...] = POSITIVE_VALUES
    negative_values: tuple[str, ...] = NEGATIVE_VALUES
    time_format: str = "iso"
    delimiter: str = ","
    final: bool = False
    min_matched: float = 0.5

    def __post_init__(self) -> None:
        if (self.converted_at_column is None) == (self.converted_column is None):
            raise ConfigError("say how the outcomes table records a conversion: "
                              "--converted-at-column (a time) or --converted-column (a "
                              "flag), one of them")
        if not 0 <= self.min_matched <= 1:
            raise ConfigError(f"--min-matched must be between 0 and 1, got {self.min_matched}")

    def read(self) -> pd.DataFrame:
        return read_outcomes(self.path, id_column=self.id_column,
                             converted_at=self.converted_at_column,
                             converted=self.converted_column,
                             positive_values=self.positive_values,
                             negative_values=self.negative_values,
                             time_format=self.time_format, delimiter=self.delimiter)


def matured_leads(scored_paths, outcomes: OutcomeSource, *, horizon_days: float | None,
             as_of: str | None):
    """(the scored runs, every scored lead with ``matured`` and ``converted``, horizon,
    as-of time)."""

    scored = read_scored(scored_paths)
    if horizon_days is None:
        stated = {h for h in scored.runs["horizon_days"] if h is not None}
        horizon_days = max(stated) if stated else None
    if horizon_days is None and not outcomes.final:
        raise ConfigError(
            "the model has no horizon and none was given, so nothing says when a scored "
            "lead's outcome is known: an open lead would count as lost. Pass --horizon-days "
            "N (a lead's outcome is known N days after it was scored), or --outcomes-final "
            "when every lead the outcomes table lists is closed (won or lost, none open)")
    when = pd.Timestamp(as_of) if as_of else pd.Timestamp.now(tz="UTC")
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    table = outcomes.read()
    frame = mature(scored.leads, table, horizon_days=horizon_days, as_of=when)
    _check_matched(frame, table, outcomes, horizon_days=horizon_days, as_of=when)
    early = frame.loc[frame["converted_before_scoring"], "lead_id"]
    if len(early):
        logger.warning(
            "%d scored lead(s) had converted more than a day before they were scored (%s): "
            "left out of the realised rates; a nightly file should hold open leads only "
            "(check the export's filter)", len(early), ", ".join(map(str, early.iloc[:3])))
    return scored, frame, horizon_days, when


def _check_matched(frame: pd.DataFrame, table: pd.DataFrame, outcomes: OutcomeSource, *,
                   horizon_days: float | None, as_of: pd.Timestamp) -> None:
    """Stop (exit 3) when the outcomes table lists too few of the scored leads whose
    outcome is due: its ids are not these leads' ids."""
    if horizon_days is None:
        due = frame
        floor = 1 / max(len(frame), 1)  # final outcomes of some leads: at least one
    else:
        due = frame[frame["scored_at"] + pd.Timedelta(days=horizon_days) <= as_of]
        floor = outcomes.min_matched
    ids = due["lead_id"].drop_duplicates()
    if len(ids) == 0:
        return
    listed = ids.isin(table["lead_id"])
    if listed.mean() >= floor:
        return
    unlisted = ids[~listed].head(3).tolist()
    raise LeadDataError(
        f"{int(listed.sum()):,} of the {len(ids):,} scored leads whose outcome is due are in "
        f"'{outcomes.path}' ({listed.mean():.1%}; --min-matched asks {floor:.0%}), which lists "
        f"{len(table):,} lead(s): scored ids such as {unlisted} are not in its "
        f"'{outcomes.id_column}' column, which holds ids such as "
        f"{table['lead_id'].head(3).tolist()}. Check --id-column and that the table is the "
        "outcomes of these leads (every lead, converted or not); a table of conversions only "
        "needs --min-matched 0")


def monitor(scored_paths, outcomes: OutcomeSource, *, output: Path | None = None,
            by: str = "run", horizon_days: float | None = None, as_of: str | None = None,
            thresholds=None, log_to_mlflow: bool = True):
    """Realised against predicted conversion of past scoring runs
    (:mod:`leadml.monitoring.monitor`):
    writes ``monitor.json``, ``periods.csv`` and ``monitor.html`` to ``output`` and logs an
    MLflow run. ``thresholds``: a :class:`~leadml.monitoring.alerts.Thresholds` or its fields as a
    dict. Returns the :class:`~leadml.monitoring.monitor.Monitoring`."""

    if by not in ("run", "week"):
        raise ConfigError(f"--by must be run or week, got {by!r}")
    if output is not None and output.exists() and not output.is_dir():
        raise ConfigError(f"--output '{output}' is a file: monitor writes a folder "
                          "(monitor.html, monitor.json, periods.csv); choose another name")
    scored, frame, horizon, when = matured_leads(scored_paths, outcomes,
                                            horizon_days=horizon_days, as_of=as_of)

    references, contracts = {}, {}
    for model, name, version in scored.runs[["model", "model_name", "model_version"]] \
            .drop_duplicates().itertuples(index=False):
        try:
            contracts[model] = load_scoring_model(f"models:/{name}/{version}")[1]
        except Exception as exc:  # a model exported or deleted since: no drift shown
            logger.warning("no reference for %s (%s): score and input drift not shown",
                           model, str(exc)[:200])
            continue
        c = contracts[model]
        references[model] = Reference(
            score=c.score_reference or quantile_reference(c.reference_quantiles),
            fields=c.field_reference, unseen=c.unseen_reference)
    bins = []
    for model, facts in zip(scored.runs["model"], scored.runs["input"], strict=True):
        contract = contracts.get(model)
        leads = read_input(facts) if contract and contract.field_reference else None
        bins.append(None if leads is None else field_bins(
            leads, contract.field_reference, contract.missing_values,
            decimal=facts.get("decimal") or contract.decimal,
            thousands=facts.get("thousands", contract.thousands)))
    scored.runs["input_bins"] = bins
    if isinstance(thresholds, dict):
        thresholds = Thresholds(**thresholds)
    result = summarize(frame, scored.runs, by=by, thresholds=thresholds or Thresholds(),
                           references=references)
    distinct = frame["lead_id"].nunique()
    note = (f"{distinct:,} leads scored in {len(scored.runs)} run(s)"
            + (f" ({len(frame) - distinct:,} of the scorings repeat a lead)"
               if len(frame) > distinct else "") + "; outcomes from "
            f"{outcomes.path} as of {when:%Y-%m-%d %H:%M} UTC; "
            + (f"a lead matures {horizon:g} days after it was scored"
               if horizon else "a lead counts once the outcomes table lists it (no horizon)")
            + (f"; {early:,} scored lead(s) had converted before they were scored: left "
               "out" if (early := int(frame["converted_before_scoring"].sum())) else "")
            + (f"; skipped: {'; '.join(scored.skipped)}" if scored.skipped else ""))
    result.note = note
    if output is not None:
        with written_together(output) as staging:
            write_json({**result.to_dict(), "note": note, "horizon_days": horizon,
                        "as_of": str(when)}, staging / "monitor.json")
            write_table(cells_as_json(result.periods), staging / "periods.csv")
            write_text(render(result, title="leadml monitoring: realised against predicted",
                              note=note), staging / "monitor.html")
    if log_to_mlflow:

        result.run_id = log_monitoring(result, output)
    return result
