"""Build a dataset end to end, once (``build_dataset``) or as a stored request (``Dataset`` rows).

One-shot: ``build_dataset(session, spec, outputs={format: path})`` plans, builds and writes; it
raises ``DatasetSpecError`` when no matrix is left (every requested sample excluded — the message
lists why), rather than writing an empty zip (refine.bio #3510).

Stored flow (CLI ``genemill dataset create | start | status | download``, web pages, job queue):

* ``create_dataset`` validates the spec, checks every experiment exists, stores a ``CREATED`` row;
* ``start_dataset`` marks it ``QUEUED`` (from CREATED, FAILED or SUCCEEDED — a rebuild);
* ``run_dataset`` (or the job handler ``run_dataset_job(settings, dataset_id, params)`` for
  ``JobKind.DATASET``) moves it to ``RUNNING``, builds into ``<home>/datasets/<id>/dataset.<ext>``
  and records ``SUCCEEDED`` with files (path, size, sha256) and a summary, or ``FAILED`` with the
  error's type and message — whatever the exception — before re-raising it;
* ``dataset_file`` returns a finished file's path after checking its sha256; files outlive
  ``settings.dataset_lifetime_days`` only until they expire (``lifetime``: 410 in the API, then
  ``regenerate_dataset``); every dataset job ends by sweeping overdue datasets (``expire_datasets``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session

from genemill import __version__
from genemill.datasets.build import BuiltDataset, Progress, build_matrices
from genemill.datasets.lifetime import DatasetExpiredError, expire_datasets, expiry_after, is_expired
from genemill.datasets.manifest import aggregated_metadata
from genemill.datasets.models import Dataset, DatasetState
from genemill.datasets.plan import plan_dataset
from genemill.datasets.spec import DatasetSpec, OutputFormat
from genemill.datasets.writers import write_h5ad, write_parquet, write_tsv_zip
from genemill.errors import DatasetSpecError, InputError, NotFoundError, StoreError
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.files import FileStore, sha256_file
from genemill.store.models import utcnow

__all__ = [
    "EXTENSIONS",
    "DatasetOutcome",
    "OutputFile",
    "build_dataset",
    "create_dataset",
    "dataset_dict",
    "dataset_file",
    "get_dataset",
    "run_dataset",
    "run_dataset_job",
    "start_dataset",
]

EXTENSIONS = {OutputFormat.TSV_ZIP: ".zip", OutputFormat.PARQUET: ".parquet", OutputFormat.H5AD: ".h5ad"}
_WRITERS = {
    OutputFormat.TSV_ZIP: write_tsv_zip,
    OutputFormat.PARQUET: write_parquet,
    OutputFormat.H5AD: write_h5ad,
}


class DatasetSettings(Protocol):
    """What the stored flow needs from ``genemill.config.Settings``."""

    @property
    def home(self) -> Path: ...

    @property
    def resolved_database_url(self) -> str: ...

    @property
    def dataset_lifetime_days(self) -> float | None: ...


@dataclass(frozen=True)
class OutputFile:
    """A written dataset file."""

    format: OutputFormat
    path: Path
    size_in_bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form stored on the Dataset row."""
        return {
            "format": self.format.value,
            "path": str(self.path),
            "size_in_bytes": self.size_in_bytes,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class DatasetOutcome:
    """What a build produced: the built matrices (with exclusions) and the files."""

    built: BuiltDataset
    files: tuple[OutputFile, ...]

    def summary(self) -> dict[str, Any]:
        """Counts and per-matrix shapes for status displays."""
        built = self.built
        return {
            "num_samples": len({s for m in built.matrices for s in m.samples}),
            "num_excluded": len({e.sample for e in built.exclusions}),
            "exclusions": [e.to_dict() for e in built.exclusions],
            "matrices": {
                m.key: {
                    "samples": len(m.samples),
                    "genes": int(m.genes.shape[0]),
                    "value_scale": m.value_scale,
                }
                for m in built.matrices
            },
            "ks_warning": any(m.ks is not None and m.ks.warning for m in built.matrices),
        }


def _write(built: BuiltDataset, outputs: dict[OutputFormat, Path], progress: Progress) -> list[OutputFile]:
    """Write every format; if one fails, the files this build already wrote are removed too."""
    metadata = aggregated_metadata(built)
    files: list[OutputFile] = []
    complete = False
    try:
        for position, (fmt, path) in enumerate(outputs.items()):
            progress(f"write {fmt.value}", position, len(outputs))
            _WRITERS[fmt](built, path, metadata=metadata)
            files.append(OutputFile(fmt, path, path.stat().st_size, sha256_file(path)))
        complete = True
    finally:
        if not complete:
            for written in files:
                written.path.unlink(missing_ok=True)
    progress("write", len(outputs), len(outputs))
    return files


def _silent(_phase: str, _done: int, _total: int) -> None:
    return None


def build_dataset(
    session: Session,
    spec: DatasetSpec,
    *,
    outputs: dict[OutputFormat, Path],
    progress: Progress | None = None,
) -> DatasetOutcome:
    """Plan, build and write ``spec`` to ``outputs`` (format → path)."""
    report = progress or _silent
    plan = plan_dataset(session, spec)
    report("plan", 1, 1)
    built = build_matrices(plan, progress=report)
    if not built.matrices:
        reasons = "; ".join(e.sentence for e in built.exclusions[:5]) or "no samples were requested"
        more = f" (and {len(built.exclusions) - 5} more)" if len(built.exclusions) > 5 else ""
        msg = f"nothing to build: every requested sample was left out: {reasons}{more}"
        raise DatasetSpecError(msg)
    return DatasetOutcome(built=built, files=tuple(_write(built, outputs, report)))


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    """The stored dataset; ``NotFoundError`` when there is none with this id."""
    dataset = session.get(Dataset, dataset_id.strip())
    if dataset is None:
        msg = f"no dataset {dataset_id!r} in this genemill database"
        raise NotFoundError(msg)
    return dataset


def create_dataset(session: Session, spec: DatasetSpec | dict[str, Any]) -> Dataset:
    """Store a new ``CREATED`` dataset after validating ``spec`` and that its experiments exist."""
    valid = spec if isinstance(spec, DatasetSpec) else DatasetSpec.from_dict(spec)
    for accession in valid.data:
        queries.get_experiment(session, accession)
    dataset = Dataset(spec=valid.to_dict(), state=DatasetState.CREATED)
    session.add(dataset)
    session.flush()
    return dataset


def start_dataset(session: Session, dataset_id: str) -> Dataset:
    """Queue the dataset for building (a finished or failed one is rebuilt)."""
    dataset = get_dataset(session, dataset_id)
    if dataset.state == DatasetState.RUNNING:
        msg = f"dataset {dataset.id} is already being built (started {dataset.started_at})"
        raise InputError(msg)
    dataset.state = DatasetState.QUEUED
    dataset.error = dataset.error_type = None
    return dataset


def _outputs(home: Path, dataset_id: str, spec: DatasetSpec) -> dict[OutputFormat, Path]:
    folder = home / "datasets" / dataset_id
    return {fmt: folder / f"dataset{EXTENSIONS[fmt]}" for fmt in spec.formats}


def _finish(
    database: Database, dataset_id: str, outcome: DatasetOutcome | None, lifetime_days: float | None
) -> None:
    with database.session() as session:
        dataset = get_dataset(session, dataset_id)
        dataset.finished_at = utcnow()
        if outcome is not None:
            dataset.state = DatasetState.SUCCEEDED
            dataset.files = [f.to_dict() for f in outcome.files]
            dataset.summary = {**outcome.summary(), "worker_version": __version__}
            dataset.expires_at = expiry_after(dataset.finished_at, lifetime_days)
            return
        error = sys.exc_info()[1]
        dataset.state = DatasetState.FAILED
        dataset.error = str(error) if error is not None else "build interrupted"
        dataset.error_type = type(error).__name__ if error is not None else None


def run_dataset(
    database: Database, settings: DatasetSettings, dataset_id: str, *, progress: Progress | None = None
) -> Dataset:
    """Build a stored dataset now: RUNNING, then SUCCEEDED with its files or FAILED with the error."""
    with database.session() as session:
        dataset = get_dataset(session, dataset_id)
        if dataset.state == DatasetState.RUNNING:
            msg = f"dataset {dataset.id} is already being built (started {dataset.started_at})"
            raise InputError(msg)
        spec = DatasetSpec.from_dict(dataset.spec)
        dataset.state = DatasetState.RUNNING
        dataset.started_at, dataset.finished_at = utcnow(), None
        dataset.error = dataset.error_type = None
    outcome = None
    try:
        with database.session() as session:
            outcome = build_dataset(
                session, spec, outputs=_outputs(settings.home, dataset_id, spec), progress=progress
            )
    finally:
        _finish(database, dataset_id, outcome, settings.dataset_lifetime_days)
    with database.session() as session:
        return get_dataset(session, dataset_id)


def run_dataset_job(settings: DatasetSettings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler for ``JobKind.DATASET`` (target = dataset id); then expires overdue datasets."""
    del params
    database = Database(settings.resolved_database_url)
    try:
        dataset = run_dataset(database, settings, target)
        with database.session() as session:
            expire_datasets(session)
    finally:
        database.dispose()
    return {"dataset": dataset.id, "state": dataset.state.value, "files": dataset.files}


def dataset_dict(dataset: Dataset) -> dict[str, Any]:
    """A stored dataset as the CLI / API show it."""
    return {
        "id": dataset.id,
        "state": dataset.state.value,
        "spec": dataset.spec,
        "error": dataset.error,
        "error_type": dataset.error_type,
        "files": dataset.files,
        "summary": dataset.summary,
        "created_at": _iso(dataset.created_at),
        "started_at": _iso(dataset.started_at),
        "finished_at": _iso(dataset.finished_at),
        "expires_at": _iso(dataset.expires_at),
        "is_expired": is_expired(dataset),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def dataset_file(session: Session, dataset_id: str, *, fmt: OutputFormat | None = None) -> Path:
    """Path of a finished dataset's file (first format when ``fmt`` is None), sha256 checked."""
    dataset = get_dataset(session, dataset_id)
    if is_expired(dataset):
        raise DatasetExpiredError(dataset)
    if dataset.state != DatasetState.SUCCEEDED:
        msg = f"dataset {dataset.id} has no files yet: it is {dataset.state.value}"
        raise InputError(msg)
    wanted = [f for f in dataset.files if fmt is None or f["format"] == fmt.value]
    if not wanted:
        have = ", ".join(f["format"] for f in dataset.files)
        msg = f"dataset {dataset.id} was not built as {fmt.value if fmt else '?'} (it has: {have})"
        raise NotFoundError(msg)
    path = Path(wanted[0]["path"])
    if not path.is_file():
        msg = f"dataset {dataset.id}: file {path} is gone; start the dataset again to rebuild it"
        raise StoreError(msg)
    FileStore(path.parent).verify(path, wanted[0]["sha256"])
    return path
