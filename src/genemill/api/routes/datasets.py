"""``/v1/dataset/``: create a dataset request, change it, start it (token), poll it, download it (token).

refine.bio's flow (ANCHOR.md §4): ``POST`` a ``data`` mapping, ``PUT {"start": true}`` with an
activated token in the ``API-KEY`` header, poll ``GET`` until ``is_processed``, then download. The
build runs in this server process (``app.state.dataset_runner``); its result is stored on the row.
``GET ?details=true`` adds the experiments and samples behind the request; files expire after
``Settings.dataset_lifetime_days`` (download: 410 Gone) and ``POST …/regenerate`` rebuilds them.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from genemill.api.dataset_requests import (
    canonical_request,
    public_dict,
    queue_dataset,
    queue_regeneration,
    update_request,
)
from genemill.api.deps import ActivatedTokenDep, SessionDep, TokenDep, token_required_message
from genemill.api.schemas import ErrorOut
from genemill.datasets import DatasetExpiredError, create_dataset, dataset_details, dataset_file, get_dataset
from genemill.datasets.job import EXTENSIONS
from genemill.datasets.spec import (
    AggregateBy,
    CollapseRule,
    JoinKind,
    MissingTarget,
    OutputFormat,
    RnaseqValue,
    Transform,
)

__all__ = ["DatasetIn", "DatasetUpdate", "router"]

router = APIRouter(prefix="/dataset", tags=["datasets"])

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
RequestData = dict[Code, Annotated[list[Code], Field(min_length=1)]]


class DatasetIn(BaseModel):
    """A dataset request; refine.bio's ``scale_by`` is accepted for ``transform``."""

    model_config = ConfigDict(extra="forbid")

    data: RequestData = Field(min_length=1, description='{"GSE781": ["ALL"]} or sample accessions')
    aggregate_by: AggregateBy | None = None
    join: JoinKind | None = None
    min_fraction: float | None = Field(default=None, gt=0, le=1)
    collapse: CollapseRule | None = None
    transform: Transform | None = None
    scale_by: Literal["NONE", "MINMAX", "STANDARD", "ROBUST"] | None = None
    quantile_normalize: bool | None = None
    include_submitter: bool | None = None
    rnaseq_value: RnaseqValue | None = None
    missing_qn_target: MissingTarget | None = None
    formats: list[OutputFormat] | None = Field(default=None, min_length=1)
    quant_sf_only: bool | None = None
    svd_algorithm: str | None = None


class DatasetUpdate(DatasetIn):
    """Changes to a request, and/or ``start: true`` to build it (needs an activated token)."""

    data: RequestData | None = Field(default=None, min_length=1)  # type: ignore[assignment]
    start: bool = False
    email_address: str | None = None
    email_ccdl_ok: bool | None = None
    notify_me: bool | None = None


def _out(request: Request, dataset: Any, *, with_download: bool) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return public_dict(dataset, base_url=base, with_download=with_download)


@router.post("", status_code=201)
def create(body: DatasetIn, request: Request, session: SessionDep, token: TokenDep) -> dict[str, Any]:
    """Store a dataset request (validated; every experiment must exist)."""
    spec = canonical_request(session, body.model_dump(mode="json", exclude_none=True))
    return _out(request, create_dataset(session, spec), with_download=token is not None)


@router.get("/{dataset_id}")
def read(
    dataset_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    token: TokenDep,
    details: Annotated[
        bool,
        Query(description="Add experiments (with their requested samples), organism_samples, worker_version"),
    ] = False,
) -> dict[str, Any]:
    """A dataset's request, state, summary and (with an activated token) download URLs."""
    dataset = get_dataset(session, str(dataset_id))
    out = _out(request, dataset, with_download=token is not None)
    if details:
        out.update(dataset_details(session, dataset))
    return out


@router.put("/{dataset_id}")
def update(
    dataset_id: uuid.UUID,
    body: DatasetUpdate,
    request: Request,
    session: SessionDep,
    token: TokenDep,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """Change the request while it is editable; ``start: true`` queues the build (token required)."""
    dataset = get_dataset(session, str(dataset_id))
    changes = body.model_dump(mode="json", exclude_none=True, exclude={"start"})
    if changes:
        dataset = update_request(session, dataset, changes)
    if body.start:
        if token is None:
            raise HTTPException(status_code=403, detail=token_required_message())
        dataset = queue_dataset(session, dataset.id)
        background.add_task(request.app.state.dataset_runner, dataset.id)
    return _out(request, dataset, with_download=token is not None)


@router.post("/{dataset_id}/regenerate")
def regenerate(
    dataset_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    token: ActivatedTokenDep,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """Rebuild an expired dataset from its stored request (same id); 400 while its files are available."""
    del token
    dataset = queue_regeneration(session, str(dataset_id))
    background.add_task(request.app.state.dataset_runner, dataset.id)
    return _out(request, dataset, with_download=True)


_GONE = {410: {"model": ErrorOut, "description": "The dataset's files expired: regenerate it"}}


@router.get("/{dataset_id}/download", response_class=FileResponse, responses=_GONE)  # type: ignore[arg-type]
def download(
    dataset_id: uuid.UUID,
    session: SessionDep,
    token: ActivatedTokenDep,
    fmt: Annotated[OutputFormat | None, Query(alias="format", description="tsv_zip, parquet or h5ad")] = None,
) -> FileResponse:
    """A built file (first format when none is named); needs an activated token; 410 once expired."""
    del token
    try:
        path = dataset_file(session, str(dataset_id), fmt=fmt)
    except DatasetExpiredError as exc:
        raise HTTPException(status_code=410, detail=str(exc)) from exc
    chosen = fmt or next(f for f, ext in EXTENSIONS.items() if path.name.endswith(ext))
    return FileResponse(path, filename=f"genemill-dataset-{str(dataset_id)[:8]}{EXTENSIONS[chosen]}")
