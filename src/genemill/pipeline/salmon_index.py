"""Transcriptome references and their Salmon indexes, built once and cached by input checksum.

A *reference* (``$GENEMILL_HOME/references/<key>/``) is what an index is built from: a transcript
FASTA (given, or cut from a genome FASTA with a GTF's exon rows, :mod:`genemill.formats.fasta`),
the transcript → gene table matched to its transcript names (``tx2gene.tsv``), and what it is:
organism, source (e.g. ``Ensembl``), release, assembly. ``key`` is the sha256 of the inputs'
sha256s and that description, so the same files registered twice are one reference. A reference
may hold only a tx2gene table (for imported ``quant.sf`` files, no index).

An *index* (``$GENEMILL_HOME/indexes/<sha>-k<k>/``) is ``salmon index -t transcripts -k k`` of one
reference; ``<sha>`` hashes the reference key and the Salmon version (an index is only read by
the Salmon that wrote it). It is built in a temporary directory beside the cache and renamed into
place, so a crashed build leaves no half index; ``genemill_index.json`` records the reference,
the k-mer size, the Salmon version and the build time. k-mer sizes follow refine.bio: 31 (LONG)
for runs whose mean read length is above 75 bases, 23 (SHORT) otherwise.

tx2gene matching (``resolve_tx2gene``): a transcript name is looked up as written, then without a
trailing ``.N`` version on both sides, then (GENCODE ``|``-joined names) by its first field.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from genemill.config import Settings
from genemill.errors import FormatError, InputError
from genemill.formats.fasta import extract_transcripts, fasta_names, read_exon_models, write_fasta
from genemill.formats.gtf import (
    read_tx2gene_gtf,
    read_tx2gene_table,
    strip_version,
    tx2gene_from_gencode_names,
)
from genemill.pipeline.salmon import run_salmon, salmon_executable, salmon_version
from genemill.store.files import sha256_file

__all__ = [
    "LONG_K",
    "LONG_READS_ABOVE",
    "SHORT_K",
    "Reference",
    "SalmonIndex",
    "ensure_index",
    "find_reference",
    "kmer_size",
    "list_indexes",
    "list_references",
    "load_reference",
    "load_tx2gene",
    "register_reference",
    "resolve_tx2gene",
]

LONG_K, SHORT_K, LONG_READS_ABOVE = 31, 23, 75.0
_REFERENCE_JSON = "reference.json"
_INDEX_JSON = "genemill_index.json"


def kmer_size(mean_read_length: float) -> int:
    """refine.bio's rule: k = 31 for mean read length > 75 bases, else 23."""
    return LONG_K if mean_read_length > LONG_READS_ABOVE else SHORT_K


