"""The ``dataset`` table: a stored dataset request, its state and the files it produced.

Kept in ``genemill.datasets`` (one schema: ``Base`` comes from ``genemill.store.models``); the table
is created by Alembic revision ``0002`` without importing this module.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import DateTime, Enum, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from genemill.store.models import Base, utcnow

__all__ = ["Dataset", "DatasetState"]


class DatasetState(enum.StrEnum):
    """Life of a stored dataset."""

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"  # built, but its files outlived Settings.dataset_lifetime_days and were removed


def _new_id() -> str:
    return str(uuid.uuid4())


class Dataset(Base):
    """A dataset request (``spec`` = ``DatasetSpec.to_dict()``) and, once built, its files.

    ``files``: ``[{"format", "path", "size_in_bytes", "sha256"}]``; ``summary``: samples, exclusions,
    matrices and KS result of the last successful build.
    """

    __tablename__ = "dataset"
    __table_args__ = (Index("ix_dataset_state", "state"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[DatasetState] = mapped_column(
        Enum(
            DatasetState,
            name="datasetstate",
            native_enum=False,
            length=32,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=DatasetState.CREATED,
    )
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(128))
    files: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
