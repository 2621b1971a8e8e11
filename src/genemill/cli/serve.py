"""`genemill serve`: run the web site and JSON API with uvicorn on the configured database."""

from __future__ import annotations

from typing import Annotated

import typer

from genemill.cli.common import open_database, settings_of

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the experiment search, pages and the /v1 JSON API."""
    import uvicorn

    from genemill.server import create_app
    from genemill.store.search import reindex_missing

    settings = settings_of(ctx)
    db = open_database(ctx)
    with db.session() as session:
        indexed = reindex_missing(session)
    if indexed:
        typer.echo(f"indexed {indexed} experiment(s) for search")
    typer.echo(f"genemill on http://{host}:{port}/ (API: http://{host}:{port}/v1)")
    uvicorn.run(create_app(settings, db=db), host=host, port=port, log_level="info")
