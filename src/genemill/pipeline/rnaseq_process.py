"""RNA-seq samples of an experiment: FASTQ runs → Salmon → tximport, or imported quant.sf → tximport.

FASTQ files of surveyed SRA/ENA runs that are not on disk yet are downloaded first (online,
verified against ENA's MD5 and size, :mod:`genemill.pipeline.rnaseq_download`); offline, or when a
download fails, the run is refused with the reason.

Per sample with FASTQ files (OriginalFiles of kind ``FASTQ``: one run, or several runs of a GEO
sample, quantified together) :mod:`genemill.pipeline.salmon_run` checks the organism and the runs'
layout, picks k from the read length, finds or builds the index, runs one ``salmon quant`` with the
FASTQ check alongside and stores QC (per-run read counts included) in ``sample.qc``; a mapping rate
below ``min_mapping_rate`` (default 0.30) refuses the sample unless ``allow_low_mapping`` (the
figure stays in the QC). A refused sample may still be processed from the submitter's table
(:mod:`genemill.pipeline.process` routes it there).

Then one tximport over the experiment's good runs (:mod:`genemill.pipeline.rnaseq_store`) and one
result, processor ``salmon-tximport``. Imported quantifications (kind ``QUANT``, with optional
Salmon ``meta_info.json`` / ``lib_format_counts.json``) skip Salmon: processor ``tximport``.
A refused run is marked unprocessable with the reason; it never stops the others.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
from sqlalchemy.orm import Session

import genemill
from genemill.config import Settings
from genemill.errors import InputError, ProcessingError
from genemill.pipeline.rnaseq_download import download_fastqs, pending_fastqs
from genemill.pipeline.rnaseq_store import (
    QuantInput,
    ResultSpec,
    prepare_gene_layout,
    store_gene_tables,
    summarize_runs,
)
from genemill.pipeline.salmon import (
    MIN_MAPPING_RATE,
    SalmonQc,
    salmon_qc_from_files,
    salmon_version,
)
from genemill.pipeline.salmon_index import (
    Reference,
    find_reference,
    load_reference,
)
from genemill.pipeline.salmon_run import (
    FASTQ_KIND,
    IndexCache,
    QuantifiedRun,
    quantify_sample,
)
from genemill.store.files import sha256_file
from genemill.store.models import Experiment, OriginalFile, Sample
from genemill.store.results import mark_unprocessable

__all__ = [
    "FASTQ_KIND",
    "LIB_FORMAT_KIND",
    "META_INFO_KIND",
    "QUANT_KIND",
    "REFERENCE_FIELD",
    "Progress",
    "RnaSeqOutcome",
    "has_rnaseq_files",
    "process_rnaseq",
    "reference_tx2gene",
]

QUANT_KIND = "QUANT"
META_INFO_KIND, LIB_FORMAT_KIND = "SALMON_META_INFO", "SALMON_LIB_FORMAT_COUNTS"
REFERENCE_FIELD = "genemill_rnaseq_reference"

Progress = Callable[[str, int, int], None]


@dataclass
class RnaSeqOutcome:
    """Samples processed and refused (with reasons) by one RNA-seq run, and what was used.

    ``processors`` names the processor of each processed sample (``salmon-tximport`` for FASTQ
    runs, ``tximport`` for imported quantifications); ``details`` is keyed by processor.
    """

    processed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    processors: dict[str, str] = field(default_factory=dict)


def _files(sample: Sample, kind: str) -> list[OriginalFile]:
    return [f for f in sample.original_files if f.kind == kind and f.local_path and f.is_downloaded]


def has_rnaseq_files(sample: Sample) -> bool:
    """True when the sample has FASTQ or imported quantification files (on disk, or FASTQ to fetch)."""
    return bool(_files(sample, FASTQ_KIND) or _files(sample, QUANT_KIND) or pending_fastqs(sample))


def _original_name(file: OriginalFile) -> str:
    if file.source_url.startswith("file://"):
        return unquote(urlparse(file.source_url).path)
    return file.filename or file.source_url


def _refuse(outcome: RnaSeqOutcome, sample: Sample, reason: str) -> None:
    """Refuse ``sample``; stored copies (named by checksum) are named as the user knows them."""
    for file in sample.original_files:
        if file.local_path:
            reason = reason.replace(file.local_path, _original_name(file))
    outcome.refused[sample.accession] = reason
    mark_unprocessable(sample, reason)


def _refuse_run(outcome: RnaSeqOutcome, run: QuantifiedRun, reason: str) -> None:
    """Refuse a quantified run's sample, keeping the run's QC on it (why it was refused shows there)."""
    run.sample.qc = run.sample_qc
    _refuse(outcome, run.sample, reason)


def _reference_for(settings: Settings, experiment: Experiment, samples: list[Sample]) -> Reference | None:
    key = (experiment.raw_fields or {}).get(REFERENCE_FIELD)
    if key:
        return load_reference(settings, str(key))
    organisms = {s.organism.name for s in samples if s.organism is not None}
    return find_reference(settings, organisms.pop()) if len(organisms) == 1 else None


def process_rnaseq(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    samples: list[Sample],
    *,
    allow_low_mapping: bool = False,
    min_mapping_rate: float = MIN_MAPPING_RATE,
    threads: int | None = None,
    progress: Progress | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> RnaSeqOutcome:
    """Quantify FASTQ runs with Salmon (or take imported quant.sf files), then tximport and store.

    ``meanwhile`` is the caller's own work that needs no quantification: done while the first
    ``salmon quant`` runs, else before tximport (always once).
    """
    outcome = RnaSeqOutcome()
    samples = _fetch_fastqs(settings, samples, outcome, progress)
    reference = _reference_for(settings, experiment, samples)
    fastq = [s for s in samples if _files(s, FASTQ_KIND)]
    imported = [s for s in samples if not _files(s, FASTQ_KIND) and _files(s, QUANT_KIND)]
    options = _Options(allow_low_mapping, min_mapping_rate, threads or os.cpu_count() or 1, progress)
    if fastq:
        _process_fastq(
            settings,
            session,
            experiment,
            fastq,
            reference=reference,
            options=options,
            outcome=outcome,
            meanwhile=meanwhile,
        )
    if meanwhile is not None and not fastq:
        meanwhile()
    if imported:
        _process_imported(
            settings, session, experiment, imported, reference=reference, options=options, outcome=outcome
        )
    return outcome


def _fetch_fastqs(
    settings: Settings, samples: list[Sample], outcome: RnaSeqOutcome, progress: Progress | None
) -> list[Sample]:
    """Download pending FASTQs (online); refuse runs whose files cannot be had; return the rest."""
    waiting = [s for s in samples if pending_fastqs(s)]
    names = {s.accession: ", ".join(f.filename for f in pending_fastqs(s)) for s in waiting}
    if not waiting:
        return samples
    if settings.online:
        failed = download_fastqs(settings, waiting, progress=progress)
    else:
        hint = "process with GENEMILL_ONLINE=1 to fetch them from ENA"
        failed = {name: f"FASTQ files not downloaded yet ({files}): {hint}" for name, files in names.items()}
    for sample in waiting:
        if sample.accession in failed:
            _refuse(outcome, sample, failed[sample.accession])
    return [s for s in samples if s.accession not in failed]


@dataclass(frozen=True)
class _Options:
    allow_low_mapping: bool
    min_mapping_rate: float
    threads: int
    progress: Progress | None

    def report(self, text: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(text, done, total)


def _process_fastq(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    samples: list[Sample],
    *,
    reference: Reference | None,
    options: _Options,
    outcome: RnaSeqOutcome,
    meanwhile: Callable[[], object] | None = None,
) -> None:
    prepare = _Preparation(reference, meanwhile)
    if reference is None or reference.transcripts is None:
        prepare()
        organisms = sorted({s.organism.name for s in samples if s.organism is not None})
        reason = f"no transcriptome reference with transcripts for {organisms or 'an unknown organism'}"
        for sample in samples:
            _refuse(outcome, sample, reason)
        return
    runs: list[QuantifiedRun] = []
    indexes = IndexCache(settings, reference, threads=options.threads)
    for number, sample in enumerate(samples):
        options.report(f"salmon quant {sample.title or sample.accession}", number, len(samples))
        try:
            run = quantify_sample(
                settings, experiment, sample, indexes=indexes, threads=options.threads, meanwhile=prepare
            )
        except (InputError, ProcessingError, OSError) as exc:  # FormatError, ToolError are among them
            _refuse(outcome, sample, str(exc))
            continue
        if _keep(run, options, outcome):
            runs.append(run)
    options.report("tximport", len(samples), len(samples))
    prepare()  # done already, unless no Salmon ran (all cached or refused)
    if not runs:
        return
    used = {run.index.key: run.index.describe() for run in runs if run.index is not None}
    spec = ResultSpec(
        processor="salmon-tximport",
        version=f"{genemill.__version__}+salmon{salmon_version()}",
        mode="salmon-quant-tximport-experiment",
        parameters=_parameters(runs, options),
        input_sha256=sorted({sha for run in runs for sha in run.input_sha256}),
        annotations={"reference": reference.describe(), "indexes": used, "runs": _run_notes(runs)},
    )
    _tximport_and_store(settings, session, experiment, runs, reference=reference, spec=spec, outcome=outcome)


def _keep(run: QuantifiedRun, options: _Options, outcome: RnaSeqOutcome) -> bool:
    """Flag a low mapping rate in the sample's QC; refuse the run unless allowed."""
    rate = run.qc.mapping_rate
    low = rate is not None and rate < options.min_mapping_rate
    run.sample_qc.update(
        {
            "min_mapping_rate": options.min_mapping_rate,
            "low_mapping": low,
            "low_mapping_allowed": low and options.allow_low_mapping,
        }
    )
    if low and not options.allow_low_mapping:
        reason = (
            f"{run.quant.path}: Salmon mapped {rate:.1%} of {run.qc.num_processed} fragments, below "
            f"genemill's minimum mapping rate of {options.min_mapping_rate:.0%} (wrong organism or "
            "index, contamination, or a failed library?); use --allow-low-mapping to keep it"
        )
        _refuse_run(outcome, run, reason)
        return False
    return True


