"""One sample's sequencing runs through Salmon: organism check, k-mer size, index, ``salmon quant``, QC.

A run is one file (single-end) or mates 1 and 2, ordered by the ``_1``/``_2`` (or ``R1``/``R2``)
in their original names; of an ENA run listing an unpaired file besides its mates, the unpaired
reads are left out, as refine.bio does. A sample usually has one run; a GEO sample sequenced in
several SRA runs has the FASTQ files of each (``sample.annotations["sra_run_files"]``, written by
:func:`genemill.pipeline.rnaseq_survey.attach_sra_runs`, says which file is whose), and they are
quantified together by ONE ``salmon quant`` (several files per option, runs in accession order).
Its runs must share a layout: a mix of single- and paired-end runs is refused, naming the runs
(quantifying only the majority would silently drop reads of a sample the submitter described as
one library).

1. The sample's organism must be the reference's: an index of another species is refused.
2. The mean length of the first 500 reads of mate 1 picks k (31 above 75 bases, else 23) and so
   the cached index (:mod:`genemill.pipeline.salmon_index`). Should the whole file's mean (counted
   by the FASTQ check that runs alongside Salmon) fall on the other side of 75, the run is
   quantified again with the other index and the first output removed.
3. ``salmon quant`` (:mod:`genemill.pipeline.salmon`) writes to
   ``$GENEMILL_HOME/quant/<experiment>/<sample>/<index>/``; that folder is reused when it was made
   from the same FASTQ checksums (``genemill_quant.json``), so re-running tximport for an
   experiment does not re-run Salmon.
4. The sample's QC (``QuantifiedRun.sample_qc``, stored as ``sample.qc`` with the result or the
   refusal) holds Salmon's statistics, the k used and the FASTQ counts: in total and, under
   ``fastq.runs``, per run (its accession, files and reads).

An index that fails to build is built once per processing call; every run needing it is refused
with the same reason.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genemill.config import Settings
from genemill.errors import InputError, ProcessingError
from genemill.formats.fastq import FastqSummary, sample_read_length
from genemill.pipeline.rnaseq_download import RUN_FILES
from genemill.pipeline.rnaseq_store import QuantInput
from genemill.pipeline.salmon import QUANT_MARKER, SalmonQc, SalmonQuant, quantify_reads, read_salmon_qc
from genemill.pipeline.salmon_index import Reference, SalmonIndex, ensure_index, kmer_size
from genemill.store.files import sha256_file
from genemill.store.models import Experiment, OriginalFile, Sample

__all__ = [
    "FASTQ_KIND",
    "READ_LENGTH_SAMPLE",
    "RUN_FILES",
    "FastqRun",
    "IndexCache",
    "QuantifiedRun",
    "fastq_runs",
    "quantify_sample",
]

FASTQ_KIND = "FASTQ"
# Enough to tell reads above 75 bases from shorter ones (lengths within a run are near constant,
# and the whole file's mean has the last word): 0.37 ms to sample against 0.96 ms for 2,000.
READ_LENGTH_SAMPLE = 500
_MATE = re.compile(r"[._](?:R)?([12])(?:_\d{3})?\.(?:fastq|fq)(?:\.gz)?$", re.IGNORECASE)


@dataclass(frozen=True)
class QuantifiedRun:
    """A run ready for tximport: its quant.sf, QC, the checksums it came from, the index used.

    ``sample_qc`` is what becomes ``sample.qc``: stored with the result, or with the refusal.
    """

    sample: Sample
    quant: QuantInput
    qc: SalmonQc
    input_sha256: list[str]
    index: SalmonIndex | None
    salmon_seconds: float
    salmon_shadowed: bool = True  # SalmonQuant.shadowed
    sample_qc: dict[str, Any] = field(default_factory=dict)


class IndexCache:
    """The indexes of one reference by k, built at most once per processing call (failures too)."""

    def __init__(self, settings: Settings, reference: Reference, *, threads: int) -> None:
        self.settings = settings
        self.reference = reference
        self.threads = threads
        self._built: dict[int, SalmonIndex | ProcessingError] = {}

    def get(self, k: int) -> SalmonIndex:
        if k not in self._built:
            try:
                self._built[k] = ensure_index(self.settings, self.reference, k=k, threads=self.threads)
            except ProcessingError as exc:  # ToolError included: remembered, not retried per run
                self._built[k] = exc
        found = self._built[k]
        if isinstance(found, ProcessingError):
            raise found
        return found


def _check_organism(reference: Reference, sample: Sample) -> None:
    sample_organism = sample.organism.name if sample.organism is not None else None
    if reference.organism and sample_organism and reference.organism.lower() != sample_organism.lower():
        msg = (
            f"the transcriptome index {reference.path.name} was built for {reference.organism}, "
            f"but sample {sample.accession} is {sample_organism}: refusing to quantify against "
            "another species' transcripts"
        )
        raise InputError(msg)


@dataclass(frozen=True)
class FastqRun:
    """One sequencing run of a sample: its accession (the sample's, for a one-run sample), files."""

    accession: str
    files: list[OriginalFile]

    @property
    def layout(self) -> str:
        return {1: "single-end", 2: "paired-end"}.get(len(self.files), f"{len(self.files)} files")


def fastq_runs(sample: Sample) -> list[FastqRun]:
    """The sample's FASTQ files on disk by run (see the module docstring), runs in accession order."""
    files = [f for f in sample.original_files if f.kind == FASTQ_KIND and f.local_path and f.is_downloaded]
    owner = {
        url: str(run)
        for run, urls in ((sample.annotations or {}).get(RUN_FILES) or {}).items()
        for url in urls
    }
    groups: dict[str, list[OriginalFile]] = {}
    for file in files:
        groups.setdefault(owner.get(file.source_url, sample.accession), []).append(file)
    return [FastqRun(run, _run_files(groups[run])) for run in sorted(groups)]


def _run_files(files: list[OriginalFile]) -> list[OriginalFile]:
    mates = {mate: f for f in files if (mate := _mate(f)) is not None}
    if len(files) > 2 and set(mates) == {1, 2}:
        return [mates[1], mates[2]]
    if len(files) == 2:
        files.sort(key=lambda f: (_mate(f) or 9, f.filename))
    return files


def _mate(file: OriginalFile) -> int | None:
    match = _MATE.search(file.filename)
    return int(match.group(1)) if match else None


def _check_layout(sample: Sample, runs: list[FastqRun]) -> None:
    """Refuse a sample whose runs mix single- and paired-end reads (see the module docstring)."""
    if len({len(run.files) for run in runs}) > 1:
        described = ", ".join(f"{run.accession} {run.layout} ({len(run.files)} file(s))" for run in runs)
        msg = (
            f"the sequencing runs of sample {sample.accession} mix layouts ({described}): genemill "
            "quantifies a sample's runs together only when all are single-end or all paired-end"
        )
        raise InputError(msg)


def quantify_sample(
    settings: Settings,
    experiment: Experiment,
    sample: Sample,
    *,
    indexes: IndexCache,
    threads: int,
    meanwhile: Callable[[], object] | None = None,
) -> QuantifiedRun:
    """Quantify a sample's runs (steps 1–4 of the module docstring); raise InputError/ProcessingError.

    ``meanwhile`` is called while ``salmon quant`` runs (:func:`genemill.pipeline.salmon.run_salmon`);
    not at all when the quantification is cached or the sample is refused before Salmon starts.
    """
    _check_organism(indexes.reference, sample)
    runs = fastq_runs(sample)
    _check_layout(sample, runs)
    files = [file for run in runs for file in run.files]
    reads = [[Path(str(f.local_path)) for f in run.files] for run in runs]
    with reads[0][0].open("rb") as fh:
        sampled = sample_read_length(fh, max_reads=READ_LENGTH_SAMPLE)
    for file in files:
        if not file.sha256:  # downloads may lack one (assigning the same value would dirty the file)
            file.sha256 = sha256_file(Path(str(file.local_path)))
    shas = [str(f.sha256) for f in files]
    k = kmer_size(sampled.mean_length)
    index, quant = _quantify_with(
        settings, experiment, sample, reads, shas, indexes.get(k), threads=threads, meanwhile=meanwhile
    )
    if kmer_size(quant.reads.mean_length) != k:  # the first reads misled us: use the whole file's mean
        shutil.rmtree(quant.out_dir)
        k = kmer_size(quant.reads.mean_length)
        index = indexes.get(k)
        index, quant = _quantify_with(settings, experiment, sample, reads, shas, index, threads=threads)
    sample_qc = {
        "salmon": quant.qc.as_dict()
        | {"k": k, "index": index.path.name, "seconds": round(quant.salmon_seconds, 3)},
        "fastq": {
            "files": len(files),
            "runs": _run_counts(runs, quant),
            "n_reads": quant.reads.n_reads,
            "n_bases": quant.reads.n_bases,
            "mean_read_length": round(quant.reads.mean_length, 3),
            "mean_read_length_first_reads": round(sampled.mean_length, 3),
            "reads_sampled_for_k": sampled.n_reads,
        },
    }
    quant_input = QuantInput(sample.accession, quant.quant_sf, quant.out_dir / "aux_info" / "meta_info.json")
    return QuantifiedRun(
        sample,
        quant_input,
        quant.qc,
        [*shas, index.key],
        index,
        quant.salmon_seconds,
        quant.shadowed,
        sample_qc,
    )


def _run_counts(runs: list[FastqRun], quant: SalmonQuant) -> list[dict[str, Any]]:
    """Each run's accession, files and read count (counts unknown for a quant cached before runs were)."""
    counts: list[FastqSummary | None] = list(quant.run_reads)
    if len(counts) != len(runs):
        counts = [quant.reads] if len(runs) == 1 else [None] * len(runs)
    return [
        {
            "run": run.accession,
            "files": [f.filename for f in run.files],
            "n_reads": None if count is None else count.n_reads,
            "n_bases": None if count is None else count.n_bases,
        }
        for run, count in zip(runs, counts, strict=True)
    ]


def _quantify_with(
    settings: Settings,
    experiment: Experiment,
    sample: Sample,
    reads: list[list[Path]],
    shas: list[str],
    index: SalmonIndex,
    *,
    threads: int,
    meanwhile: Callable[[], object] | None = None,
) -> tuple[SalmonIndex, SalmonQuant]:
    out_dir = settings.home / "quant" / experiment.accession / sample.accession / index.path.name
    quant = _cached(out_dir, shas) or quantify_reads(
        reads,
        index.path,
        out_dir,
        threads=threads,
        sample=sample.accession,
        record={"input_sha256": shas},
        meanwhile=meanwhile,
    )
    return index, quant


def _cached(out_dir: Path, shas: list[str]) -> SalmonQuant | None:
    """A finished quantification of the same FASTQ files in ``out_dir``, or None."""
    marker_path = out_dir / QUANT_MARKER
    if not (marker_path.is_file() and (out_dir / "quant.sf").is_file()):
        return None
    marker = json.loads(marker_path.read_text())
    if marker.get("input_sha256") != shas:
        return None
    runs = marker.get("runs") or []
    n_files = int(runs[0]["n_files"]) if runs else len(marker.get("reads", [1]))
    reads = FastqSummary(int(marker["n_reads"]), int(marker["n_bases"]), n_files)
    per_run = tuple(FastqSummary(int(r["n_reads"]), int(r["n_bases"]), int(r["n_files"])) for r in runs)
    parameters = {key: value for key, value in marker.items() if key not in ("reads", "runs")}
    return SalmonQuant(out_dir, read_salmon_qc(out_dir), reads, 0.0, parameters, per_run)
