"""SQLAlchemy 2 ORM models: the one schema shared by SQLite (default) and PostgreSQL.

Graph: Experiment —M2M— Sample —M2M— ProcessingResult —1:N— ComputedFile; Sample —1:N— OriginalFile;
Job rows are the durable queue. Portable types only (JSON, not JSONB), so one migration serves both.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from genemill.harmonize import FIELDS

__all__ = [
    "Base",
    "ComputedFile",
    "Experiment",
    "Job",
    "JobState",
    "Organism",
    "OriginalFile",
    "Platform",
    "ProcessingResult",
    "ProcessingState",
    "Sample",
    "Technology",
]

HARMONIZED_FIELDS: tuple[str, ...] = FIELDS  # the 13 harmonized sample fields, in page order


def utcnow() -> dt.datetime:
    """Timezone-aware now, stored as UTC."""
    return dt.datetime.now(dt.UTC)


class Technology(enum.StrEnum):
    """Measurement technology of a sample or experiment."""

    MICROARRAY = "MICROARRAY"
    RNA_SEQ = "RNA-SEQ"
    UNKNOWN = "UNKNOWN"


class ProcessingState(enum.StrEnum):
    """Where a sample stands in the pipeline."""

    NEW = "NEW"
    DOWNLOADED = "DOWNLOADED"
    PROCESSED = "PROCESSED"
    UNPROCESSABLE = "UNPROCESSABLE"


class JobState(enum.StrEnum):
    """Life of a durable job row."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable migrations)."""

    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012 (SQLAlchemy API)


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


