"""The ``leadml`` command line: thin commands, and the one place errors become exit codes.

Exit codes (for schedulers):

==  =========================================================
0   success
1   unexpected internal error (a bug: please report it)
2   bad arguments or config file
3   input data does not match the config or the model
4   too many rejected rows (``leadml score --max-reject-rate``)
5   model not found or not loadable, or the registry failed (training: the new version is
    registered but not promoted)
6   an output could not be written (read-only folder, full disk); nothing was left behind
7   ``leadml monitor`` crossed an alert threshold (the conversion rate moved, calibration
    error, score drift, unseen values): the outputs are written; page someone
8   the MLflow tracking server does not answer (within ``LEADML_TRACKING_TIMEOUT`` seconds,
    default 10); nothing was changed
143 stopped by SIGTERM (temporaries removed, the manifest says ``failed: interrupted``)
==  =========================================================
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from leadml import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Predict which sales leads will convert, calibrated and explained.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"leadml {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """Predict which sales leads will convert, calibrated and explained."""

EXIT_OK, EXIT_INTERNAL, EXIT_CONFIG, EXIT_DATA, EXIT_REJECTS, EXIT_MODEL = 0, 1, 2, 3, 4, 5
EXIT_OUTPUT, EXIT_ALERT, EXIT_TRACKING = 6, 7, 8


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False)
        fmt = "%(message)s"
    else:  # cron, CI, log files: plain, timestamped lines
        handler = logging.StreamHandler()
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("leadml").setLevel(level)


def _fail(code: int, message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _run(job):
    """Run ``job()`` and turn each known failure into its exit code and a clear message."""
    from leadml.errors import (
        ConfigError,
        LeadDataError,
        ModelUnavailableError,
        OutputError,
        TooManyRejects,
        TrackingServerDownError,
    )
    from leadml.process import on_sigterm

    on_sigterm()
    try:
        return job()
    except TrackingServerDownError as exc:
        raise _fail(EXIT_TRACKING, str(exc)) from None
    except TooManyRejects as exc:
        raise _fail(EXIT_REJECTS, str(exc)) from None
    except OutputError as exc:
        raise _fail(EXIT_OUTPUT, str(exc)) from None
    except ConfigError as exc:
        raise _fail(EXIT_CONFIG, str(exc)) from None
    except LeadDataError as exc:
        raise _fail(EXIT_DATA, str(exc)) from None
    except ModelUnavailableError as exc:
        raise _fail(EXIT_MODEL, str(exc)) from None
    except typer.Exit:
        raise
    except Exception as exc:  # the last line of defence: say it is a bug, keep the trace
        logging.getLogger("leadml").exception("internal error")
        raise _fail(EXIT_INTERNAL, f"internal error: {exc!r}") from None


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]
ModelUri = Annotated[str | None, typer.Option(
    "--model", help="Model URI; default models:/<--model-name>@champion.")]
ModelName = Annotated[str | None, typer.Option("--model-name", help=(
    "Registered model name; default: the one --config registers, else leadml."))]
NameConfig = Annotated[Path | None, typer.Option("--config", "-c", help=(
    "The training config of the model: the name it registers (registry.model_name) is the "
    "model used, unless --model-name or --model says otherwise."))]
TrainEngine = Annotated[str, typer.Option(help=(
    "local, or spark (pip install 'leadml[spark]'): the history read on Spark and reduced on "
    "the cluster to the newest leads of each window (docs/spark.md)."))]
SparkMaster = Annotated[str | None, typer.Option(help=(
    "Spark master URL with --engine spark; default local[*]."))]
SparkConf = Annotated[list[str] | None, typer.Option(help=(
    "Spark setting KEY=VALUE with --engine spark (repeatable), e.g. "
    "spark.driver.memory=4g."))]
SparkInput = Annotated[str | None, typer.Option("--input", help=(
    "With --engine spark: the history at this URI (s3a://, abfss://, hdfs://, a folder of "
    "Parquet parts) instead of the config's dataset.path."))]


def _tracking_first(model: str | Path | None = None, configured: str | None = None) -> None:
    """Name a tracking server that does not answer (exit 8) before the heavy imports and
    the data, so a hung server is reported within LEADML_TRACKING_TIMEOUT; nothing to
    check for a model read from a folder."""
    if model is not None and Path(model).is_dir():
        return
    from leadml.registry.store import check_reachable, tracking_uri

    check_reachable(tracking_uri(configured))


def _model_name(model_name: str | None, config: Path | None) -> str:
    """--model-name, else the name --config registers, else leadml."""
    if model_name:
        return model_name
    if config is not None:
        from leadml.config import load_config

        return load_config(config).registry.model_name
    return "leadml"


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Folder for leads.csv and nightly.csv.")],
    rows: Annotated[int, typer.Option(min=1, help="Leads in the history.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 42,
    nightly_rows: Annotated[int | None, typer.Option(
        min=1, help="Leads in nightly.csv (default: rows / 10).")] = None,
    export_style: Annotated[str, typer.Option(help=(
        "clean: the tidy sample (leads.csv with outcomes and true probabilities). crm: a "
        "CRM export as it comes (newest first, day-first dates, an outcomes table with "
        "unmatured conversions, latest-state and deal-table leaks, placeholders, no budget "
        "or timeline) plus a first train.yaml listing every column."))] = "clean",
    verbose: Verbose = False,
) -> None:
    """Write a synthetic lead history (with the true probabilities) and a nightly file."""
    _setup_logging(verbose)

    def job():
        from leadml import jobs
        from leadml.errors import ConfigError

        if export_style not in ("clean", "crm"):
            raise ConfigError(f"--export-style must be clean or crm, got {export_style!r}")
        if export_style == "crm":
            made = jobs.sample_crm(out, rows=rows, seed=seed,
                                   nightly_rows=nightly_rows or max(1, rows // 10))
            typer.echo(f"wrote {made['leads']} leads (newest first) to {out / 'leads.csv'}, "
                       f"{made['conversions_known']} conversions known at export time to "
                       f"{out / 'outcomes.csv'}, {made['nightly']} new leads to "
                       f"{out / 'nightly.csv'}, and a first config {out / 'train.yaml'}: "
                       f"try leadml audit --config {out / 'train.yaml'}")
            return
        history, nightly = jobs.sample(out, rows=rows, seed=seed,
                                       nightly_rows=nightly_rows or max(1, rows // 10))
        typer.echo(f"wrote {len(history)} leads to {out / 'leads.csv'} "
                   f"({history['converted'].mean():.1%} converted) and {len(nightly)} "
                   f"new leads to {out / 'nightly.csv'}")

    _run(job)


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Training config (YAML).")],
    force_promote: Annotated[bool, typer.Option(
        help="Make this version the champion whatever the comparison says.")] = False,
    rules: Annotated[Path | None, typer.Option(help=(
        "The team's BANT rules YAML, for the grade cut-offs of the report logged with the "
        "run; default: the rules shipped with leadml."))] = None,
    engine: TrainEngine = "local",
    spark_master: SparkMaster = None,
    spark_conf: SparkConf = None,
    source: SparkInput = None,
    verbose: Verbose = False,
) -> None:
    """Train, calibrate, evaluate, log to MLflow, register, and promote if better."""
    _setup_logging(verbose)

    def job():
        from leadml import jobs
        from leadml.config import load_config, load_rules

        cfg = load_config(config)
        _tracking_first(configured=cfg.registry.tracking_uri)
        ruleset = load_rules(rules) if rules else None
        spark = jobs.spark_engine(engine, master=spark_master, conf=tuple(spark_conf or ()),
                                  source=source)
        result, reg = jobs.train(cfg, force_promote=force_promote, rules=ruleset, spark=spark)
        m, ci = result.test_metrics, result.intervals
        typer.echo("\ncandidates (fitted on the train window, ranked on the calibration window):")
        for row in result.leaderboard[:10]:
            settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in row["settings"].items())
            typer.echo(f"  {row['rank']:>2}. {row['name']:<26} ROC AUC "
                       f"{row['calibration_window_roc_auc']:.4f}  {row['seconds']:5.1f}s  "
                       f"{settings}{'  <- chosen' if row['chosen'] else ''}")
        if len(result.leaderboard) > 10:
            typer.echo(f"  ... {len(result.leaderboard) - 10} more in the run's child runs")
        typer.echo(f"\nmodel: {result.kind}, calibrated with {result.calibration_method}")
        typer.echo(f"test window: {result.windows['test'].rows} newest leads, "
                   f"{m['positive_rate']:.1%} converted")
        for key in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_10", "lift_20"):
            lo, hi = ci.get(key, (float("nan"), float("nan")))
            typer.echo(f"  {key:<9} {m[key]:.4f}  (95% CI {lo:.4f} to {hi:.4f})")
        typer.echo(f"registered: {reg.uri} (run {reg.run_id})")
        typer.echo(f"promotion: {reg.decision}")
        where = reg.tracking_uri
        hint = f"open {reg.page(where)}" if where.startswith(("http://", "https://")) \
            else (f"mlflow ui --backend-store-uri {where}\n  then open "
                  f"{reg.page('http://127.0.0.1:5000')}")
        typer.echo(f"tracking store: {where}\n  see it with: {hint}")

    _run(job)


@app.command()
def audit(
    config: Annotated[Path, typer.Option("--config", "-c", help="Training config (YAML).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help=(
        "Audit JSON; default outputs/audit/<config name>.json."))] = None,
    engine: TrainEngine = "local",
    spark_master: SparkMaster = None,
    spark_conf: SparkConf = None,
    source: SparkInput = None,
    verbose: Verbose = False,
) -> None:
    """Check a lead history before training: enough data, leakage, data health, drift.

    Exits 3 when a finding would stop training (leakage in a feature column, too few leads
    or conversions, repeated ids).
    """
    _setup_logging(verbose)

    def job():
        from leadml import jobs
        from leadml.config import load_config
        from leadml.errors import LeadDataError

        spark = jobs.spark_engine(engine, master=spark_master, conf=tuple(spark_conf or ()),
                                  source=source)
        report, path = jobs.audit(load_config(config), output or Path("outputs") / "audit"
                                  / f"{config.stem}.json", spark=spark)
        typer.echo(report.table())
        typer.echo(f"\naudit: {path}")
        if report.blocking:
            raise LeadDataError(f"{len(report.blocking)} finding(s) would stop training "
                                "(marked BLOCKS or REVIEW above)")

    _run(job)


@app.command()
def backtest(
    config: Annotated[Path, typer.Option("--config", "-c", help="Training config (YAML).")],
    start: Annotated[float, typer.Option(min=0.0, max=1.0, help=(
        "Share of the history before the first window."))] = 0.5,
    window: Annotated[float, typer.Option(min=0.0, max=1.0, help=(
        "Share of the history in each window."))] = 0.1,
    end: Annotated[float, typer.Option(min=0.0, max=1.0, help=(
        "Share of the history where the last window ends; choose settings on windows "
        "before your test window (e.g. 0.8) so the test stays unseen."))] = 1.0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help=(
        "Folder for the tables and plot; default outputs/backtest/<config name>."))] = None,
    engine: TrainEngine = "local",
    spark_master: SparkMaster = None,
    spark_conf: SparkConf = None,
    source: SparkInput = None,
    verbose: Verbose = False,
) -> None:
    """Replay history: retrain before each window, score it, compare drift corrections."""
    _setup_logging(verbose)

    def job():
        from leadml import jobs
        from leadml.config import load_config

        spark = jobs.spark_engine(engine, master=spark_master, conf=tuple(spark_conf or ()),
                                  source=source)
        bt, files, run_id = jobs.backtest(
            load_config(config), start=start, window=window, end=end,
            output=output or Path("outputs") / "backtest" / config.stem, spark=spark)
        cols = ["window", "method", "leads", "positive_rate", "mean_probability", "roc_auc",
                "log_loss", "brier", "ece"]
        typer.echo(bt.windows[cols].to_string(index=False, float_format="%.4f"))
        typer.echo("\npooled over every window:")
        typer.echo(bt.pooled.drop(columns=["leads"]).to_string(index=False,
                                                               float_format="%.4f"))
        typer.echo(f"\nconfigured drift method: {bt.configured} ('oracle' knows each "
                   "window's true rate: a bound, not a method)")
        typer.echo(f"files: {files[0].parent}\nMLflow run: {run_id}")

    _run(job)


@app.command()
def score(
    input_path: Annotated[str, typer.Argument(metavar="INPUT", help=(
        "Leads, CSV or Parquet (a file, or a folder of parts); with --engine spark also a "
        "URI such as hdfs://, s3a://, abfss://, gs://, dbfs:/ or file://."))],
    output: Annotated[str, typer.Option("--output", "-o", help=(
        "Scored leads, CSV or Parquet by extension (a URI with --engine spark). Rejects "
        "and manifest go beside it."))],
    model: ModelUri = None,
    model_name: ModelName = None,
    config: NameConfig = None,
    rules: Annotated[Path | None, typer.Option(help=(
        "BANT rules YAML; default: the rules shipped with leadml."))] = None,
    rejects: Annotated[str | None, typer.Option(help=(
        "Rejects file; default OUT stem + .rejects.csv."))] = None,
    max_reject_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help=(
        "Fail (exit 4, no output) when a larger share of rows is rejected."))] = 0.05,
    scored_at: Annotated[str | None, typer.Option(help=(
        "Pin the scored_at timestamp (ISO 8601) for exact reruns."))] = None,
    delimiter: Annotated[str, typer.Option(help="CSV delimiter.")] = ",",
    encoding: Annotated[str, typer.Option(help="CSV encoding.")] = "utf-8",
    decimal: Annotated[str | None, typer.Option(help=(
        "Decimal mark of the numbers, . or , (1.234,5); default: the model's, as in the "
        "export it was trained on; with --rules-only, '.'."))] = None,
    thousands: Annotated[str | None, typer.Option(help=(
        "Thousands separator of the numbers, , . ' or a space (12,500.00); default: the "
        "model's."))] = None,
    chunk_rows: Annotated[int | None, typer.Option(min=1, help=(
        "Rows per chunk (default: about 32 MiB of the input, 1,000 to 50,000 rows)."))
    ] = None,
    log_to_mlflow: Annotated[bool, typer.Option(
        help="Record this scoring run in MLflow.")] = False,
    reasons: Annotated[bool, typer.Option("--reasons/--no-reasons", help=(
        "Per-lead reasons: the fields that raised and lowered each probability most."))
    ] = True,
    engine: Annotated[str, typer.Option(help=(
        "local, or spark (pip install 'leadml[spark]'): the same scoring code per "
        "partition, Parquet output."))] = "local",
    spark_master: Annotated[str | None, typer.Option(help=(
        "Spark master URL with --engine spark; default local[*]."))] = None,
    spark_conf: Annotated[list[str] | None, typer.Option(help=(
        "Spark setting KEY=VALUE with --engine spark (repeatable), e.g. "
        "spark.driver.memory=4g."))] = None,
    rules_only: Annotated[bool, typer.Option(help=(
        "No model: label by the BANT rules alone (until there is enough history to "
        "train); probability, score and grade stay empty."))] = False,
    id_column: Annotated[str, typer.Option(help=(
        "Lead id column, with --rules-only (a model knows its own)."))] = "lead_id",
    writeback: Annotated[str | None, typer.Option(help=(
        "Also write the CRM's import file beside OUT (OUT stem + .PRESET.csv): a preset, "
        "salesforce or hubspot, or a write-back YAML naming the key and fields "
        "(docs/writeback.md)."))] = None,
    verbose: Verbose = False,
) -> None:
    """Score a lead file: probability, score, grade, BANT, label and reasons per lead."""
    _setup_logging(verbose)

    def job():
        name = _model_name(model_name, config)
        if not rules_only:
            _tracking_first(model)
        from leadml import jobs
        from leadml.scoring.settings import ScoreSettings

        request = jobs.ScoreRequest(
            input=input_path, output=output, model=model, model_name=name,
            rules=rules, rules_only=rules_only, id_column=id_column, engine=engine,
            spark_master=spark_master, spark_conf=tuple(spark_conf or ()),
            log_to_mlflow=log_to_mlflow, writeback=writeback)
        settings = ScoreSettings(delimiter=delimiter, encoding=encoding, decimal=decimal,
                                 thousands=thousands,
                                 chunk_rows=chunk_rows, max_reject_rate=max_reject_rate,
                                 scored_at=scored_at, rejects=rejects, reasons=reasons)
        with _progress(Path(input_path)) as advance:
            done = jobs.score(request, settings, on_progress=advance)
        manifest, paths = done.manifest, done.paths
        typer.echo(f"scored {manifest['scored']} of {manifest['input']['rows']} leads "
                   f"({manifest['rejected']} rejected) with {done.using}")
        if manifest["input"].get("footer"):
            typer.echo(f"of them {len(manifest['input']['footer'])} lines of a report footer "
                       f"after the last lead, not leads (outside the reject rate): "
                       f"{manifest['input']['footer'][:2]}")
        typer.echo("labels: " + ", ".join(f"{k} {v}" for k, v in manifest["labels"].items()))
        if manifest["grades"]:
            typer.echo("grades: " + ", ".join(f"{k} {v}" for k, v in manifest["grades"].items()))
        if manifest.get("writeback"):
            wb = manifest["writeback"]
            typer.echo(f"write-back ({wb['preset']}): {wb['rows']} leads by {wb['key']}"
                       + (f", {wb['unkeyed']} without a record id in '{wb['key_column']}' "
                          f"left out (e.g. {wb['unkeyed_examples'][:2]})" if wb["unkeyed"]
                          else "") + f"\n            {paths.writeback}")
        typer.echo(f"output:   {output}\nrejects:  {paths.rejects}\nmanifest: {paths.manifest}")

    _run(job)


@app.command()
def export(
    to: Annotated[Path, typer.Option("--to", help="A new (or empty) folder for the copy.")],
    model: ModelUri = None,
    model_name: ModelName = None,
    config: NameConfig = None,
    verbose: Verbose = False,
) -> None:
    """Copy a registered model to a folder, with its name and version, for a machine
    without the tracking server; score with it by passing --model FOLDER."""
    _setup_logging(verbose)

    def job():
        name = _model_name(model_name, config)
        _tracking_first()
        from leadml.registry import export_model, resolve_model_uri

        facts = export_model(resolve_model_uri(model, name), to)
        typer.echo(f"exported {facts['name']} v{facts['version']} (run {facts['run_id']}) "
                   f"to {to}\nscore with it: leadml score INPUT -o OUT --model {to}")

    _run(job)


@app.command()
def explain(
    lead_file: Annotated[Path, typer.Argument(help="Leads, CSV or Parquet.")],
    model: ModelUri = None,
    model_name: ModelName = None,
    config: NameConfig = None,
    rows: Annotated[int, typer.Option(min=1, help="How many leads to explain.")] = 5,
    delimiter: Annotated[str, typer.Option(help="CSV delimiter.")] = ",",
    rules: Annotated[Path | None, typer.Option(help=(
        "A rules file whose axes section names the fit and engagement fields: shows each "
        "lead's cell and points."))] = None,
    verbose: Verbose = False,
) -> None:
    """Print why the first leads of a file score as they do, for a quick look."""
    _setup_logging(verbose)

    def job():
        name = _model_name(model_name, config)
        from rich.console import Console
        from rich.table import Table

        from leadml import jobs
        from leadml.explain.effects import strongest

        done = jobs.explain(lead_file, model=model, model_name=name, rows=rows,
                            delimiter=delimiter, rules=rules)
        contract, ids, p, typical, points, what_if = (
            done.contract, done.ids, done.p, done.typical, done.points, done.what_if)
        table = Table(title=f"{contract.name} v{contract.version}: why these leads score as "
                      f"they do. Points add up from a typical lead ({typical:.1%}) to each "
                      "lead's probability")
        for col in ("lead", "probability", "raised by", "lowered by", "other fields",
                    "what if (one field alone typical)",
                    *(["fit, engagement"] if done.on_axes else [])):
            table.add_column(col, overflow="fold")
        for i in range(len(ids)):
            up, down = strongest(points.iloc[i])
            rest = float(points.iloc[i].sum()) - sum(v for _, v in up + down)
            alone_up, alone_down = strongest(what_if.iloc[i], top=1)
            table.add_row(ids[i], f"{p[i]:.1%}",
                          "\n".join(f"{f} {100 * v:+.1f}" for f, v in up),
                          "\n".join(f"{f} {100 * v:+.1f}" for f, v in down),
                          f"{100 * rest:+.1f}",
                          "\n".join(f"{f}: {p[i] - v:.1%}"
                                    for f, v in alone_up + alone_down),
                          *([f"{done.on_axes['fit_grade'][i]}"
                             f"{done.on_axes['engagement_level'][i]}: fit "
                             f"{done.on_axes['fit_points'][i]:+.1f}, engagement "
                             f"{done.on_axes['engagement_points'][i]:+.1f}"]
                            if done.on_axes else []))
        Console(width=140).print(table)

    _run(job)


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")],
    model: ModelUri = None,
    model_name: ModelName = None,
    config: NameConfig = None,
    scored: Annotated[Path | None, typer.Option(help=(
        "A file written by leadml score: adds tonight's counts and top 20 leads."))] = None,
    rules: Annotated[Path | None, typer.Option(help=(
        "BANT rules YAML for the grade cut-offs; default: the shipped rules."))] = None,
    verbose: Verbose = False,
) -> None:
    """Write one self-contained HTML report for sales ops (opens offline)."""
    _setup_logging(verbose)

    def job():
        name = _model_name(model_name, config)
        _tracking_first(model)
        from leadml import jobs

        page, contract = jobs.report(output, model=model, model_name=name,
                                     scored=scored, rules=rules)
        typer.echo(f"report: {output} ({len(page) / 1024:,.0f} KiB, {contract.name} "
                   f"v{contract.version})")

    _run(job)


@app.command()
def plan(
    config: Annotated[Path, typer.Option("--config", "-c", help=(
        "The training config of the model (its history gives the test window)."))],
    share: Annotated[list[float] | None, typer.Option(help=(
        "A capacity: the share of each run's leads sales can work (repeat; default 0.05, "
        "0.10 and 0.20)."))] = None,
    rules: Annotated[Path | None, typer.Option(help=(
        "BANT rules YAML (disqualifiers, BANT minimum, value); default: the shipped "
        "rules."))] = None,
    model: ModelUri = None,
    model_name: ModelName = None,
    oracle_column: Annotated[str | None, typer.Option(help=(
        "A column holding each lead's true probability (generated data), to compare "
        "against ranking by the truth."))] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help=(
        "Write the plan as JSON here, and the gain chart beside it (.png)."))] = None,
    verbose: Verbose = False,
) -> None:
    """How many leads to make sales-qualified: conversions captured against capacity on
    the model's test window, the cut-off that fills it, and the rules lines that set it."""
    _setup_logging(verbose)

    def job():
        from rich.console import Console
        from rich.table import Table

        from leadml import jobs
        from leadml.config import load_config, load_rules

        shares = share or [0.05, 0.10, 0.20]
        made = jobs.plan(load_config(config), shares, model=model,
                         model_name=_model_name(model_name, config),
                         rules=load_rules(rules) if rules else None,
                         oracle_column=oracle_column)
        t = made.table
        table = Table(title=f"Capacity plan of {made.model} on its test window "
                            f"({len(made.y):,} leads, {int(made.y.sum()):,} converted)")
        cols = {"capacity_share": "capacity", "sales_qualified": "sales-qualified",
                "conversions_captured": "conversions", "share_of_conversions": "of all",
                "probability_cutoff": "cut-off", "sql_conversion_rate": "SQL converts",
                "expected_sql_conversion_rate": "expected",
                "nurture_conversion_rate": "nurture converts"}
        if "of_oracle" in t:
            cols["of_oracle"] = "of oracle"
        for title in cols.values():
            table.add_column(title, justify="right")
        pct = {"capacity_share", "share_of_conversions", "sql_conversion_rate",
               "expected_sql_conversion_rate", "nurture_conversion_rate", "of_oracle"}
        def cell(c: str, value) -> str:
            if isinstance(value, float) and math.isnan(value):  # an empty group
                return "no leads"
            return f"{value:.1%}" if c in pct else f"{value:.3f}" \
                if c == "probability_cutoff" else f"{int(value):,}"

        for _, r in t.iterrows():
            table.add_row(*[cell(c, r[c]) for c in cols])
        Console(width=140).print(table)
        for s, lines in made.lines.items():
            typer.echo(f"\n# capacity {s:.0%}: paste into the rules file\n{lines}")
        if made.matrix is not None:
            typer.echo("\nFit and engagement on the test window: leads, the share that "
                       "converted (predicted)\n" + "\n".join(made.matrix_lines()))
        if output is not None:
            jobs.write_plan(made, output)
            typer.echo(f"\nplan: {output} and {output.with_suffix('.png')}")

    _run(job)


