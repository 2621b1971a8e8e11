"""One sequencing run through Salmon: organism check, k-mer size, index, ``salmon quant``, QC.

A run is a sample's FASTQ OriginalFiles: one file (single-end) or mates 1 and 2, ordered by the
``_1``/``_2`` (or ``R1``/``R2``) in their original names; of an ENA run listing an unpaired file
besides its mates, the unpaired reads are left out, as refine.bio does.

1. The sample's organism must be the reference's: an index of another species is refused.
2. The mean length of the first 2,000 reads of mate 1 picks k (31 above 75 bases, else 23) and so
   the cached index (:mod:`genemill.pipeline.salmon_index`). Should the whole file's mean (counted
   by the FASTQ check that runs alongside Salmon) fall on the other side of 75, the run is
   quantified again with the other index and the first output removed.
3. ``salmon quant`` (:mod:`genemill.pipeline.salmon`) writes to
   ``$GENEMILL_HOME/quant/<experiment>/<sample>/<index>/``; that folder is reused when it was made
   from the same FASTQ checksums (``genemill_quant.json``), so re-running tximport for an
   experiment does not re-run Salmon.
4. ``sample.qc`` gets Salmon's statistics, the k used and the FASTQ counts.

An index that fails to build is built once per processing call; every run needing it is refused
with the same reason.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from genemill.config import Settings
from genemill.errors import InputError, ProcessingError
from genemill.formats.fastq import FastqSummary, sample_read_length
from genemill.pipeline.rnaseq_store import QuantInput
from genemill.pipeline.salmon import QUANT_MARKER, SalmonQc, SalmonQuant, quantify_reads, read_salmon_qc
from genemill.pipeline.salmon_index import Reference, SalmonIndex, ensure_index, kmer_size
from genemill.store.files import sha256_file
from genemill.store.models import Experiment, OriginalFile, Sample

__all__ = [
    "FASTQ_KIND",
    "READ_LENGTH_SAMPLE",
    "IndexCache",
    "QuantifiedRun",
    "fastq_files",
    "quantify_sample",
]

FASTQ_KIND = "FASTQ"
READ_LENGTH_SAMPLE = 2_000
_MATE = re.compile(r"[._](?:R)?([12])(?:_\d{3})?\.(?:fastq|fq)(?:\.gz)?$", re.IGNORECASE)


@dataclass(frozen=True)
class QuantifiedRun:
    """A run ready for tximport: its quant.sf, QC, the checksums it came from, the index used."""

    sample: Sample
    quant: QuantInput
    qc: SalmonQc
    input_sha256: list[str]
    index: SalmonIndex | None
    salmon_seconds: float


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


def fastq_files(sample: Sample) -> list[OriginalFile]:
    """The run's FASTQ files on disk: one, or mate 1 then mate 2 (unpaired extras left out)."""
    files = [f for f in sample.original_files if f.kind == FASTQ_KIND and f.local_path and f.is_downloaded]
    mates = {mate: f for f in files if (mate := _mate(f)) is not None}
    if len(files) > 2 and set(mates) == {1, 2}:
        return [mates[1], mates[2]]
    if len(files) == 2:
        files.sort(key=lambda f: (_mate(f) or 9, f.filename))
    return files


def _mate(file: OriginalFile) -> int | None:
    match = _MATE.search(file.filename)
    return int(match.group(1)) if match else None


def quantify_sample(
    settings: Settings, experiment: Experiment, sample: Sample, *, indexes: IndexCache, threads: int
) -> QuantifiedRun:
    """Quantify one run (steps 1–4 of the module docstring); raise InputError/ProcessingError."""
    _check_organism(indexes.reference, sample)
    files = fastq_files(sample)
    reads = [Path(str(f.local_path)) for f in files]
    with reads[0].open("rb") as fh:
        sampled = sample_read_length(fh, max_reads=READ_LENGTH_SAMPLE)
    for file, path in zip(files, reads, strict=True):
        file.sha256 = file.sha256 or sha256_file(path)  # downloaded files may not carry one yet
    shas = [str(f.sha256) for f in files]
    k = kmer_size(sampled.mean_length)
    index, quant = _quantify_with(settings, experiment, sample, reads, shas, indexes.get(k), threads=threads)
    if kmer_size(quant.reads.mean_length) != k:  # the first reads misled us: use the whole file's mean
        shutil.rmtree(quant.out_dir)
        k = kmer_size(quant.reads.mean_length)
        index = indexes.get(k)
        index, quant = _quantify_with(settings, experiment, sample, reads, shas, index, threads=threads)
    sample.qc = {
        "salmon": quant.qc.as_dict()
        | {"k": k, "index": index.path.name, "seconds": round(quant.salmon_seconds, 3)},
        "fastq": {
            "files": len(reads),
            "n_reads": quant.reads.n_reads,
            "n_bases": quant.reads.n_bases,
            "mean_read_length": round(quant.reads.mean_length, 3),
            "mean_read_length_first_reads": round(sampled.mean_length, 3),
            "reads_sampled_for_k": sampled.n_reads,
        },
    }
    quant_input = QuantInput(sample.accession, quant.quant_sf, quant.out_dir / "aux_info" / "meta_info.json")
    return QuantifiedRun(sample, quant_input, quant.qc, [*shas, index.key], index, quant.salmon_seconds)


def _quantify_with(
    settings: Settings,
    experiment: Experiment,
    sample: Sample,
    reads: list[Path],
    shas: list[str],
    index: SalmonIndex,
    *,
    threads: int,
) -> tuple[SalmonIndex, SalmonQuant]:
    out_dir = settings.home / "quant" / experiment.accession / sample.accession / index.path.name
    quant = _cached(out_dir, shas) or quantify_reads(
        reads, index.path, out_dir, threads=threads, sample=sample.accession, record={"input_sha256": shas}
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
    reads = FastqSummary(int(marker["n_reads"]), int(marker["n_bases"]), len(marker.get("reads", [1])))
    parameters = {key: value for key, value in marker.items() if key != "reads"}
    return SalmonQuant(out_dir, read_salmon_qc(out_dir), reads, 0.0, parameters)
