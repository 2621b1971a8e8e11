"""Dataset requests as the API and the cart pages handle them, on top of ``genemill.datasets``.

* refine.bio's request names are accepted (``scale_by`` NONE/MINMAX/STANDARD/ROBUST, which wins over
  ``transform``; ``quant_sf_only``/``svd_algorithm``/email fields are ignored) and everything else
  goes through ``DatasetSpec.from_dict`` (so a bad request is a ``DatasetSpecError``, HTTP 400);
* a request can change while it is ``CREATED`` or ``FAILED``; once queued, running or built it is
  immutable (refine.bio: processed datasets are immutable) — create a new one instead;
* the cart adds or removes whole experiments (``["ALL"]``) or single samples;
* ``public_dict`` is what clients see: local file paths are replaced by download URLs, shown only
  to holders of an activated token and only while the files have not expired (``expires_on``,
  ``is_expired``, ``is_available`` as refine.bio names them);
* ``queue_regeneration`` rebuilds an expired dataset from its stored request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genemill.datasets import (
    Dataset,
    DatasetSpec,
    DatasetState,
    create_dataset,
    dataset_dict,
    get_dataset,
    is_expired,
    regenerate_dataset,
    start_dataset,
)
from genemill.datasets.spec import ALL_SAMPLES
from genemill.errors import DatasetSpecError, InputError
from genemill.pipeline.jobs import JobKind, enqueue
from genemill.store import catalog
from genemill.store.models import Experiment, Sample, experiment_sample

__all__ = [
    "EDITABLE",
    "add_to_request",
    "canonical_request",
    "cart_summary",
    "public_dict",
    "queue_dataset",
    "queue_regeneration",
    "remove_from_request",
    "spec_from_request",
    "update_request",
]

EDITABLE = (DatasetState.CREATED, DatasetState.FAILED)
_SCALE_BY = {"NONE": "NONE", "MINMAX": "MINMAX", "STANDARD": "ZSCORE", "ROBUST": "ROBUST"}
_IGNORED = ("quant_sf_only", "svd_algorithm", "email_address", "email_ccdl_ok", "notify_me", "start")


def canonical_request(session: Session, body: dict[str, Any]) -> DatasetSpec:
    """``spec_from_request`` with experiments keyed by their canonical accession (E-GEOD-781 → GSE781)."""
    spec = spec_from_request(body)
    data: dict[str, list[str]] = {}
    for accession, samples in spec.data.items():
        code = catalog.get_experiment_accession(session, accession)
        data[code] = sorted({*data.get(code, []), *samples})
    return DatasetSpec.from_dict({**spec.to_dict(), "data": data})


def spec_from_request(body: dict[str, Any]) -> DatasetSpec:
    """A validated spec from a request body in genemill's or refine.bio's vocabulary."""
    values = {k: v for k, v in body.items() if k not in _IGNORED}
    if "scale_by" in values:
        scale = str(values.pop("scale_by")).upper()
        if scale not in _SCALE_BY:
            msg = f"scale_by: expected one of {', '.join(_SCALE_BY)}, found {scale!r}"
            raise DatasetSpecError(msg)
        values["transform"] = _SCALE_BY[scale]
    return DatasetSpec.from_dict(values)


def _check_editable(dataset: Dataset) -> None:
    if dataset.state not in EDITABLE:
        msg = (
            f"dataset {dataset.id} is {dataset.state.value}: its request can no longer change; "
            "create a new dataset (POST /v1/dataset/) instead"
        )
        raise InputError(msg)


def _store_spec(session: Session, dataset: Dataset, spec: DatasetSpec) -> Dataset:
    for accession in spec.data:
        catalog.get_experiment(session, accession)
    dataset.spec = spec.to_dict()
    session.flush()
    return dataset


def update_request(session: Session, dataset: Dataset, changes: dict[str, Any]) -> Dataset:
    """Change an editable dataset's request (keys of ``changes`` replace the stored ones)."""
    _check_editable(dataset)
    spec = canonical_request(session, {**dataset.spec, **changes})
    return _store_spec(session, dataset, spec)


def _experiment_samples(session: Session, accession: str) -> list[str]:
    experiment_id = catalog.resolve_experiment_id(session, accession)
    rows = session.scalars(
        select(Sample.accession)
        .join(experiment_sample, experiment_sample.c.sample_id == Sample.id)
        .where(experiment_sample.c.experiment_id == experiment_id)
        .order_by(Sample.accession)
    )
    return list(rows)


def _canonical(session: Session, accession: str) -> str:
    return catalog.get_experiment_accession(session, accession)


