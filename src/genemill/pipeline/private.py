"""A user's own files as a private experiment (accession ``GM-…``), processed like public ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from genemill import affy
from genemill.config import Settings
from genemill.errors import InputError
from genemill.pipeline.affymetrix import install_cdf
from genemill.pipeline.ingest import finish_experiment
from genemill.store.db import Database
from genemill.store.files import FileStore
from genemill.store.models import Experiment, Organism, OriginalFile, Sample, Technology

__all__ = ["create_cel_experiment", "private_accession"]


def private_accession(paths: list[Path]) -> str:
    """A stable accession for a set of files: ``GM-`` + 8 hex digits of their names and sizes."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return f"GM-{digest.hexdigest()[:8].upper()}"


def _organism(session: object, name: str | None) -> Organism | None:
    if not name:
        return None
    organism = session.scalar(select(Organism).where(Organism.name == name))  # type: ignore[attr-defined]
    if organism is None:
        organism = Organism(name=name)
        session.add(organism)  # type: ignore[attr-defined]
    return organism


def create_cel_experiment(
    settings: Settings,
    db: Database,
    paths: list[Path],
    *,
    title: str,
    cdf: Path | None = None,
    organism: str | None = None,
) -> str:
    """Store CEL files (copied into the file store) as a private experiment; return its accession."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        msg = f"{missing[0]}: no such CEL file"
        raise InputError(msg)
    if cdf is not None:
        install_cdf(settings, cdf)
    accession = private_accession(paths)
    store = FileStore(settings.files_dir)
    with db.session() as session:
        experiment = session.scalar(select(Experiment).where(Experiment.accession == accession))
        if experiment is None:
            experiment = Experiment(accession=accession, source_database="LOCAL", is_public=False)
            session.add(experiment)
        experiment.title = title
        experiment.description = (
            f"Private experiment: {len(paths)} CEL file(s) imported with genemill import-cel."
        )
        samples = []
        for path in paths:
            stored = store.put(path, suffix=".CEL.gz" if path.name.lower().endswith(".gz") else ".CEL")
            sample_accession = f"{accession}-{affy.sample_name(path)}"
            sample = session.scalar(select(Sample).where(Sample.accession == sample_accession))
            if sample is None:
                sample = Sample(accession=sample_accession, source_database="LOCAL")
                session.add(sample)
            sample.title = affy.sample_name(path)
            sample.organism = _organism(session, organism)
            sample.technology = Technology.MICROARRAY
            sample.manufacturer = "AFFYMETRIX"
            sample.has_raw = True
            if not sample.original_files:
                sample.original_files.append(
                    OriginalFile(
                        source_url=path.resolve().as_uri(),
                        filename=path.name,
                        kind="CEL",
                        local_path=str(stored.path),
                        size_in_bytes=stored.size,
                        sha256=stored.sha256,
                        is_downloaded=True,
                    )
                )
            samples.append(sample)
        experiment.samples = samples
        finish_experiment(session, experiment)
    return accession