experiment_sample = Table(
    "experiment_sample",
    Base.metadata,
    Column("experiment_id", ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True),
    Column("sample_id", ForeignKey("sample.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_experiment_sample_sample_id", "sample_id"),
)

result_sample = Table(
    "result_sample",
    Base.metadata,
    Column("result_id", ForeignKey("processing_result.id", ondelete="CASCADE"), primary_key=True),
    Column("sample_id", ForeignKey("sample.id", ondelete="CASCADE"), primary_key=True),
)


class Organism(Base):
    """A species, by scientific name and NCBI taxonomy id."""

    __tablename__ = "organism"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    taxonomy_id: Mapped[int | None] = mapped_column(Integer, unique=True)

    @property
    def code(self) -> str:
        """refine.bio-style upper snake name, e.g. HOMO_SAPIENS."""
        return "_".join(self.name.upper().split())


class Platform(Base):
    """An array design or sequencer: GEO GPL, ArrayExpress A-…, or genemill's internal name."""

    __tablename__ = "platform"
    id: Mapped[int] = mapped_column(primary_key=True)
    accession: Mapped[str] = mapped_column(String(64), unique=True)
    internal_name: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    technology: Mapped[Technology] = mapped_column(_enum(Technology), default=Technology.UNKNOWN)
    manufacturer: Mapped[str] = mapped_column(String(64), default="")
    organism_names: Mapped[list[Any]] = mapped_column(default=list)
    raw_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    annotation_rows: Mapped[int] = mapped_column(Integer, default=0)


class Experiment(Base):
    """A series / study, with the fields of the anchor's experiment page."""

    __tablename__ = "experiment"
    id: Mapped[int] = mapped_column(primary_key=True)
    accession: Mapped[str] = mapped_column(String(64), unique=True)
    alternate_accessions: Mapped[list[Any]] = mapped_column(default=list)
    source_database: Mapped[str] = mapped_column(String(32))
    source_url: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    protocol_description: Mapped[dict[str, Any]] = mapped_column(default=dict)
    technology: Mapped[str] = mapped_column(String(32), default="")
    submitter_institution: Mapped[str] = mapped_column(Text, default="")
    pubmed_id: Mapped[str | None] = mapped_column(String(32))
    publication_title: Mapped[str] = mapped_column(Text, default="")
    publication_doi: Mapped[str] = mapped_column(String(200), default="")
    publication_authors: Mapped[list[Any]] = mapped_column(default=list)
    source_first_published: Mapped[dt.date | None] = mapped_column(Date)
    source_last_modified: Mapped[dt.date | None] = mapped_column(Date)
    num_total_samples: Mapped[int] = mapped_column(Integer, default=0)
    num_processed_samples: Mapped[int] = mapped_column(Integer, default=0)
    num_downloadable_samples: Mapped[int] = mapped_column(Integer, default=0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    metadata_file_format: Mapped[str] = mapped_column(String(32), default="")
    metadata_sha256: Mapped[str] = mapped_column(String(64), default="")
    raw_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    samples: Mapped[list[Sample]] = relationship(
        secondary=experiment_sample, back_populates="experiments", order_by="Sample.accession"
    )

    @property
    def has_publication(self) -> bool:
        """True when a PubMed id or DOI is known."""
        return bool(self.pubmed_id or self.publication_doi)


class Sample(Base):
    """One sample: harmonized fields (strings, lists joined by '; '), raw annotations, state."""

    __tablename__ = "sample"
    id: Mapped[int] = mapped_column(primary_key=True)
    accession: Mapped[str] = mapped_column(String(128), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    organism_id: Mapped[int | None] = mapped_column(ForeignKey("organism.id"), index=True)
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platform.id"), index=True)
    technology: Mapped[Technology] = mapped_column(_enum(Technology), default=Technology.UNKNOWN)
    manufacturer: Mapped[str] = mapped_column(String(64), default="")
    source_database: Mapped[str] = mapped_column(String(32), default="")
    source_archive_url: Mapped[str] = mapped_column(Text, default="")
    has_raw: Mapped[bool] = mapped_column(Boolean, default=False)
    sex: Mapped[str | None] = mapped_column(String(32))
    age: Mapped[float | None] = mapped_column(Float)
    age_value: Mapped[float | None] = mapped_column(Float)
    age_unit: Mapped[str | None] = mapped_column(String(32))
    specimen_part: Mapped[str | None] = mapped_column(Text)
    genetic_information: Mapped[str | None] = mapped_column(Text)
    developmental_stage: Mapped[str | None] = mapped_column(Text)
    disease: Mapped[str | None] = mapped_column(Text)
    disease_stage: Mapped[str | None] = mapped_column(Text)
    cell_line: Mapped[str | None] = mapped_column(Text)
    treatment: Mapped[str | None] = mapped_column(Text)
    race: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    compound: Mapped[str | None] = mapped_column(Text)
    time: Mapped[str | None] = mapped_column(Text)
    harmonized: Mapped[dict[str, Any]] = mapped_column(default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    protocol_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    processing_state: Mapped[ProcessingState] = mapped_column(
        _enum(ProcessingState), default=ProcessingState.NEW
    )
    unprocessable_reason: Mapped[str | None] = mapped_column(Text)
    qc: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    organism: Mapped[Organism | None] = relationship()
    platform: Mapped[Platform | None] = relationship()
    experiments: Mapped[list[Experiment]] = relationship(
        secondary=experiment_sample, back_populates="samples"
    )
    original_files: Mapped[list[OriginalFile]] = relationship(
        back_populates="sample", cascade="all, delete-orphan"
    )
    results: Mapped[list[ProcessingResult]] = relationship(secondary=result_sample, back_populates="samples")

    @property
    def is_processed(self) -> bool:
        """True when a processor produced this sample's gene-level values."""
        return self.processing_state == ProcessingState.PROCESSED


class OriginalFile(Base):
    """A raw or metadata file as published by the archive, and where it sits locally."""

    __tablename__ = "original_file"
    __table_args__ = (UniqueConstraint("sample_id", "source_url"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int | None] = mapped_column(ForeignKey("sample.id", ondelete="CASCADE"))
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiment.id", ondelete="CASCADE"))
    source_url: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32), default="")
    local_path: Mapped[str | None] = mapped_column(Text)
    size_in_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    md5: Mapped[str | None] = mapped_column(String(32))
    expected_md5: Mapped[str | None] = mapped_column(String(32))
    expected_sha256: Mapped[str | None] = mapped_column(String(64))
    expected_size_in_bytes: Mapped[int | None] = mapped_column(BigInteger)
    is_downloaded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    sample: Mapped[Sample | None] = relationship(back_populates="original_files")


class ProcessingResult(Base):
    """One run of a processor: name, version, parameters and the sha256 of inputs and output."""

    __tablename__ = "processing_result"
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiment.id", ondelete="CASCADE"))
    processor: Mapped[str] = mapped_column(String(64))
    processor_version: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(64), default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    input_sha256: Mapped[list[Any]] = mapped_column(default=list)
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    time_start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    time_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    samples: Mapped[list[Sample]] = relationship(secondary=result_sample, back_populates="results")
    files: Mapped[list[ComputedFile]] = relationship(back_populates="result", cascade="all, delete-orphan")


class ComputedFile(Base):
    """A file genemill wrote (expression Parquet, QN target, dataset zip), content-addressed."""

    __tablename__ = "computed_file"
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int | None] = mapped_column(ForeignKey("processing_result.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    size_in_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    result: Mapped[ProcessingResult | None] = relationship(back_populates="files")


class Job(Base):
    """A durable unit of work: survey, download, process or dataset build."""

    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("kind", "target"),
        Index("ix_job_state_kind", "state", "kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(256))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[JobState] = mapped_column(_enum(JobState), default=JobState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retryable: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(128))
    traceback: Mapped[str | None] = mapped_column(Text)
    ram_mb: Mapped[int | None] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(128))
    not_before: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
