"""`genemill process`: run the processing pipelines on stored experiments."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genemill.cli.common import open_database, settings_of
from genemill.config import Settings
from genemill.pipeline.dask_executor import executor_for
from genemill.pipeline.executors import Executor
from genemill.pipeline.jobs import run_jobs
from genemill.pipeline.private import create_cel_experiment
from genemill.pipeline.process import ProcessRun, process_experiments
from genemill.store.db import Database

console = Console()

__all__ = ["Method", "import_cel_command", "process_command", "run_command"]


class Method(enum.StrEnum):
    """Affymetrix summarization method."""

    RMA = "rma"
    RMA_REFERENCE = "rma-reference"
    MAS5 = "mas5"


WorkersOpt = Annotated[int, typer.Option(help="Worker processes (1 = in this process).")]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(help="Dask scheduler address (tcp://host:8786); default $GENEMILL_SCHEDULER."),
]


def _runner(ctx: typer.Context, workers: int, scheduler: str | None) -> tuple[Settings, Database, Executor]:
    """Settings (with ``--scheduler`` applied), the database and the executor the jobs run on."""
    settings = settings_of(ctx)
    if scheduler:
        settings = settings.model_copy(update={"scheduler": scheduler})
    db = open_database(ctx)
    return settings, db, executor_for(settings, db, workers=workers)


def process_command(
    ctx: typer.Context,
    accessions: Annotated[list[str], typer.Argument(help="Stored experiment accessions.")],
    method: Annotated[
        Method,
        typer.Option(
            help="Affymetrix method for raw CEL files: rma (arrays normalized together, one job per "
            "experiment), rma-reference (each array against its platform's stored RMA reference) or "
            "mas5 (both one job per sample)."
        ),
    ] = Method.RMA,
    force: Annotated[bool, typer.Option("--force", help="Re-process experiments already processed.")] = False,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
) -> None:
    """Process experiments: raw files with genemill's pipelines, else the submitter's tables.

    RMA runs one job per experiment; MAS5 and rma-reference one job per sample (spread over the
    workers or the Dask cluster; a sample that keeps crashing is marked unprocessable and the
    others finish).
    """
    settings, db, executor = _runner(ctx, workers, scheduler)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("processing", total=None)

        def show(finished: int, total: int, message: str) -> None:
            progress.update(task, completed=finished, total=total, description=message)

        try:
            run = process_experiments(
                settings,
                db,
                accessions,
                method=method.value,
                force=force,
                executor=executor,
                on_progress=show,
            )
        finally:
            executor.shutdown()
    # A sample whose job failed is unprocessable (reason shown); only a failed experiment job fails the run.
    if _print_run(run):
        raise typer.Exit(code=5)


def _print_run(run: ProcessRun) -> bool:
    """One line per experiment (per-sample ones with counts and reasons); True when one failed."""
    summary = run.summary
    ran = set(summary.succeeded) | {t for t, _ in summary.failed}
    for code, shape in run.experiments.items():
        if shape == "samples":
            report = run.samples[code]
            line = f"{len(report.processed)} processed, {len(report.refused)} unprocessable"
            if report.pending:
                line += f", {len(report.pending)} pending"
            console.print(f"[green]processed[/] {code} (per sample): {line}")
            for sample, reason in sorted(report.refused.items()):
                console.print(f"  [yellow]unprocessable[/] {sample}: {reason}", soft_wrap=True)
        elif code in summary.succeeded:
            console.print(f"[green]processed[/] {code}")
        elif code not in ran:
            console.print(f"already processed {code} (use --force to redo)")
    failed = [(target, reason) for target, reason in summary.failed if target in run.experiments]
    for target, reason in failed:
        console.print(f"[red]failed[/] {target}: {reason}", soft_wrap=True)
    return bool(failed)


def import_cel_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="CEL files (text v3, XDA v4, Calvin; .gz allowed).")],
    title: Annotated[str, typer.Option(help="Title of the private experiment.")],
    cdf: Annotated[Path | None, typer.Option(help="CDF for these arrays (kept for later runs).")] = None,
    organism: Annotated[str | None, typer.Option(help="Scientific name, e.g. 'Homo sapiens'.")] = None,
    method: Annotated[Method, typer.Option(help="RMA (arrays normalized together) or MAS5.")] = Method.RMA,
) -> None:
    """Process your own CEL files with the same pipeline as public ones (a private experiment)."""
    settings = settings_of(ctx)
    db = open_database(ctx)
    accession = create_cel_experiment(settings, db, paths, title=title, cdf=cdf, organism=organism)
    console.print(f"stored {len(paths)} CEL file(s) as private experiment {accession}")
    process_command(ctx, [accession], method=method, force=True, workers=1, scheduler=None)


def run_command(
    ctx: typer.Context,
    kind: Annotated[list[str] | None, typer.Option(help="Only jobs of this kind (repeatable).")] = None,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
) -> None:
    """Run every queued job (survey, import, process, dataset) until none is left."""
    settings, db, executor = _runner(ctx, workers, scheduler)
    try:
        summary = run_jobs(settings, db, executor=executor, kinds=kind or None)
    finally:
        executor.shutdown()
    console.print(
        f"{len(summary.succeeded)} succeeded, {len(summary.failed)} failed, {summary.retried} retried, "
        f"{summary.recovered} recovered from a stopped run"
    )
    for target, reason in summary.failed:
        console.print(f"[red]failed[/] {target}: {reason}", soft_wrap=True)
    if summary.failed:
        raise typer.Exit(code=5)
