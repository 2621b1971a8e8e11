"""Quantile-normalization targets: one reference distribution per organism (optionally per platform).

Built as refine.bio's QN_REFERENCE processor does (ANCHOR.md §2.8), from the database's own data:

* eligible samples: the organism's processed microarray samples with raw data (``has_raw``), whose
  current result is not a submitter table, with ``log2`` values (linear values are log2-transformed);
* platform: the one asked for, else the platform with the most eligible samples (refine.bio);
* gene set: the genes measured in the first eligible sample (files in id order, columns in file
  order); a sample measuring a different set of genes, or with a missing value, is skipped (counted);
* target: the running sum of every used sample's sorted values, divided by their number — the mean
  of the sorted columns, ``preprocessCore::normalize.quantiles.determine.target`` — read one file
  and at most 64 columns at a time, so memory does not grow with the number of samples.

The target is stored as a one-column Parquet file (``target``, float64, ascending) in the
content-addressed file store, recorded as a ``ComputedFile`` of kind ``qn_target`` under a
``ProcessingResult`` with processor ``qn_target``, ``mode`` = the target key (``HOMO_SAPIENS`` or
``HOMO_SAPIENS:GPL570``) and annotations (version, platform, samples used and skipped, gene count).
Rebuilding makes version n + 1 current; datasets use the current organism-level target and
record its version and sha256. Samples are listed in the annotations, not linked as result samples,
so a target never looks like one of a sample's processing results.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from genemill import __version__ as genemill_version
from genemill.datasets.spec import CollapseRule
from genemill.datasets.values import ValueScaling, read_file_genes, read_values
from genemill.errors import InputError, NotFoundError
from genemill.store.files import FileStore
from genemill.store.models import (
    ComputedFile,
    Organism,
    ProcessingResult,
    ProcessingState,
    Sample,
    Technology,
    utcnow,
)
from genemill.store.results import current_values

__all__ = ["QN_TARGET", "TargetInfo", "build_qn_target", "find_qn_target", "load_qn_target", "target_key"]

QN_TARGET = "qn_target"
_COLUMNS_PER_READ = 64
MICROARRAY_VALUE_TYPES = {"log2": ValueScaling.KEEP, "linear": ValueScaling.LOG2}


class HasFilesDir(Protocol):
    """What target building needs from Settings: the file store's root."""

    @property
    def files_dir(self) -> Path: ...


@dataclass(frozen=True)
class TargetInfo:
    """A stored target: where, which version, built from what."""

    key: str
    organism: str
    version: int
    path: Path
    sha256: str
    n_samples: int
    n_genes: int
    platform: str | None
    result_id: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description for dataset metadata."""
        return {
            "source": "stored",
            "key": self.key,
            "organism": self.organism,
            "version": self.version,
            "sha256": self.sha256,
            "n_samples": self.n_samples,
            "n_genes": self.n_genes,
            "platform": self.platform,
            "result_id": self.result_id,
        }


def target_key(organism_code: str, platform: str | None = None) -> str:
    """``HOMO_SAPIENS`` or ``HOMO_SAPIENS:GPL570``."""
    return f"{organism_code}:{platform}" if platform else organism_code


def _info(result: ProcessingResult, file: ComputedFile) -> TargetInfo:
    notes = result.annotations
    return TargetInfo(
        key=result.mode,
        organism=str(notes.get("organism", "")),
        version=int(notes.get("version", 0)),
        path=Path(file.path),
        sha256=file.sha256,
        n_samples=len(notes.get("samples", [])),
        n_genes=int(notes.get("n_genes", 0)),
        platform=notes.get("platform"),
        result_id=result.id,
    )


def find_qn_target(session: Session, key: str) -> TargetInfo | None:
    """The current target stored under ``key`` (see ``target_key``), or None."""
    query = (
        select(ProcessingResult)
        .where(ProcessingResult.processor == QN_TARGET, ProcessingResult.mode == key)
        .where(ProcessingResult.is_current.is_(True))
        .options(selectinload(ProcessingResult.files))
        .order_by(ProcessingResult.id.desc())
    )
    for result in session.scalars(query):
        for file in result.files:
            if file.kind == QN_TARGET:
                return _info(result, file)
    return None


def load_qn_target(info: TargetInfo) -> npt.NDArray[np.float64]:
    """The target's sorted values, after checking the file still hashes to the recorded sha256."""
    FileStore(info.path.parent).verify(info.path, info.sha256)
    values: npt.NDArray[np.float64] = pq.read_table(info.path).column("target").to_numpy()
    return values


def _organism(session: Session, organism: str) -> Organism:
    wanted = organism.strip()
    for candidate in session.scalars(select(Organism)):
        if wanted.upper() in {candidate.name.upper(), candidate.code} or wanted == str(candidate.taxonomy_id):
            return candidate
    msg = f"no organism {organism!r} in this genemill database (by name, HOMO_SAPIENS-style code or taxon id)"
    raise NotFoundError(msg)


@dataclass(frozen=True)
class _Candidate:
    sample: Sample
    path: Path
    scaling: ValueScaling
    sha256: str


def _eligible(session: Session, organism: Organism) -> list[_Candidate]:
    query = (
        select(Sample)
        .where(Sample.organism_id == organism.id, Sample.has_raw.is_(True))
        .where(Sample.processing_state == ProcessingState.PROCESSED)
        .where(Sample.technology == Technology.MICROARRAY)
        .options(selectinload(Sample.results).selectinload(ProcessingResult.files))
        .options(selectinload(Sample.platform))
        .order_by(Sample.accession)
    )
    out = []
    for sample in session.scalars(query):
        values = current_values(sample)
        if values is None or _is_submitter(values.result):
            continue
        scaling = MICROARRAY_VALUE_TYPES.get(values.value_type.lower())
        if scaling is not None and values.path.is_file():
            digest = next(f.sha256 for f in values.result.files if Path(f.path) == values.path)
            out.append(_Candidate(sample, values.path, scaling, digest))
    return out


