"""Survey: from an accession (online) or a metadata file (offline) to stored experiments.

Every step runs as a durable Job (``import`` keyed by the file's sha256, ``survey`` keyed by the
accession), so re-running the same command redoes nothing that finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genemill.accessions import Accession, Archive, parse_accession
from genemill.config import Settings
from genemill.errors import AccessionError, FormatError
from genemill.formats.detect import MetadataFormat, read_head, sniff_metadata_format
from genemill.formats.records import ExperimentMetadata
from genemill.pipeline.annotation import save_platform_tables
from genemill.pipeline.executors import InlineExecutor
from genemill.pipeline.ingest import store_experiment
from genemill.pipeline.jobs import JobKind, RunSummary, enqueue, run_jobs
from genemill.store.db import Database
from genemill.store.files import FileStore, sha256_file
from genemill.store.models import Experiment, OriginalFile

__all__ = [
    "ImportReport",
    "add_accession",
    "import_files",
    "import_metadata",
    "read_metadata_file",
    "run_import_job",
    "run_survey_job",
]


@dataclass(frozen=True)
class ImportReport:
    """What one metadata import stored."""

    accession: str
    samples: int
    platforms: list[str]
    file_format: str


def read_metadata_file(path: Path) -> ExperimentMetadata:
    """Parse any supported metadata file, recognized by content (gzip-aware)."""
    if not path.is_file():
        msg = "no such file"
        raise FormatError(msg, path=str(path))
    kind = sniff_metadata_format(read_head(path), path_hint=str(path))
    if kind is MetadataFormat.SOFT:
        from genemill.formats.soft import read_soft_path

        metadata = read_soft_path(path)
    elif kind is MetadataFormat.SERIES_MATRIX:
        from genemill.formats.series_matrix import read_series_matrix_path

        metadata = read_series_matrix_path(path)
    elif kind is MetadataFormat.MINIML:
        from genemill.formats.miniml import read_miniml_path

        metadata = read_miniml_path(path)
    elif kind is MetadataFormat.IDF:
        from genemill.formats.magetab import read_magetab

        metadata = read_magetab(path)
    else:
        msg = "an SDRF alone cannot be imported: import its IDF (which names the SDRF)"
        raise FormatError(msg, path=str(path))
    metadata.file_format = metadata.file_format or kind.value
    return metadata


def import_metadata(
    settings: Settings, db: Database, path: Path, *, with_publication: bool = False
) -> ImportReport:
    """Parse ``path`` and store its experiment in one transaction (a copy of the file is kept).

    ``with_publication`` (online) adds the PubMed title, authors and DOI.
    """
    metadata = read_metadata_file(path)
    return _store(settings, db, metadata, path, with_publication=with_publication)


def _store(
    settings: Settings, db: Database, metadata: ExperimentMetadata, path: Path, *, with_publication: bool
) -> ImportReport:
    if with_publication:
        _add_publication(settings, metadata)
    stored = FileStore(settings.files_dir).put(path, suffix=_suffix(path))
    save_platform_tables(settings, metadata, source_sha256=stored.sha256)
    with db.session() as session:
        experiment = store_experiment(session, metadata, metadata_sha256=stored.sha256)
        _record_metadata_file(session, experiment, path, stored.path, stored.sha256, stored.size)
        return ImportReport(
            accession=experiment.accession,
            samples=len(experiment.samples),
            platforms=sorted(p.accession for p in metadata.platforms)
            or sorted({s.platform for s in metadata.samples if s.platform}),
            file_format=metadata.file_format,
        )


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".gz" if name.endswith(".gz") else ""


def _record_metadata_file(
    session: Any, experiment: Experiment, source: Path, local: Path, sha256: str, size: int
) -> None:
    from sqlalchemy import select

    existing = session.scalar(
        select(OriginalFile).where(OriginalFile.experiment_id == experiment.id, OriginalFile.sha256 == sha256)
    )
    if existing is None:
        session.add(
            OriginalFile(
                experiment_id=experiment.id,
                source_url=source.resolve().as_uri(),
                filename=source.name,
                kind="METADATA",
                local_path=str(local),
                size_in_bytes=size,
                sha256=sha256,
                is_downloaded=True,
            )
        )


def run_import_job(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler for ``import``: ``params['path']`` is the file."""
    db = Database(settings.resolved_database_url)
    try:
        report = import_metadata(settings, db, Path(params["path"]))
    finally:
        db.dispose()
    return {"accession": report.accession, "samples": report.samples}


