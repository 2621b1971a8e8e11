"""`genemill import-fastq` and `genemill import-quant`: your own RNA-seq files as a private experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from genemill.cli.common import open_database, settings_of
from genemill.pipeline.rnaseq_private import (
    ReferenceFiles,
    RnaSeqOutcome,
    create_fastq_experiment,
    create_quant_experiment,
    pair_fastqs,
    process_rnaseq_experiment,
)
from genemill.pipeline.salmon import MIN_MAPPING_RATE
from genemill.store import queries
from genemill.store.db import Database

console = Console()
OptionalPath = Path | None

__all__ = ["import_fastq_command", "import_quant_command"]


def _process(
    ctx: typer.Context, accession: str, *, allow_low_mapping: bool, threads: int | None
) -> RnaSeqOutcome:
    settings = settings_of(ctx)
    db = open_database(ctx)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("processing", total=None)

        def report(text: str, done: int, total: int) -> None:
            progress.update(task, description=text, completed=done, total=total)

        outcome = process_rnaseq_experiment(
            settings, db, accession, allow_low_mapping=allow_low_mapping, threads=threads, progress=report
        )
    _print_samples(db, accession, outcome)
    return outcome


def _print_samples(db: Database, accession: str, outcome: RnaSeqOutcome) -> None:
    table = Table("Sample", "State", "Mapping rate", "Library", "k", "Reason")
    with db.session() as session:
        for sample in queries.get_experiment(session, accession).samples:
            salmon = (sample.qc or {}).get("salmon") or {}
            rate = salmon.get("mapping_rate")
            table.add_row(
                sample.accession,
                sample.processing_state.value,
                "" if rate is None else f"{rate:.1%}",
                str(salmon.get("library_type") or ""),
                str(salmon.get("k") or ""),
                outcome.refused.get(sample.accession, ""),
            )
    console.print(table)
    console.print(f"{len(outcome.processed)} processed, {len(outcome.refused)} refused ({accession})")
    if not outcome.processed:
        raise typer.Exit(code=5)


def import_fastq_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="FASTQ files (.gz ok); mates named _1/_2 or R1/R2.")],
    title: Annotated[str, typer.Option(help="Title of the private experiment.")],
    transcripts: Annotated[OptionalPath, typer.Option(help="Transcript FASTA for the Salmon index.")] = None,
    genome: Annotated[OptionalPath, typer.Option(help="Genome FASTA (with --gtf) to cut from.")] = None,
    gtf: Annotated[OptionalPath, typer.Option(help="GTF: tx2gene (+ exons for --genome).")] = None,
    tx2gene: Annotated[OptionalPath, typer.Option(help="Two-column transcript/gene table.")] = None,
    organism: Annotated[
        str | None,
        typer.Option(help="Scientific name, e.g. 'Homo sapiens' (alone: its registered reference)."),
    ] = None,
    reference_key: Annotated[
        str, typer.Option("--reference", help="Key of a reference from `genemill reference list`.")
    ] = "",
    source: Annotated[str, typer.Option(help="Annotation source, e.g. Ensembl.")] = "",
    release: Annotated[str, typer.Option(help="Annotation release, e.g. 110.")] = "",
    assembly: Annotated[str, typer.Option(help="Genome assembly, e.g. GRCh38.")] = "",
    paired: Annotated[
        bool | None, typer.Option("--paired/--single", help="Require mate pairs / every file single-end.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Salmon threads (default: all cores).")] = None,
    allow_low_mapping: Annotated[
        bool,
        typer.Option(
            "--allow-low-mapping", help=f"Keep runs mapping below {MIN_MAPPING_RATE:.0%} (flagged in QC)."
        ),
    ] = False,
) -> None:
    """Quantify your own FASTQ runs with Salmon + tximport, as refine.bio does for SRA runs."""
    settings = settings_of(ctx)
    db = open_database(ctx)
    runs = pair_fastqs(paths, paired=paired)
    reference = ReferenceFiles(
        key=reference_key,
        transcripts=transcripts,
        genome=genome,
        gtf=gtf,
        tx2gene=tx2gene,
        source=source,
        release=release,
        assembly=assembly,
    )
    with console.status("storing FASTQ files and the transcriptome reference"):
        accession = create_fastq_experiment(
            settings, db, runs, title=title, reference=reference, organism=organism
        )
    layouts = ", ".join(f"{run.name} ({len(run.reads)} file(s))" for run in runs)
    console.print(f"stored {len(runs)} run(s) as private experiment {accession}: {layouts}", soft_wrap=True)
    _process(ctx, accession, allow_low_mapping=allow_low_mapping, threads=threads)


def import_quant_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Salmon output folders or quant.sf(.gz) files.")],
    title: Annotated[str, typer.Option(help="Title of the private experiment.")],
    tx2gene: Annotated[Path, typer.Option(help="Transcript/gene table (two columns, either order) or GTF.")],
    organism: Annotated[str | None, typer.Option(help="Scientific name, e.g. 'Danio rerio'.")] = None,
    allow_low_mapping: Annotated[
        bool,
        typer.Option(
            "--allow-low-mapping", help=f"Keep runs mapping below {MIN_MAPPING_RATE:.0%} (when known)."
        ),
    ] = False,
) -> None:
    """Summarise existing Salmon quantifications to genes (tximport) as a private experiment."""
    settings = settings_of(ctx)
    db = open_database(ctx)
    with console.status("storing quantification files"):
        accession = create_quant_experiment(
            settings, db, paths, title=title, tx2gene=tx2gene, organism=organism
        )
    console.print(f"stored {len(paths)} quantification(s) as private experiment {accession}")
    _process(ctx, accession, allow_low_mapping=allow_low_mapping, threads=None)