Scored = Annotated[list[Path], typer.Option(
    "--scored", help=("A file written by leadml score (its manifest beside it), a manifest, or "
                      "a folder of them; repeat for more."))]
Outcomes = Annotated[Path, typer.Option(help=(
    "The outcomes: a CRM export or an outcomes table with the lead id and the conversion "
    "time (--converted-at-column) or a converted flag (--converted-column)."))]
IdColumn = Annotated[str, typer.Option(help="Lead id column of the outcomes table.")]
ConvertedAt = Annotated[str | None, typer.Option(help=(
    "Column holding the conversion time (blank: not converted)."))]
Converted = Annotated[str | None, typer.Option(help="Column holding a converted flag.")]
Positive = Annotated[list[str] | None, typer.Option(
    "--positive-value", help="Values of --converted-column that mean converted (repeat; "
    "default 1, true, yes, y, t).")]
Negative = Annotated[list[str] | None, typer.Option(
    "--negative-value", help="Values of --converted-column that mean not converted (repeat; "
    "default 0, false, no, n, f; an empty value is one too). Any other value stops the job.")]
Final = Annotated[bool, typer.Option(
    "--outcomes-final", help="Every lead the outcomes table lists is closed (won or lost, "
    "none open): needed when neither the model nor --horizon-days gives a horizon.")]
