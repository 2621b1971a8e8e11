"""A user's own RNA-seq files as a private experiment (accession ``GM-…``), processed like public ones.

Two entry points, mirroring ``genemill import-cel`` (:mod:`genemill.pipeline.private`):

* ``create_fastq_experiment``: FASTQ runs (one file single-end, two files paired-end) plus a
  transcriptome reference (transcript FASTA, or genome FASTA + GTF; tx2gene from ``--tx2gene``,
  the GTF or GENCODE names), registered once under ``$GENEMILL_HOME/references/``;
* ``create_quant_experiment``: existing Salmon ``quant.sf`` files (or Salmon output folders, whose
  ``meta_info.json`` and ``lib_format_counts.json`` are kept for QC) plus a tx2gene table.

Files are copied into the content-addressed file store; the experiment records its reference key
in ``raw_fields["genemill_rnaseq_reference"]``. ``process_rnaseq`` (re-exported from
:mod:`genemill.pipeline.rnaseq_process`) then quantifies and summarises.

FASTQ pairing (``pair_fastqs``): a file is mate 1 or 2 when its name ends in ``_1``/``_2``,
``.1``/``.2``, ``_R1``/``_R2`` (optionally followed by Illumina's ``_001``) before
``.fastq``/``.fq`` (``.gz``); the run is named by what precedes that suffix.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from genemill.config import Settings
from genemill.errors import InputError, SalmonFormatError
from genemill.formats.salmon import read_quant
from genemill.pipeline.ingest import (
    PreparedIndex,
    finish_experiment,
    has_search_row,
    index_inputs,
    prepare_index,
)
from genemill.pipeline.private import private_accession
from genemill.pipeline.rnaseq_process import (
    FASTQ_KIND,
    LIB_FORMAT_KIND,
    META_INFO_KIND,
    QUANT_KIND,
    REFERENCE_FIELD,
    Progress,
    RnaSeqOutcome,
    has_rnaseq_files,
    process_rnaseq,
)
from genemill.pipeline.salmon import MIN_MAPPING_RATE
from genemill.pipeline.salmon_index import Reference, find_reference, load_reference, register_reference
from genemill.rnaseq import sample_name
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.files import FileStore
from genemill.store.models import Experiment, Organism, OriginalFile, ProcessingState, Sample, Technology

__all__ = [
    "FastqRun",
    "ReferenceFiles",
    "RnaSeqOutcome",
    "create_fastq_experiment",
    "create_quant_experiment",
    "has_rnaseq_files",
    "pair_fastqs",
    "process_rnaseq",
    "process_rnaseq_experiment",
]

_MATE = re.compile(r"^(?P<run>.+?)[._](?:R)?(?P<mate>[12])(?:_\d{3})?\.(?:fastq|fq)(?:\.gz)?$", re.IGNORECASE)
_FASTQ = re.compile(r"^(?P<run>.+?)\.(?:fastq|fq)(?:\.gz)?$", re.IGNORECASE)


@dataclass(frozen=True)
class FastqRun:
    """One sequencing run: its name and one (single-end) or two (mate 1, mate 2) FASTQ files."""

    name: str
    reads: tuple[Path, ...]


@dataclass(frozen=True)
class ReferenceFiles:
    """The transcriptome to quantify against, and what it is.

    Without ``transcripts`` or ``genome``, a reference registered with ``genemill reference add``
    is used: the one whose key starts with ``key``, else the latest one for the organism.
    """

    key: str = ""
    transcripts: Path | None = None
    genome: Path | None = None
    gtf: Path | None = None
    tx2gene: Path | None = None
    source: str = ""
    release: str = ""
    assembly: str = ""


def pair_fastqs(paths: Sequence[Path], *, paired: bool | None = None) -> list[FastqRun]:
    """Group FASTQ files into runs by their mate suffix (see the module docstring).

    ``paired=None`` pairs files whose names say mate 1 and mate 2 of one run and keeps the others
    single-end; ``True`` requires every file to have its mate; ``False`` makes every file a run.
    """
    if paired is False:
        return [FastqRun(_single_name(path), (path,)) for path in paths]
    mates: dict[str, dict[int, Path]] = defaultdict(dict)
    singles: list[Path] = []
    for path in paths:
        match = _MATE.match(path.name)
        if match is None:
            singles.append(path)
            continue
        mate = int(match.group("mate"))
        if mate in mates[match.group("run")]:
            msg = f"{path}: a second mate {mate} file for run {match.group('run')!r}"
            raise InputError(msg)
        mates[match.group("run")][mate] = path
    runs = []
    for name, found in mates.items():
        if set(found) == {1, 2}:
            runs.append(FastqRun(name, (found[1], found[2])))
        else:
            singles.extend(found.values())
    if paired and singles:
        msg = (
            f"{singles[0]}: no mate file for it (paired-end runs need <run>_1/<run>_2 or "
            f"<run>_R1/<run>_R2 file names; {len(singles)} file(s) unpaired)"
        )
        raise InputError(msg)
    runs.extend(FastqRun(_single_name(path), (path,)) for path in singles)
    return sorted(runs, key=lambda run: run.name)


def _single_name(path: Path) -> str:
    match = _FASTQ.match(path.name)
    return match.group("run") if match else path.name


def _organism(session: Session, name: str | None) -> Organism | None:
    if not name:
        return None
    organism = session.scalar(select(Organism).where(Organism.name == name))
    if organism is None:
        organism = Organism(name=name)
        session.add(organism)
    return organism


def _experiment(session: Session, accession: str, *, title: str, description: str) -> Experiment:
    experiment = session.scalar(select(Experiment).where(Experiment.accession == accession))
    if experiment is None:
        experiment = Experiment(accession=accession, source_database="LOCAL", is_public=False)
        session.add(experiment)
    experiment.title = title
    experiment.description = description
    experiment.technology = Technology.RNA_SEQ.value
    return experiment


def _sample(session: Session, accession: str, *, title: str, organism: Organism | None) -> Sample:
    sample = session.scalar(select(Sample).where(Sample.accession == accession))
    if sample is None:
        sample = Sample(accession=accession, source_database="LOCAL")
        session.add(sample)
    sample.title = title
    sample.organism = organism
    sample.technology = Technology.RNA_SEQ
    sample.has_raw = True
    return sample


def _set_files(sample: Sample, files: list[OriginalFile]) -> None:
    """Make ``files`` the sample's files, updating rows already there (one row per source URL)."""
    existing = {file.source_url: file for file in sample.original_files}
    kept = []
    for file in files:
        row = existing.get(file.source_url)
        if row is None:
            kept.append(file)
            continue
        for name in ("filename", "kind", "local_path", "size_in_bytes", "sha256", "is_downloaded"):
            setattr(row, name, getattr(file, name))
        kept.append(row)
    sample.original_files = kept


