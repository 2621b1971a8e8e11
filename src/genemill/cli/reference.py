"""`genemill reference add | list`: transcriptome references and their Salmon indexes.

A reference registered here is what ``genemill import-fastq --organism …`` and ``genemill process``
(public SRA runs) quantify against when no transcript FASTA is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genemill.cli.common import settings_of
from genemill.pipeline.salmon_index import (
    LONG_K,
    SHORT_K,
    ensure_index,
    list_indexes,
    list_references,
    register_reference,
)

__all__ = ["app"]

app = typer.Typer(help="Transcriptome references (Salmon indexes) for RNA-seq runs.", no_args_is_help=True)
console = Console()
OptionalPath = Path | None


@app.command("add")
def add_command(
    ctx: typer.Context,
    organism: Annotated[str, typer.Option(help="Scientific name, e.g. 'Homo sapiens'.")],
    transcripts: Annotated[OptionalPath, typer.Option(help="Transcript FASTA (.gz ok).")] = None,
    genome: Annotated[OptionalPath, typer.Option(help="Genome FASTA (with --gtf).")] = None,
    gtf: Annotated[OptionalPath, typer.Option(help="GTF: tx2gene (+ exons for --genome).")] = None,
    tx2gene: Annotated[OptionalPath, typer.Option(help="Two-column transcript/gene table.")] = None,
    source: Annotated[str, typer.Option(help="Annotation source, e.g. Ensembl.")] = "",
    release: Annotated[str, typer.Option(help="Annotation release, e.g. 110.")] = "",
    assembly: Annotated[str, typer.Option(help="Genome assembly, e.g. GRCh38.")] = "",
    kmer: Annotated[
        list[int] | None,
        typer.Option("--k", help=f"k-mer sizes to index (default {LONG_K} and {SHORT_K}, as refine.bio)."),
    ] = None,
    build: Annotated[bool, typer.Option("--build/--no-build", help="Build the Salmon indexes now.")] = True,
    threads: Annotated[int, typer.Option(help="salmon index threads.")] = 1,
) -> None:
    """Register a transcriptome (transcript FASTA, or genome FASTA + GTF) and build its Salmon indexes."""
    settings = settings_of(ctx)
    if transcripts is None and genome is None:
        msg = "give a transcript FASTA (--transcripts) or a genome FASTA with a GTF (--genome, --gtf)"
        raise typer.BadParameter(msg)
    with console.status("registering the reference"):
        reference = register_reference(
            settings,
            transcripts=transcripts,
            genome=genome,
            gtf=gtf,
            tx2gene=tx2gene,
            organism=organism,
            source=source,
            release=release,
            assembly=assembly,
        )
    console.print(
        f"reference {reference.key[:16]}: {reference.organism}, {reference.n_transcripts} transcripts",
        soft_wrap=True,
    )
    sizes = (kmer or [LONG_K, SHORT_K]) if build else []
    for k in sizes:
        with console.status(f"salmon index k={k}"):
            index = ensure_index(settings, reference, k=k, threads=threads)
        state = "cached" if index.cached else f"built in {index.build_seconds:.1f} s"
        console.print(f"index {index.path.name} (k={k}, salmon {index.salmon_version}): {state}")


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """List registered references and their built indexes (one line each, newest first)."""
    settings = settings_of(ctx)
    references = list_references(settings)
    for reference in references:
        about = ", ".join(p for p in (reference.source, reference.release, reference.assembly) if p)
        size = "tx2gene only" if reference.n_transcripts is None else f"{reference.n_transcripts} transcripts"
        indexes = list_indexes(settings, reference)
        built = ", ".join(f"k={index.k} (salmon {index.salmon_version})" for index in indexes) or "none"
        typer.echo(
            f"{reference.key[:16]}  {reference.organism or 'organism not given'}  "
            f"{about or 'source not given'}  {size}  indexes: {built}"
        )
    if not references:
        typer.echo("no references registered (genemill reference add)")