@dataclass(frozen=True)
class Reference:
    """A registered transcriptome (paths inside ``path``; ``transcripts`` None for tx2gene-only)."""

    key: str
    path: Path
    organism: str | None
    source: str
    release: str
    assembly: str
    inputs: dict[str, str]
    n_transcripts: int | None

    @property
    def transcripts(self) -> Path | None:
        found = sorted(self.path.glob("transcripts.fa*"))
        return found[0] if found else None

    @property
    def tx2gene(self) -> Path:
        return self.path / "tx2gene.tsv"

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (stored on indexes and processing results)."""
        return {
            "key": self.key,
            "organism": self.organism,
            "source": self.source,
            "release": self.release,
            "assembly": self.assembly,
            "inputs": dict(self.inputs),
            "n_transcripts": self.n_transcripts,
        }


@dataclass(frozen=True)
class SalmonIndex:
    """A built Salmon index and what it was built from."""

    path: Path
    key: str
    k: int
    salmon_version: str
    reference: Reference
    build_seconds: float
    cached: bool

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "k": self.k,
            "salmon_version": self.salmon_version,
            "reference": self.reference.describe(),
            "build_seconds": self.build_seconds,
        }


def _digest(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def register_reference(
    settings: Settings,
    *,
    transcripts: Path | None = None,
    genome: Path | None = None,
    gtf: Path | None = None,
    tx2gene: Path | None = None,
    organism: str | None = None,
    source: str = "",
    release: str = "",
    assembly: str = "",
    names: list[str] | None = None,
    drop_pseudogenes: bool = True,
) -> Reference:
    """Store a transcriptome reference (or reuse the identical one already stored).

    Give ``transcripts`` (FASTA), or ``genome`` + ``gtf`` (transcripts cut from the genome), or
    only ``tx2gene`` (with ``names``, the quantified transcript names, to orient the table).
    The transcript → gene table comes from ``tx2gene`` (two columns, either order, or a GTF),
    else ``gtf``, else GENCODE ``|`` names; every transcript of the FASTA must be in it.
    """
    if genome is not None and gtf is None:
        msg = "a genome FASTA needs a GTF (--gtf) to find the transcripts' exons"
        raise InputError(msg)
    if transcripts is None and genome is None and tx2gene is None:
        msg = "give a transcript FASTA, a genome FASTA with a GTF, or a tx2gene table"
        raise InputError(msg)
    roles = {"transcripts": transcripts, "genome": genome, "gtf": gtf, "tx2gene": tx2gene}
    inputs = {role: sha256_file(path) for role, path in roles.items() if path is not None}
    about = {"organism": organism, "source": source, "release": release, "assembly": assembly}
    key = _digest(
        {"inputs": inputs, "about": about, "drop_pseudogenes": drop_pseudogenes and genome is not None}
    )
    target = settings.home / "references" / key[:16]
    if (target / _REFERENCE_JSON).is_file():
        return load_reference(settings, key[:16])
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        count = _write_reference_files(work, roles, names=names, drop_pseudogenes=drop_pseudogenes)
        record = {"key": key, **about, "inputs": inputs, "n_transcripts": count}
        (work / _REFERENCE_JSON).write_text(json.dumps(record, indent=1))
        _rename_into_place(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return load_reference(settings, key[:16])


def _write_reference_files(
    work: Path, roles: dict[str, Path | None], *, names: list[str] | None, drop_pseudogenes: bool
) -> int | None:
    transcripts, genome, gtf, tx2gene = (roles[r] for r in ("transcripts", "genome", "gtf", "tx2gene"))
    if transcripts is not None:
        suffix = ".fa.gz" if transcripts.name.endswith(".gz") else ".fa"
        shutil.copyfile(transcripts, work / f"transcripts{suffix}")
    elif genome is not None and gtf is not None:
        with gtf.open("rb") as fh:
            models = read_exon_models(fh, drop_pseudogenes=drop_pseudogenes)
        with genome.open("rb") as fh, (work / "transcripts.fa").open("wb") as out:
            write_fasta(extract_transcripts(fh, models), out)
    fasta = next(iter(sorted(work.glob("transcripts.fa*"))), None)
    if fasta is not None:
        with fasta.open("rb") as fh:
            names = fasta_names(fh)
        _check_unique(names, fasta if transcripts is None else transcripts)
    table = _tx2gene_source(tx2gene, gtf, names)
    if fasta is not None and names is not None:
        table = resolve_tx2gene(table, names, source=str(tx2gene or gtf or "transcript names"))
    table.to_csv(work / "tx2gene.tsv", sep="\t", index=False)
    return None if fasta is None or names is None else len(names)


def _check_unique(names: list[str], path: Path) -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        msg = f"{path}: transcript name {repeated[0]!r} appears more than once (Salmon needs unique names)"
        raise InputError(msg)


def _tx2gene_source(tx2gene: Path | None, gtf: Path | None, names: list[str] | None) -> pd.DataFrame:
    if tx2gene is not None:
        return load_tx2gene(tx2gene, names=names)
    if gtf is not None:
        return load_tx2gene(gtf, names=names)
    if names and all("|" in name for name in names[:100]):
        return tx2gene_from_gencode_names(names)
    msg = (
        "no transcript → gene table: give --gtf or --tx2gene (the FASTA names are not GENCODE "
        "'transcript|gene|…' names)"
    )
    raise InputError(msg)


def load_tx2gene(path: Path, *, names: list[str] | None = None) -> pd.DataFrame:
    """Read a GTF or a two-column table, transcript column first or second.

    The column order is taken from the ids when they are Ensembl-style (``ENS…T`` / ``ENS…G``),
    else from which column shares more ids with ``names`` (the transcripts to be mapped).
    """
    base = path.name[:-3] if path.name.endswith(".gz") else path.name
    if base.endswith((".gtf", ".gff2")):
        with path.open("rb") as fh:
            return read_tx2gene_gtf(fh, versions="keep")
    data = path.read_bytes()
    try:
        table = read_tx2gene_table(_named_buffer(data, path), order="transcript_gene")
    except FormatError as first:
        try:  # refine.bio's genes_to_transcripts.txt has the gene first
            table = read_tx2gene_table(_named_buffer(data, path), order="gene_transcript")
        except FormatError:
            raise first from None
    if names:
        wanted = set(strip_version(names[:5000]))
        forward = len(wanted & set(strip_version(table["transcript_id"])))
        backward = len(wanted & set(strip_version(table["gene_id"])))
        if backward > forward:
            table = table.rename(columns={"transcript_id": "gene_id", "gene_id": "transcript_id"})
    return table[["transcript_id", "gene_id"]]


def _named_buffer(data: bytes, path: Path) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = str(path)  # so format errors name the file
    return buffer


def resolve_tx2gene(table: pd.DataFrame, names: list[str], *, source: str) -> pd.DataFrame:
    """Return tx2gene rows for exactly ``names`` (in order); raise naming the ones not found."""
    columns = [c for c in ("gene_id", "gene_name") if c in table.columns]
    if len(table) == len(names) and table["transcript_id"].tolist() == list(names):
        return table[["transcript_id", *columns]]  # a reference's own table: already resolved
    exact = table.drop_duplicates("transcript_id").set_index("transcript_id")[columns]
    found = exact.reindex(names)
    missing = found["gene_id"].isna().to_numpy()
    if missing.any():
        bare = table.assign(transcript_id=strip_version(table["transcript_id"]))
        bare_index = bare.drop_duplicates("transcript_id").set_index("transcript_id")[columns]
        keys = strip_version(name.split("|", 1)[0] for name in names)
        fallback = bare_index.reindex(keys)
        found.loc[missing, columns] = fallback.loc[missing, columns].to_numpy()
        missing = found["gene_id"].isna().to_numpy()
    if missing.any():
        absent = [name for name, gone in zip(names, missing, strict=True) if gone]
        msg = (
            f"{len(absent)} of {len(names)} transcripts are not in the transcript → gene table "
            f"{source} (e.g. {absent[:3]}): a tx2gene for another annotation release?"
        )
        raise InputError(msg)
    return found.reset_index(names="transcript_id")


def load_reference(settings: Settings, key: str) -> Reference:
    """The stored reference whose key starts with ``key`` (16 or 64 hex digits)."""
    path = settings.home / "references" / key[:16]
    try:
        record = json.loads((path / _REFERENCE_JSON).read_text())
    except FileNotFoundError as exc:
        msg = f"no transcriptome reference {key[:16]} in {path.parent}"
        raise InputError(msg) from exc
    return Reference(
        key=record["key"],
        path=path,
        organism=record.get("organism"),
        source=record.get("source", ""),
        release=record.get("release", ""),
        assembly=record.get("assembly", ""),
        inputs=record.get("inputs", {}),
        n_transcripts=record.get("n_transcripts"),
    )


def list_references(settings: Settings) -> list[Reference]:
    """Every stored reference, most recently registered first."""
    root = settings.home / "references"
    found = sorted(root.glob(f"*/{_REFERENCE_JSON}"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [load_reference(settings, path.parent.name) for path in found]


def find_reference(settings: Settings, organism: str) -> Reference | None:
    """The most recently registered reference with transcripts for ``organism``, if any."""
    for reference in list_references(settings):
        if reference.transcripts and (reference.organism or "").lower() == organism.lower():
            return reference
    return None


def list_indexes(settings: Settings, reference: Reference) -> list[SalmonIndex]:
    """The built Salmon indexes of ``reference`` (any Salmon version), by k."""
    indexes = []
    for path in sorted((settings.home / "indexes").glob(f"*/{_INDEX_JSON}")):
        record = json.loads(path.read_text())
        if record.get("reference", {}).get("key") != reference.key:
            continue
        indexes.append(
            SalmonIndex(
                path.parent,
                record["key"],
                int(record["k"]),
                str(record["salmon_version"]),
                reference,
                float(record["build_seconds"]),
                cached=True,
            )
        )
    return sorted(indexes, key=lambda index: (index.k, index.salmon_version))


def ensure_index(settings: Settings, reference: Reference, *, k: int, threads: int = 1) -> SalmonIndex:
    """Return the cached Salmon index of ``reference`` for ``k``, building it first if needed."""
    transcripts = reference.transcripts
    if transcripts is None:
        msg = f"reference {reference.key[:16]} holds only a tx2gene table: no transcripts to index"
        raise InputError(msg)
    version = salmon_version()
    key = _digest({"reference": reference.key, "salmon": version})
    target = settings.home / "indexes" / f"{key[:16]}-k{k}"
    if (target / _INDEX_JSON).is_file():
        record = json.loads((target / _INDEX_JSON).read_text())
        return SalmonIndex(target, key, k, version, reference, record["build_seconds"], cached=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".build-{target.name}-", dir=target.parent))
    try:
        args = ["--no-version-check", "index", "-t", str(transcripts), "-k", str(k), "-i", str(work)]
        run = run_salmon([*args, "-p", str(threads)], what=f"salmon index (k={k}) of {transcripts}")
        index = SalmonIndex(target, key, k, version, reference, round(run.seconds, 3), cached=False)
        record = index.describe() | {
            "built_at": dt.datetime.now(dt.UTC).isoformat(),
            "salmon": salmon_executable(),
        }
        (work / _INDEX_JSON).write_text(json.dumps(record, indent=1))
        _rename_into_place(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return index


def _rename_into_place(work: Path, target: Path) -> None:
    """Rename a finished build to ``target``; if another process won the race, keep theirs."""
    try:
        work.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(work)