def _stored_file(store: FileStore, path: Path, *, kind: str, suffix: str) -> OriginalFile:
    stored = store.put(path, suffix=suffix)
    return OriginalFile(
        source_url=path.resolve().as_uri(),
        filename=path.name,
        kind=kind,
        local_path=str(stored.path),
        size_in_bytes=stored.size,
        sha256=stored.sha256,
        is_downloaded=True,
    )


def _fastq_suffix(path: Path) -> str:
    return ".fastq.gz" if path.name.lower().endswith(".gz") else ".fastq"


def create_fastq_experiment(
    settings: Settings,
    db: Database,
    runs: Sequence[FastqRun],
    *,
    title: str,
    reference: ReferenceFiles,
    organism: str | None = None,
) -> str:
    """Store FASTQ runs and their transcriptome reference as a private experiment; return its accession."""
    paths = [path for run in runs for path in run.reads]
    missing = [p for p in paths if not p.is_file()]
    if not runs or missing:
        msg = f"{missing[0]}: no such FASTQ file" if missing else "no FASTQ files given"
        raise InputError(msg)
    registered = _fastq_reference(settings, reference, organism)
    organism = organism or registered.organism
    accession = private_accession(paths)
    store = FileStore(settings.files_dir)
    layouts = sorted({"paired-end" if len(run.reads) == 2 else "single-end" for run in runs})
    with db.session() as session:
        description = (
            f"Private experiment: {len(runs)} {'/'.join(layouts)} RNA-seq run(s) imported with "
            f"genemill import-fastq; reference {_describe(registered)}."
        )
        experiment = _experiment(session, accession, title=title, description=description)
        experiment.raw_fields = {REFERENCE_FIELD: registered.key}
        species = _organism(session, organism)
        samples = []
        for run in runs:
            sample = _sample(session, f"{accession}-{run.name}", title=run.name, organism=species)
            files = [_stored_file(store, p, kind=FASTQ_KIND, suffix=_fastq_suffix(p)) for p in run.reads]
            _set_files(sample, files)
            samples.append(sample)
        experiment.samples = samples
        finish_experiment(session, experiment)
    return accession