def _parameters(runs: list[QuantifiedRun], options: _Options) -> dict[str, Any]:
    return {
        "salmon_quant": "-l A --seqBias (+ --gcBias for paired-end)",
        "kmer_rule": "k=31 if mean read length > 75 else 23",
        "threads": options.threads,
        "min_mapping_rate": options.min_mapping_rate,
        "allow_low_mapping": options.allow_low_mapping,
        "tximport": {
            "expression": "lengthScaledTPM",
            "expression:counts": "no",
            "expression:tpm": "abundance",
        },
        "k": sorted({run.index.k for run in runs if run.index is not None}),
    }


def _run_notes(runs: list[QuantifiedRun]) -> dict[str, Any]:
    return {
        run.sample.accession: {
            "quant_sf": str(run.quant.path),
            "mapping_rate": run.qc.mapping_rate,
            "library_type": run.qc.library_type,
            "index": run.index.path.name if run.index is not None else None,
        }
        for run in runs
    }


@functools.lru_cache(maxsize=8)
def _read_reference_tx2gene(path: str, _stamp: tuple[int, int]) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


class _Preparation:
    """What storing the experiment's result needs that no Salmon output changes, done once, in the
    main thread while the first ``salmon quant`` runs (its ``meanwhile``): the transcript → gene
    table and its gene layout (large for real transcriptomes) and the caller's own ``meanwhile``.
    A tx2gene failure is not raised here but by the real read, later."""

    def __init__(self, reference: Reference | None, meanwhile: Callable[[], object] | None) -> None:
        self.reference = reference
        self.meanwhile = meanwhile
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        if self.meanwhile is not None:
            self.meanwhile()
        if self.reference is not None:
            reference = self.reference
            with contextlib.suppress(Exception):
                prepare_gene_layout(reference_tx2gene(reference), source=str(reference.tx2gene))


