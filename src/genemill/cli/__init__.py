"""genemill's command line (Typer): thin commands that call one library function each.

Errors are mapped to exit codes here, in one table: InputError 2, NotFoundError 3,
SourceError 4, ProcessingError 5, StoreError 6, other GenemillError 1.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from genemill.config import Settings, load_settings
from genemill.errors import (
    GenemillError,
    InputError,
    NotFoundError,
    ProcessingError,
    SourceError,
    StoreError,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="genemill",
    help="Turn public gene-expression experiments into validated, comparable gene-level data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

_EXIT_CODES: list[tuple[type[GenemillError], int]] = [
    (InputError, 2),
    (NotFoundError, 3),
    (SourceError, 4),
    (ProcessingError, 5),
    (StoreError, 6),
    (GenemillError, 1),
]


@app.callback()
def _configure(ctx: typer.Context) -> None:
    """Build Settings once from $GENEMILL_HOME/config.toml and GENEMILL_* variables."""
    ctx.obj = load_settings()


def settings_of(ctx: typer.Context) -> Settings:
    """The Settings built by the callback."""
    settings: Settings = ctx.obj
    return settings


def _register() -> None:
    from genemill.cli import dataset, db, process, reference, rnaseq, serve, survey

    app.add_typer(db.app, name="db")
    app.add_typer(dataset.app, name="dataset")
    app.add_typer(reference.app, name="reference")
    app.command("serve")(serve.serve)
    survey.register(app)
    app.command("process")(process.process_command)
    app.command("import-cel")(process.import_cel_command)
    app.command("run")(process.run_command)
    app.command("import-fastq")(rnaseq.import_fastq_command)
    app.command("import-quant")(rnaseq.import_quant_command)


def main() -> None:
    """Entry point: run the app and turn genemill errors into messages and exit codes."""
    _register()
    # httpx logs full URLs at INFO, which would put the NCBI API key in logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        app()
    except GenemillError as exc:
        code = next(code for cls, code in _EXIT_CODES if isinstance(exc, cls))
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(code)
