"""Helpers shared by CLI commands: opening the database from the Settings built by the callback."""

from __future__ import annotations

import typer

from genemill.config import Settings
from genemill.store.db import Database

__all__ = ["open_database", "settings_of"]


def settings_of(ctx: typer.Context) -> Settings:
    """The Settings the app callback built (walks up to the root context)."""
    root = ctx.find_root()
    settings: Settings = root.obj
    return settings


def open_database(ctx: typer.Context, *, migrate: bool = True) -> Database:
    """Open (and by default migrate) the configured database."""
    settings = settings_of(ctx)
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    if migrate:
        db.migrate()
    return db