MinMatched = Annotated[float, typer.Option(help=(
    "Stop (exit 3) when the outcomes table lists less than this share of the scored leads "
    "whose outcome is due (0 for a table of conversions only)."))]
TimeFormat = Annotated[str, typer.Option(help=(
    "Format of --converted-at-column: iso, epoch_s, epoch_ms, excel (serial dates) or a "
    "strftime pattern."))]
Horizon = Annotated[float | None, typer.Option(help=(
    "Days after scoring when a lead's outcome is known (default: the model's horizon; "
    "without one, pass --outcomes-final)."))]
AsOf = Annotated[str | None, typer.Option(help="The outcomes' export time (default: now).")]


def _outcome_source(outcomes, id_column, converted_at_column, converted_column,
                    positive_value, negative_value, time_format, delimiter, final,
                    min_matched):
    from leadml.jobs import OutcomeSource

    flags = {k: tuple(v) for k, v in (("positive_values", positive_value),
                                      ("negative_values", negative_value)) if v}
    return OutcomeSource(path=outcomes, id_column=id_column,
                         converted_at_column=converted_at_column,
                         converted_column=converted_column, time_format=time_format,
                         delimiter=delimiter, final=final, min_matched=min_matched, **flags)


@app.command()
def monitor(
    scored: Scored,
    outcomes: Outcomes,
    output: Annotated[Path, typer.Option("--output", "-o", help=(
        "Folder for monitor.html, monitor.json and periods.csv."))] = Path("monitoring"),
    id_column: IdColumn = "lead_id",
    converted_at_column: ConvertedAt = None,
    converted_column: Converted = None,
    positive_value: Positive = None,
    negative_value: Negative = None,
    time_format: TimeFormat = "iso",
    delimiter: Annotated[str, typer.Option(help="Outcomes file delimiter.")] = ",",
    horizon_days: Horizon = None,
    outcomes_final: Final = False,
    min_matched: MinMatched = 0.5,
    as_of: AsOf = None,
    by: Annotated[str, typer.Option(help="Group by scoring 'run' or 'week'.")] = "run",
    min_matured: Annotated[int, typer.Option(help=(
        "Judge a rate on at least this many matured leads (a period, or the newest periods "
        "pooled)."))] = 200,
    max_gap: Annotated[float, typer.Option(help=(
        "Alert when predicted and realised rates differ by this much (or by a quarter of "
        "the predicted rate) and chance does not explain it."))] = 0.03,
    max_ece: Annotated[float, typer.Option(help="Alert at this calibration error.")] = 0.10,
    max_psi: Annotated[float, typer.Option(help=(
        "Alert when probabilities or a field shift by this PSI and chance does not explain "
        "it."))] = 0.10,
    max_unseen: Annotated[float, typer.Option(help=(
        "Alert when this share of a column's values were never seen in training."))] = 0.05,
    alpha: Annotated[float, typer.Option(help=(
        "The chance that a monitor run over leads that did not change raises any alert."))]
    = 0.01,
    verbose: Verbose = False,
) -> None:
    """How scored leads actually converted, per scoring run and model version, as their
    outcomes mature; exit 7 when an alert threshold is crossed."""
    _setup_logging(verbose)

    def job():
        _tracking_first()
        from leadml import jobs

        result = jobs.monitor(scored, _outcome_source(
            outcomes, id_column, converted_at_column, converted_column, positive_value,
            negative_value, time_format, delimiter, outcomes_final, min_matched),
            output=output, by=by, horizon_days=horizon_days,
            as_of=as_of, thresholds={"min_matured": min_matured, "max_gap": max_gap,
                                     "max_ece": max_ece, "max_psi": max_psi,
                                     "max_unseen": max_unseen, "alpha": alpha})
        for row in result.periods.itertuples():
            realised = f"{row.realised_rate:.1%} realised [{row.realised_low:.1%}, " \
                f"{row.realised_high:.1%}] | {row.predicted_rate:.1%} predicted" \
                if row.matured else "not enough outcomes yet (no lead matured)"
            typer.echo(f"{row.period} | {row.model} | {row.scored:,} scored, {row.matured:,} "
                       f"matured | {realised} | "
                       f"estimated {row.estimated_conversions_unmatured:,.1f} conversions among "
                       f"{row.unmatured:,} not matured"
                       + (f" | {row.converted_before_scoring:,} had converted before they "
                          "were scored (left out)" if row.converted_before_scoring else ""))
        typer.echo(f"monitoring: {output / 'monitor.html'} (MLflow run {result.run_id})")
        for alert in result.alerts:
            typer.secho(f"ALERT {alert['message']}", fg=typer.colors.RED, err=True)
        if result.alerts:
            raise typer.Exit(EXIT_ALERT)

    _run(job)