def reference_tx2gene(reference: Reference) -> pd.DataFrame:
    """The reference's ``tx2gene.tsv`` (read once per process: references are immutable).

    Keyed by path, size and modification time as well, so a replaced file is read again. Callers
    must not modify the returned frame.
    """
    stat = reference.tx2gene.stat()
    return _read_reference_tx2gene(str(reference.tx2gene), (stat.st_size, stat.st_mtime_ns))


def _tximport_and_store(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    runs: list[QuantifiedRun],
    *,
    reference: Reference,
    spec: ResultSpec,
    outcome: RnaSeqOutcome,
) -> None:
    if not runs:
        return
    tx2gene = reference_tx2gene(reference)
    by_accession = {run.sample.accession: run for run in runs}
    try:
        tables = summarize_runs([run.quant for run in runs], tx2gene, source=str(reference.tx2gene))
    except InputError as exc:
        for run in runs:
            _refuse_run(outcome, run, str(exc))
        return
    for accession, reason in tables.refused.items():
        _refuse_run(outcome, by_accession[accession], reason)
    good = [by_accession[a].sample for a in tables.counts.columns]
    qc = {a: by_accession[a].sample_qc for a in tables.counts.columns}
    result = store_gene_tables(settings, session, experiment, samples=good, tables=tables, spec=spec, qc=qc)
    outcome.processed.extend(s.accession for s in good)
    outcome.processors.update(dict.fromkeys(outcome.processed[-len(good) :], spec.processor))
    outcome.details[spec.processor] = {
        "result_id": result.id,
        "genes": len(tables.counts),
        "transcripts": tables.n_transcripts,
        "salmon_seconds": {run.sample.accession: run.salmon_seconds for run in runs},
        "salmon_shadowed": {run.sample.accession: run.salmon_shadowed for run in runs},
    }