def _fastq_reference(settings: Settings, reference: ReferenceFiles, organism: str | None) -> Reference:
    """Register the given reference files, or pick a registered reference by key or organism."""
    if reference.transcripts is not None or reference.genome is not None:
        return register_reference(
            settings,
            transcripts=reference.transcripts,
            genome=reference.genome,
            gtf=reference.gtf,
            tx2gene=reference.tx2gene,
            organism=organism,
            source=reference.source,
            release=reference.release,
            assembly=reference.assembly,
        )
    if reference.key:
        found = load_reference(settings, reference.key)
        if found.transcripts is None:
            msg = f"reference {reference.key} holds only a tx2gene table: no transcripts to quantify against"
            raise InputError(msg)
        if organism and found.organism and found.organism.lower() != organism.lower():
            msg = f"reference {reference.key} is for {found.organism}, not {organism}"
            raise InputError(msg)
        return found
    if organism:
        chosen = find_reference(settings, organism)
        if chosen is not None:
            return chosen
        msg = (
            f"no registered transcriptome for {organism}: register one with `genemill reference add` "
            "or give a transcript FASTA (--transcripts) or --genome with --gtf"
        )
        raise InputError(msg)
    msg = (
        "FASTQ runs need a transcriptome: give a transcript FASTA (--transcripts), --genome with --gtf, "
        "--reference KEY or the --organism of a registered reference"
    )
    raise InputError(msg)


def _describe(reference: Reference) -> str:
    parts = [reference.organism or "organism not given", reference.source, reference.release]
    parts.append(reference.assembly)
    return f"{reference.key[:16]} ({', '.join(p for p in parts if p)})"


def _quant_parts(path: Path) -> tuple[str, Path, Path | None, Path | None]:
    """(sample name, quant.sf, meta_info.json, lib_format_counts.json) of a file or Salmon folder."""
    if path.is_dir():
        quant = next((path / name for name in ("quant.sf", "quant.sf.gz") if (path / name).is_file()), None)
        if quant is None:
            msg = f"{path}: a folder without quant.sf (not a Salmon output folder)"
            raise InputError(msg)
        meta = path / "aux_info" / "meta_info.json"
        lib = path / "lib_format_counts.json"
        return path.name, quant, meta if meta.is_file() else None, lib if lib.is_file() else None
    if not path.is_file():
        msg = f"{path}: no such quantification file or folder"
        raise InputError(msg)
    meta = path.parent / "aux_info" / "meta_info.json"
    lib = path.parent / "lib_format_counts.json"
    salmon_folder = path.name in ("quant.sf", "quant.sf.gz")
    return (
        sample_name(path),
        path,
        meta if salmon_folder and meta.is_file() else None,
        lib if salmon_folder and lib.is_file() else None,
    )


