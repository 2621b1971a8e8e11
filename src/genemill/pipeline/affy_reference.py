"""Per-platform RMA references: built from processed arrays, stored once per platform, versioned.

A reference (:class:`genemill.affy.RmaReference`: quantile target + median-polish probe effects)
lets one new array be processed without its experiment (mode ``rma-reference``). On disk::

    $GENEMILL_HOME/rma-references/<chip key>/<reference id>.npz   immutable, one per build
    $GENEMILL_HOME/rma-references/<chip key>/current              id in use (replaced atomically)

The reference id digests the CDF layout and the input CELs, so rebuilding from the same arrays
gives the same file; each file records the sample accessions and CEL sha256 it was built from.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from genemill import affy
from genemill.config import Settings
from genemill.errors import NotFoundError
from genemill.pipeline.affy_cdf import CdfResolver, chip_key
from genemill.platforms import cel_chip_stem, gpl_for_stem
from genemill.store.models import Platform, ProcessingState, Sample

__all__ = ["build_platform_reference", "current_reference", "reference_dir"]


def reference_dir(settings: Settings, chip_type: str) -> Path:
    """Folder of one platform's references."""
    return settings.home / "rma-references" / chip_key(chip_type)


def platform_accession(chip_type: str) -> str:
    """The Platform row accession of a CEL chip type (GEO GPL when known, else its stem)."""
    stem = cel_chip_stem(chip_type)
    return gpl_for_stem(stem) or stem


def build_platform_reference(
    settings: Settings, session: Session, chip_type: str, *, samples: list[Sample] | None = None
) -> affy.RmaReference:
    """Build (or rebuild) the platform's reference from its processed arrays and make it current.

    ``samples`` defaults to every PROCESSED sample of the platform with a CEL file on disk.
    """
    chosen = samples if samples is not None else _processed_samples(session, chip_type)
    cels = [(s.accession, _local_cel(s)) for s in chosen]
    usable = [(accession, path) for accession, path in cels if path is not None]
    if not usable:
        msg = (
            f"no processed arrays of chip type {chip_type!r} with CEL files on disk: process an "
            "experiment of this platform first, then build its RMA reference"
        )
        raise NotFoundError(msg)
    first = affy.read_cel(usable[0][1])
    layout = CdfResolver(settings).layout_for(first)
    paths = [path for _, path in usable]
    reference = affy.build_rma_reference(paths, cdf=layout, chip_type=chip_type, workers=settings.workers)
    reference = replace(reference, arrays=tuple(accession for accession, _ in usable))
    folder = reference_dir(settings, chip_type)
    affy.save_rma_reference(reference, folder / f"{reference.reference_id}.npz")
    _write_atomic(folder / "current", reference.reference_id + "\n")
    return reference


def current_reference(
    settings: Settings, chip_type: str, *, reference_id: str | None = None
) -> affy.RmaReference:
    """Return the platform's current reference (or the one named); NotFoundError says how to build one."""
    folder = reference_dir(settings, chip_type)
    pointer = folder / "current"
    wanted = reference_id or (pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else "")
    path = folder / f"{wanted}.npz"
    if not wanted or not path.is_file():
        named = f" {wanted!r}" if wanted else ""
        msg = (
            f"no RMA reference{named} for chip type {chip_type!r} (looked in {folder}): build one from "
            "processed arrays with genemill.pipeline.affy_reference.build_platform_reference"
        )
        raise NotFoundError(msg)
    return affy.load_rma_reference(path)


def _processed_samples(session: Session, chip_type: str) -> list[Sample]:
    statement = (
        select(Sample)
        .join(Platform, Sample.platform_id == Platform.id)
        .where(Platform.accession == platform_accession(chip_type))
        .where(Sample.processing_state == ProcessingState.PROCESSED)
        .order_by(Sample.accession)
    )
    return list(session.scalars(statement))


def _local_cel(sample: Sample) -> Path | None:
    for original in sample.original_files:
        if original.kind == "CEL" and original.local_path and Path(original.local_path).is_file():
            return Path(original.local_path)
    return None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(temporary).replace(path)
    finally:
        Path(temporary).unlink(missing_ok=True)
