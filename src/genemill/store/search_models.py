"""Tables of the public read side: API tokens and the experiment search index.

* ``api_token``: a key that, once activated (terms of use accepted), unlocks downloads. Only the
  sha256 of the key is stored; the key itself is shown once, to whoever created it.
* ``experiment_search``: one row per experiment with the denormalized summary a result card needs
  (organisms, platforms, harmonized fields present) and, on PostgreSQL, the weighted ``tsvector``
  (title A, authors and accessions B, description and institution C, sample text D) behind a GIN
  index. On SQLite the text index is the FTS5 virtual table ``experiment_fts`` (created by the
  migration, written by :mod:`genemill.store.search`); ``document`` stays NULL there.
* ``experiment_facet``: one row per experiment and facet value (organism, technology, platform,
  has_publication) with that value's downloadable and total sample counts, so facet counts are one
  grouped sum instead of a join over every sample.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from genemill.store.models import Base, utcnow

__all__ = ["ApiToken", "ExperimentFacet", "ExperimentSearch"]


class ApiToken(Base):
    """An API key; downloads need one whose terms of use were accepted (``is_activated``)."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    is_activated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ExperimentSearch(Base):
    """Search summary of one experiment (rebuilt by ``search.reindex_experiment``)."""

    __tablename__ = "experiment_search"
    __table_args__ = (Index("ix_experiment_search_updated_at", "updated_at"),)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True
    )
    organism_names: Mapped[list[Any]] = mapped_column(default=list)
    downloadable_organism_names: Mapped[list[Any]] = mapped_column(default=list)
    platform_accession_codes: Mapped[list[Any]] = mapped_column(default=list)
    platform_names: Mapped[list[Any]] = mapped_column(default=list)
    sample_metadata_fields: Mapped[list[Any]] = mapped_column(default=list)
    document: Mapped[str | None] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ExperimentFacet(Base):
    """Samples of one experiment carrying one facet value (e.g. platform GPL96)."""

    __tablename__ = "experiment_facet"
    # WITHOUT ROWID on SQLite: rows are stored in primary-key order, so the per-match lookup of an
    # experiment's facet rows reads one b-tree instead of an index and then the table.
    __table_args__ = (
        Index("ix_experiment_facet_value", "facet", "value", "experiment_id"),
        {"sqlite_with_rowid": False},
    )
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True
    )
    facet: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    downloadable_samples: Mapped[int] = mapped_column(Integer, default=0)
    total_samples: Mapped[int] = mapped_column(Integer, default=0)