def _transcript_names(quants: list[Path]) -> list[str]:
    """Transcript names of the first readable file (to orient tx2gene); bad files wait for processing."""
    failures: list[SalmonFormatError] = []
    for path in quants:
        try:
            with path.open("rb") as fh:
                return [str(name) for name in read_quant(fh, source_format="salmon").names]
        except SalmonFormatError as exc:
            failures.append(exc)
    raise failures[0]


def create_quant_experiment(
    settings: Settings,
    db: Database,
    quants: Sequence[Path],
    *,
    title: str,
    tx2gene: Path,
    organism: str | None = None,
) -> str:
    """Store Salmon quant.sf files (or output folders) and a tx2gene table as a private experiment."""
    parts = [_quant_parts(path) for path in quants]
    if not parts:
        msg = "no quantification files given"
        raise InputError(msg)
    names = [name for name, *_ in parts]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        msg = f"two quantifications would be the same sample: {repeated} (rename their folders or files)"
        raise InputError(msg)
    registered = register_reference(
        settings, tx2gene=tx2gene, organism=organism, names=_transcript_names([q for _, q, _, _ in parts])
    )
    accession = private_accession([quant for _, quant, _, _ in parts])
    store = FileStore(settings.files_dir)
    with db.session() as session:
        description = (
            f"Private experiment: {len(parts)} Salmon quantification(s) imported with genemill "
            f"import-quant; tx2gene {tx2gene.name} (reference {registered.key[:16]})."
        )
        experiment = _experiment(session, accession, title=title, description=description)
        experiment.raw_fields = {REFERENCE_FIELD: registered.key}
        species = _organism(session, organism)
        samples = []
        for name, quant, meta, lib in parts:
            sample = _sample(session, f"{accession}-{name}", title=name, organism=species)
            suffix = ".quant.sf.gz" if quant.name.endswith(".gz") else ".quant.sf"
            files = [_stored_file(store, quant, kind=QUANT_KIND, suffix=suffix)]
            for side, kind in ((meta, META_INFO_KIND), (lib, LIB_FORMAT_KIND)):
                if side is not None:
                    files.append(_stored_file(store, side, kind=kind, suffix=".json"))
            _set_files(sample, files)
            samples.append(sample)
        experiment.samples = samples
        finish_experiment(session, experiment)
    return accession


def process_rnaseq_experiment(
    settings: Settings,
    db: Database,
    accession: str,
    *,
    allow_low_mapping: bool = False,
    min_mapping_rate: float = MIN_MAPPING_RATE,
    threads: int | None = None,
    progress: Progress | None = None,
) -> RnaSeqOutcome:
    """Process every RNA-seq sample of a stored experiment in one unit of work."""
    with db.session() as session:
        experiment = queries.get_experiment(session, accession, for_processing=True)
        before = index_inputs(experiment)
        samples = [s for s in experiment.samples if has_rnaseq_files(s)]
        # While Salmon runs: whether the search row exists (processing adds none) and, when the
        # states are to change, the search document for all these samples processed.
        processing = {sample.id for sample in samples}
        expected = tuple(
            row._replace(processing_state=ProcessingState.PROCESSED) if row.sample_id in processing else row
            for row in before
        )
        indexed: list[bool] = []
        prepared: list[PreparedIndex] = []

        def meanwhile() -> None:
            indexed.append(has_search_row(session, experiment))
            if expected != before:
                prepared.append(prepare_index(session, experiment, expected))

        outcome = process_rnaseq(
            settings,
            session,
            experiment,
            samples,
            allow_low_mapping=allow_low_mapping,
            min_mapping_rate=min_mapping_rate,
            threads=threads,
            progress=progress,
            meanwhile=meanwhile,
        )
        finish_experiment(
            session,
            experiment,
            unchanged_since=before,
            indexed=indexed[0] if indexed else None,
            prepared=prepared[0] if prepared else None,
        )
    return outcome
