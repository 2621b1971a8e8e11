"""API tokens and the experiment search index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 15:00:00

SQLite gets the FTS5 virtual table ``experiment_fts`` (rowid = experiment.id); PostgreSQL gets a
GIN index on ``experiment_search.document`` (a weighted tsvector). Rows are written by
``genemill.store.search.reindex_experiment`` / ``reindex_missing``, never by this migration (it
must not import ORM models that later revisions may change).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FTS_COLUMNS = "accessions, title, authors, description, institution, sample_text"


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("is_activated", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_api_token_key_sha256")),
    )
    op.create_table(
        "experiment_search",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("organism_names", sa.JSON(), nullable=False),
        sa.Column("downloadable_organism_names", sa.JSON(), nullable=False),
        sa.Column("platform_accession_codes", sa.JSON(), nullable=False),
        sa.Column("platform_names", sa.JSON(), nullable=False),
        sa.Column("sample_metadata_fields", sa.JSON(), nullable=False),
        sa.Column("document", sa.Text().with_variant(TSVECTOR(), "postgresql"), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name=op.f("fk_experiment_search_experiment_id_experiment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", name=op.f("pk_experiment_search")),
    )
    op.create_table(
        "experiment_facet",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("facet", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("downloadable_samples", sa.Integer(), nullable=False),
        sa.Column("total_samples", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name=op.f("fk_experiment_facet_experiment_id_experiment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "facet", "value", name=op.f("pk_experiment_facet")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_experiment_facet_value", "experiment_facet", ["facet", "value", "experiment_id"])
    op.create_index("ix_experiment_search_updated_at", "experiment_search", ["updated_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_experiment_search_document", "experiment_search", ["document"], postgresql_using="gin"
        )
    else:
        op.execute(
            f"CREATE VIRTUAL TABLE experiment_fts USING fts5({FTS_COLUMNS}, "
            "tokenize = 'porter unicode61 remove_diacritics 2', prefix = '3')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_experiment_search_document", table_name="experiment_search")
    else:
        op.execute("DROP TABLE IF EXISTS experiment_fts")
    op.drop_index("ix_experiment_search_updated_at", table_name="experiment_search")
    op.drop_index("ix_experiment_facet_value", table_name="experiment_facet")
    op.drop_table("experiment_facet")
    op.drop_table("experiment_search")
    op.drop_table("api_token")