def _process_imported(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    samples: list[Sample],
    *,
    reference: Reference | None,
    options: _Options,
    outcome: RnaSeqOutcome,
) -> None:
    if reference is None:
        for sample in samples:
            _refuse(outcome, sample, "no transcript → gene table recorded for these quantifications")
        return
    runs: list[QuantifiedRun] = []
    for number, sample in enumerate(samples):
        options.report(f"checking {sample.title or sample.accession}", number, len(samples))
        quant = Path(str(_files(sample, QUANT_KIND)[0].local_path))
        meta = next((Path(str(f.local_path)) for f in _files(sample, META_INFO_KIND)), None)
        lib = next((Path(str(f.local_path)) for f in _files(sample, LIB_FORMAT_KIND)), None)
        qc = SalmonQc.unknown() if meta is None else salmon_qc_from_files(meta, lib)
        sample_qc = {"salmon": None if meta is None else qc.as_dict()}
        shas = [f.sha256 or sha256_file(Path(str(f.local_path))) for f in _files(sample, QUANT_KIND)]
        quant_input = QuantInput(sample.accession, quant, meta)
        run = QuantifiedRun(sample, quant_input, qc, shas, None, 0.0, sample_qc=sample_qc)
        if _keep(run, options, outcome):
            runs.append(run)
    options.report("tximport", len(samples), len(samples))
    spec = ResultSpec(
        processor="tximport",
        version=genemill.__version__,
        mode="tximport-imported-quant",
        parameters={"tximport": {"expression": "lengthScaledTPM", "expression:counts": "no"}},
        input_sha256=sorted({sha for run in runs for sha in run.input_sha256} | {reference.key}),
        annotations={"reference": reference.describe(), "runs": _run_notes(runs)},
    )
    _tximport_and_store(settings, session, experiment, runs, reference=reference, spec=spec, outcome=outcome)
