"""`genemill db`: create or upgrade the database schema."""

from __future__ import annotations

import typer

from genemill.cli.common import open_database

app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create or upgrade the schema (Alembic migrations) in GENEMILL_DATABASE_URL."""
    db = open_database(ctx, migrate=True)
    typer.echo(f"schema ready in {db.engine.url.render_as_string(hide_password=True)}")