@app.command()
def recalibrate(
    scored: Scored,
    outcomes: Outcomes,
    model_name: ModelName = None,
    config: NameConfig = None,
    id_column: IdColumn = "lead_id",
    converted_at_column: ConvertedAt = None,
    converted_column: Converted = None,
    positive_value: Positive = None,
    negative_value: Negative = None,
    time_format: TimeFormat = "iso",
    delimiter: Annotated[str, typer.Option(help="Outcomes file delimiter.")] = ",",
    horizon_days: Horizon = None,
    outcomes_final: Final = False,
    min_matched: MinMatched = 0.5,
    as_of: AsOf = None,
    holdout: Annotated[float, typer.Option(help=(
        "Newest share of the matured leads held out for the promotion gate."))] = 0.3,
    min_leads: Annotated[int, typer.Option(help="Matured leads needed.")] = 500,
    rules: Annotated[Path | None, typer.Option(help=(
        "The rules file the runs were scored with, to compare the labels (default: the "
        "one the newest run's manifest names, if unchanged)."))] = None,
    verbose: Verbose = False,
) -> None:
    """Refit the champion's rate shift on the leads it scored whose outcomes matured;
    register it as a challenger, promoted when it beats the champion on held-out leads."""
    _setup_logging(verbose)

    def job():
        name = _model_name(model_name, config)
        _tracking_first()
        from leadml import jobs
        from leadml.config import load_config

        done = jobs.recalibrate(scored, _outcome_source(
            outcomes, id_column, converted_at_column, converted_column, positive_value,
            negative_value, time_format, delimiter, outcomes_final, min_matched),
            model_name=name, holdout=holdout,
            min_leads=min_leads, horizon_days=horizon_days, as_of=as_of,
            promotion=load_config(config).promotion if config else None, rules=rules)
        lin = done["lineage"]
        typer.echo(f"{lin['parent']} recalibrated on {lin['leads_fitted']:,} matured leads "
                   f"(realised {lin['fitted_rate']:.1%}, predicted "
                   f"{lin['fitted_predicted_rate']:.1%}); registered as {done['uri']}")
        typer.echo(done["decision"])

    _run(job)


