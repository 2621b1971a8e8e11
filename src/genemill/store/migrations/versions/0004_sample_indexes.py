"""Indexes on the sample foreign keys and experiment_sample.sample_id (sample listings, facets).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_experiment_sample_sample_id", "experiment_sample", ["sample_id"])
    op.create_index("ix_sample_organism_id", "sample", ["organism_id"])
    op.create_index("ix_sample_platform_id", "sample", ["platform_id"])


def downgrade() -> None:
    op.drop_index("ix_sample_platform_id", table_name="sample")
    op.drop_index("ix_sample_organism_id", table_name="sample")
    op.drop_index("ix_experiment_sample_sample_id", table_name="experiment_sample")
