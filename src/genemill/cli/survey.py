"""`genemill import | add | list | show | jobs`: get experiments in and look at them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from genemill.cli.common import open_database, settings_of
from genemill.pipeline.jobs import RunSummary
from genemill.pipeline.survey import add_accession, import_files
from genemill.store import queries
from genemill.store.models import Job

console = Console()

__all__ = ["register"]


def _report(summary: RunSummary) -> None:
    for target in summary.succeeded:
        console.print(f"[green]done[/] {target}")
    for target, reason in summary.failed:
        console.print(f"[red]failed[/] {target}: {reason}", soft_wrap=True)
    if summary.failed:
        raise typer.Exit(code=2)


def import_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="SOFT, series matrix, MINiML or MAGE-TAB IDF files.")],
) -> None:
    """Import experiments from metadata files (offline). Re-importing is idempotent."""
    settings = settings_of(ctx)
    db = open_database(ctx)
    summary = import_files(settings, db, paths)
    with db.session() as session:
        for job in session.query(Job).filter(Job.kind == "import").order_by(Job.id):
            if job.params.get("path") in {str(p.resolve()) for p in paths} and job.state == "SUCCEEDED":
                console.print(f"imported {Path(job.params['path']).name} ({job.target[:19]}…)")
    _report(summary)
    with db.session() as session:
        _total, experiments = queries.list_experiments(session)
        _print_experiments(experiments)


def add_command(
    ctx: typer.Context,
    accessions: Annotated[
        list[str],
        typer.Argument(
            help="GEO series (GSE…), ArrayExpress (E-…), "
            "or SRA/ENA study (SRP…, ERP…, DRP…, PRJNA…, PRJEB…, PRJDB…)."
        ),
    ],
) -> None:
    """Survey public accessions online: download their metadata and store it."""
    settings = settings_of(ctx)
    db = open_database(ctx)
    for accession in accessions:
        _report(add_accession(settings, db, accession))


def list_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 100,
    offset: Annotated[int, typer.Option(help="Rows to skip.")] = 0,
) -> None:
    """List stored experiments."""
    db = open_database(ctx)
    with db.session() as session:
        total, experiments = queries.list_experiments(session, limit=limit, offset=offset)
        _print_experiments(experiments)
        console.print(f"{total} experiment(s)")


def _print_experiments(experiments: list[Any]) -> None:
    table = Table("Accession", "Title", "Samples", "Processed", "Technology")
    for e in experiments:
        table.add_row(
            e.accession, e.title[:70], str(e.num_total_samples), str(e.num_processed_samples), e.technology
        )
    console.print(table)


def _field(label: str, value: Any, missing: str) -> None:
    text = value if value not in (None, "", []) else f"[italic]{missing}[/]"
    if isinstance(text, list):
        text = ", ".join(str(v) for v in text)
    console.print(f"[bold]{label}:[/] {text}", soft_wrap=True, highlight=False)


def show_command(
    ctx: typer.Context,
    accession: Annotated[str, typer.Argument(help="Experiment accession (or an alternate one).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")] = False,
) -> None:
    """Show an experiment page: fields, platforms, counts and the sample table."""
    db = open_database(ctx)
    with db.session() as session:
        data = queries.experiment_dict(queries.get_experiment(session, accession))
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    _print_experiment(data)


def _print_experiment(data: dict[str, Any]) -> None:
    _field("Accession", data["accession_code"], "No accession")
    _field("Title", data["title"], "No Title.")
    _field("Organism", data["organism_names"], "No associated organism")
    _field("Downloadable Samples", data["num_downloadable_samples"], "0")
    _field("Technology", data["technology"], "No associated technology")
    _field("Platform", data["platform_names"], "No associated platform")
    _field("Platform Accession Codes", data["platform_accession_codes"], "None")
    _field("Submitter Supplied Information", data["description"], "No description")
    _field("PubMed ID", data["pubmed_id"], "No associated PubMed ID")
    _field("Publication Title", data["publication_title"], "No associated publication")
    _field("Total Samples", data["num_total_samples"], "0")
    _field("Processed Samples", data["num_processed_samples"], "0")
    _field("Submitter's Institution", data["submitter_institution"], "No associated institution")
    _field("Authors", data["publication_authors"], "No associated authors")
    _field("Source Repository", f"{data['source_database']} {data['source_url']}", "None")
    _field("Alternate Accession IDs", data["alternate_accession_codes"], "None")
    _field("First Published", data["source_first_published"], "Unknown")
    _print_processing(data)
    columns = data["sample_metadata"]
    table = Table(
        "Accession Code", "Title", *[c.replace("_", " ").capitalize() for c in columns], "Processing"
    )
    for sample in data["samples"]:
        state = sample["processing_state"]
        if sample["unprocessable_reason"]:
            state += f": {sample['unprocessable_reason']}"
        table.add_row(
            sample["accession_code"],
            sample["title"][:40],
            *[_cell(sample, c) for c in columns],
            state,
        )
    console.print(table)


def _print_processing(data: dict[str, Any]) -> None:
    """One line per current processing result: pipeline, samples, gene mapping counts."""
    seen: dict[int, tuple[dict[str, Any], int]] = {}
    for sample in data["samples"]:
        for result in sample["results"]:
            entry = seen.setdefault(result["id"], (result, 0))
            seen[result["id"]] = (entry[0], entry[1] + 1)
    for result, count in seen.values():
        processor = result["processor"]
        console.print(
            f"[bold]Processing:[/] {processor['name']} {processor['version']} ({result['mode']}), "
            f"{count} sample(s), parameters {result['parameters']}",
            soft_wrap=True,
            highlight=False,
        )
        for platform, report in sorted(result["annotations"].get("platforms", {}).items()):
            console.print(
                f"  {platform}: {report['n_mapped']} of {report['n_input_ids']} ids mapped to "
                f"{report['n_genes']} Ensembl genes, {report['n_unmapped']} unmapped, "
                f"{report['n_ambiguous']} ambiguous, {report['n_control']} AFFX controls dropped "
                f"({report['annotation_release']})",
                soft_wrap=True,
                highlight=False,
            )


def _cell(sample: dict[str, Any], column: str) -> str:
    value = sample.get(column)
    if column == "age" and value is not None:
        return f"{value:.4g} y ({sample['age_value']:g} {sample['age_unit']})"
    return "" if value is None else str(value)


def jobs_command(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option(help="Only jobs in this state (QUEUED, RUNNING, SUCCEEDED, FAILED).")
    ] = None,
) -> None:
    """List durable jobs with their state, attempts and errors."""
    db = open_database(ctx)
    table = Table("Id", "Kind", "Target", "State", "Attempts", "Error")
    with db.session() as session:
        query = session.query(Job).order_by(Job.id)
        if state:
            query = query.filter(Job.state == state.upper())
        for job in query:
            table.add_row(
                str(job.id),
                job.kind,
                job.target[:40],
                job.state.value,
                str(job.attempts),
                (job.error or "")[:80],
            )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("import")(import_command)
    app.command("add")(add_command)
    app.command("list")(list_command)
    app.command("show")(show_command)
    app.command("jobs")(jobs_command)