rules_app = typer.Typer(no_args_is_help=True, help="BANT rules files.")
app.add_typer(rules_app, name="rules")


@rules_app.command("init")
def rules_init(
    config: Annotated[Path, typer.Option("--config", "-c", help="Training config (YAML).")],
    output: Annotated[Path, typer.Option("--output", "-o", help=(
        "The rules file to write (never overwritten)."))] = Path("bant.yaml"),
    verbose: Verbose = False,
) -> None:
    """Write a starting BANT rules file from the history's columns, values and outcomes."""
    _setup_logging(verbose)

    def job():
        from leadml import jobs
        from leadml.config import load_config, load_rules

        jobs.rules_init(load_config(config), output)
        rules = load_rules(output)
        left_out = [c for c in ("budget", "authority", "need", "timeline")
                    if c not in rules.configured]
        typer.echo(f"wrote {output}: criteria {rules.configured}" + (
            f", left out (unknown for every lead) {left_out}" if left_out else ""))
        typer.echo("every choice in it is a guess with its numbers as a comment: check them, "
                   f"then score with --rules {output}")

    _run(job)


config_app = typer.Typer(no_args_is_help=True, help="Training config files.")
app.add_typer(config_app, name="config")


@config_app.command("init")
def config_init(
    export: Annotated[Path, typer.Argument(help="The lead export (CSV or Parquet): past "
                                           "leads with their outcomes.")],
    output: Annotated[Path, typer.Option("--output", "-o", help=(
        "The config to write (never overwritten)."))] = Path("train.yaml"),
    target: Annotated[str | None, typer.Option(help=(
        "The outcome column: a converted flag or status, or the conversion time; default: "
        "the one column named like an outcome."))] = None,
    positive_value: Annotated[list[str] | None, typer.Option(help=(
        "A value of the --target column that means converted (repeat it for several)."))
    ] = None,
    outcomes: Annotated[Path | None, typer.Option(help=(
        "A separate table of conversions: the export's lead id and the conversion time."))
    ] = None,
    delimiter: Annotated[str, typer.Option(help="Field delimiter of the export.")] = ",",
    encoding: Annotated[str, typer.Option(help="Text encoding of the export.")] = "utf-8",
    verbose: Verbose = False,
) -> None:
    """Write a first training config for a lead export: id, creation time, outcome and each
    column's role, read from its names and values, every choice commented."""
    _setup_logging(verbose)

    def job():
        from leadml import jobs

        notes = jobs.config_init(export, output, target=target,
                                 positive=tuple(positive_value or ()), outcomes=outcomes,
                                 delimiter=delimiter, encoding=encoding)
        typer.echo(f"wrote {output}: " + "; ".join(notes))
        typer.echo(f"every choice in it is read from names and values, with the reason as a "
                   f"comment: check them, then run leadml audit --config {output}")

    _run(job)


def _progress(path: Path):
    """A rich progress bar on a terminal; plain log lines under cron (with the share done
    and the time left when the size is known)."""
    import time
    from contextlib import contextmanager

    @contextmanager
    def bar():
        if sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            with Progress(SpinnerColumn(), "[progress.description]{task.description}",
                          BarColumn(), "{task.completed:,} rows", TimeElapsedColumn(),
                          TimeRemainingColumn(), transient=True) as p:
                task = p.add_task(f"scoring {path.name}", total=None)
                yield lambda rows, total=None: p.update(task, completed=rows, total=total)
        else:
            log = logging.getLogger("leadml.score")
            started = time.monotonic()

            def line(rows: int, total: int | None = None) -> None:
                if not total:
                    log.info("%d rows read", rows)
                    return
                done = min(rows / total, 1.0)
                left = (time.monotonic() - started) * (1 - done) / done if done else 0.0
                log.info("%d of about %d rows read (%.0f%%), about %.0f s left", rows, total,
                         100 * done, left)

            yield line

    return bar()


if __name__ == "__main__":  # python -m leadml.cli
    app()