def _download_metadata(
    settings: Settings, accession: Accession, dest: Path
) -> tuple[ExperimentMetadata, Path]:
    from genemill.sources import arrayexpress, geo
    from genemill.sources.http import make_client

    with make_client(settings) as client:
        if accession.archive is Archive.GEO:
            path = geo.fetch_series_soft(client, settings, accession.code, dest_dir=dest)
            return read_metadata_file(path), path
        from genemill.formats.magetab import read_magetab

        idf = arrayexpress.fetch_idf(client, settings, accession.code, dest_dir=dest)
        sdrf = arrayexpress.fetch_sdrf(client, settings, accession.code, dest_dir=dest)
        return read_magetab(idf, sdrf), idf


def _add_publication(settings: Settings, metadata: ExperimentMetadata) -> None:
    """Fill publication title / authors / DOI from PubMed when the series names a PMID."""
    if not metadata.series.pubmed_ids:
        return
    from genemill.sources.eutils import fetch_publication
    from genemill.sources.http import make_client, ncbi_limiter

    with make_client(settings) as client:
        publication = fetch_publication(
            client, settings, metadata.series.pubmed_ids[0], limiter=ncbi_limiter(settings)
        )
    metadata.series.fields["genemill_publication"] = [
        publication.title,
        publication.doi or "",
        "; ".join(publication.authors),
    ]


def run_survey_job(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler for ``survey``: download the accession's metadata (and PubMed record), store it."""
    accession = parse_accession(target)
    if accession.archive is Archive.SRA:  # ENA read runs → FASTQ files (pipeline.rnaseq_survey)
        from genemill.pipeline.rnaseq_survey import run_sra_survey_job

        return run_sra_survey_job(settings, target, params)
    metadata, path = _download_metadata(settings, accession, settings.home / "downloads" / accession.code)
    db = Database(settings.resolved_database_url)
    try:
        report = _store(settings, db, metadata, path, with_publication=bool(params.get("pubmed", True)))
        if accession.archive is Archive.GEO:  # sequencing samples: their SRA runs' FASTQs from ENA
            from genemill.pipeline.rnaseq_survey import link_geo_series_runs

            link_geo_series_runs(settings, db, metadata)
    finally:
        db.dispose()
    return {"accession": report.accession, "samples": report.samples}


def import_files(settings: Settings, db: Database, paths: list[Path]) -> RunSummary:
    """Enqueue one import job per file (keyed by content hash) and run them here."""
    with db.session() as session:
        for path in paths:
            if not path.is_file():
                msg = "no such file"
                raise FormatError(msg, path=str(path))
            enqueue(
                session, JobKind.IMPORT, f"sha256:{sha256_file(path)}", params={"path": str(path.resolve())}
            )
    return run_jobs(settings, db, executor=InlineExecutor(), kinds=[JobKind.IMPORT.value])


def add_accession(settings: Settings, db: Database, accession: str) -> RunSummary:
    """Enqueue and run a survey job for a public accession (online)."""
    parsed = parse_accession(accession)
    if parsed.archive not in (Archive.GEO, Archive.ARRAY_EXPRESS, Archive.SRA):
        msg = f"{parsed.code}: surveying {parsed.archive.value} accessions is not supported yet"
        raise AccessionError(msg)
    with db.session() as session:
        enqueue(session, JobKind.SURVEY, parsed.code)
    return run_jobs(settings, db, executor=InlineExecutor(), kinds=[JobKind.SURVEY.value])