def add_to_request(
    session: Session, dataset: Dataset | None, accession: str, *, samples: list[str] | None = None
) -> Dataset:
    """Add an experiment (all samples when ``samples`` is None) or some of its samples to a cart."""
    code = _canonical(session, accession)
    known = set(_experiment_samples(session, code))
    unknown = sorted(set(samples or ()) - known)
    if unknown:
        msg = f"{', '.join(unknown[:5])}: not samples of {code}"
        raise InputError(msg)
    if dataset is None:
        wanted = [ALL_SAMPLES] if samples is None else sorted(set(samples))
        return create_dataset(session, {"data": {code: wanted}})
    _check_editable(dataset)
    data = {k: list(v) for k, v in dataset.spec.get("data", {}).items()}
    current = data.get(code, [])
    if samples is None or current == [ALL_SAMPLES]:
        data[code] = [ALL_SAMPLES]
    else:
        merged = sorted(set(current) | set(samples))
        data[code] = [ALL_SAMPLES] if set(merged) == known else merged
    return _store_spec(session, dataset, DatasetSpec.from_dict({**dataset.spec, "data": data}))


def remove_from_request(
    session: Session, dataset: Dataset, accession: str, *, sample: str | None = None
) -> Dataset | None:
    """Remove an experiment or one sample; None when the cart is left empty."""
    _check_editable(dataset)
    code = accession.strip().upper()
    data = {k: list(v) for k, v in dataset.spec.get("data", {}).items()}
    if sample is not None and code in data:
        current = _experiment_samples(session, code) if data[code] == [ALL_SAMPLES] else data[code]
        data[code] = [s for s in current if s != sample]
    if sample is None or not data.get(code):
        data.pop(code, None)
    if not data:
        return None
    return _store_spec(session, dataset, DatasetSpec.from_dict({**dataset.spec, "data": data}))


def queue_dataset(session: Session, dataset_id: str) -> Dataset:
    """Start a dataset and queue its build as a ``JobKind.DATASET`` job (any worker may run it)."""
    dataset = start_dataset(session, dataset_id)
    enqueue(session, JobKind.DATASET, dataset.id, force=True)
    return dataset


def queue_regeneration(session: Session, dataset_id: str) -> Dataset:
    """Queue an expired dataset's rebuild (same id, same request) as a ``JobKind.DATASET`` job."""
    dataset = regenerate_dataset(session, get_dataset(session, dataset_id))
    enqueue(session, JobKind.DATASET, dataset.id, force=True)
    return dataset


def cart_summary(session: Session, dataset: Dataset) -> dict[str, Any]:
    """Experiments, sample counts and organisms of a request, for the cart and download pages."""
    rows = []
    for accession, wanted in dataset.spec.get("data", {}).items():
        experiment = session.scalar(select(Experiment).where(Experiment.accession == accession))
        if experiment is None:
            continue
        everything = wanted == [ALL_SAMPLES]
        rows.append(
            {
                "accession_code": accession,
                "title": experiment.title,
                "all_samples": everything,
                "samples": [] if everything else list(wanted),
                "num_samples": experiment.num_total_samples if everything else len(wanted),
                "num_downloadable_samples": experiment.num_downloadable_samples,
            }
        )
    return {
        "experiments": rows,
        "num_experiments": len(rows),
        "num_samples": sum(r["num_samples"] for r in rows),
    }


def public_dict(dataset: Dataset, *, base_url: str, with_download: bool) -> dict[str, Any]:
    """The dataset as the API shows it: refine.bio flags, no local paths, URLs only for token holders."""
    out = dataset_dict(dataset)
    spec = out.pop("spec")
    state = dataset.state
    expired = is_expired(dataset)
    files = []
    for f in out.pop("files"):
        url = None
        if with_download and not expired:
            url = f"{base_url}/v1/dataset/{dataset.id}/download?format={f['format']}"
        files.append({**{k: f[k] for k in ("format", "size_in_bytes", "sha256")}, "download_url": url})
    out.update(spec)
    out["files"] = files
    out["is_processing"] = state in (DatasetState.QUEUED, DatasetState.RUNNING)
    out["is_processed"] = state in (DatasetState.SUCCEEDED, DatasetState.EXPIRED)
    out["success"] = {
        DatasetState.SUCCEEDED: True,
        DatasetState.EXPIRED: True,
        DatasetState.FAILED: False,
    }.get(state)
    out["is_expired"] = expired
    out["is_available"] = state == DatasetState.SUCCEEDED and not expired
    out["expires_on"] = out["expires_at"]
    out["download_url"] = files[0]["download_url"] if files else None
    return out