def _is_submitter(result: ProcessingResult) -> bool:
    return result.mode == "submitter" or bool(result.annotations.get("submitter_processed"))


def _platform_of(sample: Sample) -> str:
    return sample.platform.accession if sample.platform else ""


def _choose_platform(candidates: list[_Candidate], platform: str | None) -> str:
    if platform is not None:
        return platform.upper()
    counts = Counter(_platform_of(c.sample) for c in candidates)
    return min(counts, key=lambda p: (-counts[p], p)) if counts else ""


@dataclass
class _Accumulator:
    """Running sum of sorted columns over samples measuring the reference gene set."""

    genes: npt.NDArray[np.object_] | None = None
    total: npt.NDArray[np.float64] | None = None
    used: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, sample: str, genes: npt.NDArray[np.object_], values: npt.NDArray[np.float32]) -> None:
        """Add one sample's measured genes and values (NaN already removed)."""
        if genes.shape[0] == 0:
            self.skipped[sample] = "no values"
            return
        if self.genes is None:
            self.genes = genes
            self.total = np.zeros(genes.shape[0], dtype=np.float64)
        elif not np.array_equal(genes, self.genes):
            self.skipped[sample] = (
                f"measures {genes.shape[0]} genes, not the reference set of {self.genes.shape[0]}"
            )
            return
        assert self.total is not None
        self.total += np.sort(values.astype(np.float64))
        self.used.append(sample)


def _accumulate(by_file: dict[Path, list[tuple[str, ValueScaling]]]) -> _Accumulator:
    acc = _Accumulator()
    for path, members in by_file.items():
        genes = read_file_genes(path)
        ids = genes.gene_ids()
        for start in range(0, len(members), _COLUMNS_PER_READ):
            chunk = members[start : start + _COLUMNS_PER_READ]
            block = read_values(
                path,
                genes,
                [name for name, _ in chunk],
                scalings=[scaling for _, scaling in chunk],
                collapse=CollapseRule.MEAN,
            )
            for j, (name, _) in enumerate(chunk):
                present = ~np.isnan(block[:, j])
                acc.add(name, ids[present], block[present, j])
    return acc


def _write_target(store: FileStore, values: npt.NDArray[np.float64], notes: dict[str, Any]) -> Path:
    table = pa.table({"target": pa.array(values, pa.float64())})
    table = table.replace_schema_metadata({b"genemill": json.dumps(notes, default=str).encode()})
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.root) as tmp:
        staged = Path(tmp) / "target.parquet"
        pq.write_table(table, staged)
        return store.put(staged, suffix=".qn_target.parquet").path


def build_qn_target(
    session: Session,
    settings: HasFilesDir,
    organism: str,
    *,
    platform: str | None = None,
    min_samples: int = 100,
) -> TargetInfo:
    """Build and store a new current QN target for ``organism`` (see the module docstring)."""
    species = _organism(session, organism)
    candidates = _eligible(session, species)
    chosen = _choose_platform(candidates, platform)
    members = [c for c in candidates if _platform_of(c.sample) == chosen]
    by_file: dict[Path, list[tuple[str, ValueScaling]]] = {}
    for member in members:
        by_file.setdefault(member.path, []).append((member.sample.accession, member.scaling))
    acc = _accumulate(by_file)
    used = acc.used
    if len(used) < min_samples or acc.total is None:
        msg = (
            f"cannot build a QN target for {species.name} (platform {chosen or 'none'}): "
            f"{len(used)} usable processed raw-data microarray samples, need at least {min_samples}"
        )
        raise InputError(msg)
    inputs = sorted({c.sha256 for c in members if c.sample.accession in set(used)})
    return _record(session, settings, species, acc=acc, platform=platform, chosen=chosen, inputs=inputs)


def _record(
    session: Session,
    settings: HasFilesDir,
    species: Organism,
    *,
    acc: _Accumulator,
    platform: str | None,
    chosen: str,
    inputs: list[str],
) -> TargetInfo:
    assert acc.total is not None and acc.genes is not None
    key = target_key(species.code, platform.upper() if platform else None)
    previous = session.scalars(
        select(ProcessingResult).where(ProcessingResult.processor == QN_TARGET, ProcessingResult.mode == key)
    ).all()
    version = 1 + max((int(r.annotations.get("version", 0)) for r in previous), default=0)
    notes: dict[str, Any] = {
        "organism": species.name,
        "organism_code": species.code,
        "version": version,
        "platform": chosen,
        "samples": acc.used,
        "skipped": acc.skipped,
        "n_genes": int(acc.genes.shape[0]),
        "value_type": "log2",
    }
    path = _write_target(FileStore(settings.files_dir / "qn_targets"), acc.total / len(acc.used), notes)
    for old in previous:
        old.is_current = False
    result = ProcessingResult(
        processor=QN_TARGET,
        processor_version=genemill_version,
        mode=key,
        parameters={"platform": chosen, "algorithm": "mean of sorted columns"},
        input_sha256=inputs,
        annotations=notes,
        time_end=utcnow(),
    )
    digest = path.name.split(".")[0]
    result.files.append(
        ComputedFile(kind=QN_TARGET, path=str(path), size_in_bytes=path.stat().st_size, sha256=digest)
    )
    result.output_sha256 = digest
    session.add(result)
    session.flush()
    return _info(result, result.files[0])
