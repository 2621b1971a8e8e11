"""The dataset cart and download pages (plain HTML forms; no JavaScript needed).

* The cart is a server-side dataset request (``CREATED``) whose id sits in the ``genemill_cart``
  cookie, as refine.bio keeps it in localStorage; ``/cart/add`` and ``/cart/remove`` change it.
* ``/download`` shows the cart (or ``?dataset=<id>``, a one-experiment "Download now" request) with
  the options (aggregation, transformation, quantile normalization, file formats) and the terms of
  use; accepting them creates and activates an API token kept in the ``genemill_token`` cookie.
* ``/datasets/{id}`` shows the state and refreshes itself (``<meta http-equiv="refresh">``) until the
  build has finished; then it offers the files, downloaded with the token cookie; once they have
  expired it offers "Regenerate files" (``/datasets/{id}/regenerate``, same request, same id).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from genemill.api.dataset_requests import (
    EDITABLE,
    add_to_request,
    cart_summary,
    queue_dataset,
    queue_regeneration,
    remove_from_request,
    update_request,
)
from genemill.api.deps import SessionDep
from genemill.datasets import (
    Dataset,
    DatasetExpiredError,
    DatasetState,
    dataset_file,
    get_dataset,
    is_expired,
)
from genemill.datasets.job import EXTENSIONS
from genemill.datasets.lifetime import as_utc
from genemill.datasets.spec import AggregateBy, OutputFormat, Transform
from genemill.errors import InputError, NotFoundError
from genemill.store.tokens import TERMS_AND_CONDITIONS, activate_token, create_token, find_activated_token
from genemill.web.rendering import CART_COOKIE, TOKEN_COOKIE, render

__all__ = ["router"]

_MAX_FORM = 64 * 1024
_YEAR = 365 * 24 * 3600
TRANSFORMS = {
    "NONE": "None",
    "MINMAX": "Zero to one (min-max)",
    "ZSCORE": "Z-score",
    "ROBUST": "Robust (median, IQR)",
}
FORMATS = {
    "tsv_zip": "TSV files in a zip (refine.bio layout)",
    "parquet": "Parquet",
    "h5ad": "AnnData (.h5ad)",
}

router = APIRouter(include_in_schema=False)


async def form_fields(request: Request) -> dict[str, list[str]]:
    """The submitted ``application/x-www-form-urlencoded`` fields (no multipart needed)."""
    body = await request.body()
    if len(body) > _MAX_FORM:
        msg = f"form too large: {len(body)} bytes, at most {_MAX_FORM}"
        raise InputError(msg)
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


Form = Annotated[dict[str, list[str]], Depends(form_fields)]


def _one(form: dict[str, list[str]], name: str, default: str = "") -> str:
    return (form.get(name) or [default])[0].strip()


def _back(form: dict[str, list[str]], fallback: str) -> str:
    target = _one(form, "next")
    # Only local paths: never redirect to another site.
    return target if target.startswith("/") and not target.startswith("//") else fallback


def _cart(request: Request, session: Any) -> Dataset | None:
    dataset_id = request.cookies.get(CART_COOKIE)
    if not dataset_id:
        return None
    try:
        dataset = get_dataset(session, dataset_id)
    except NotFoundError:
        return None
    return dataset if dataset.state in EDITABLE else None


def _redirect(url: str, *, cart: Dataset | bool | None = False) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if cart is None:
        response.delete_cookie(CART_COOKIE)
    elif isinstance(cart, Dataset):
        response.set_cookie(CART_COOKIE, cart.id, max_age=_YEAR, httponly=True, samesite="lax")
    return response


@router.post("/cart/add")
def cart_add(request: Request, session: SessionDep, form: Form) -> Response:
    """Add an experiment (or the samples named in ``sample`` fields) to the cart."""
    accession = _one(form, "accession")
    samples = [s.strip() for s in form.get("sample", []) if s.strip()] or None
    dataset = add_to_request(session, _cart(request, session), accession, samples=samples)
    return _redirect(_back(form, "/download"), cart=dataset)


@router.post("/cart/remove")
def cart_remove(request: Request, session: SessionDep, form: Form) -> Response:
    """Remove an experiment (or one ``sample``) from the cart."""
    dataset = _cart(request, session)
    if dataset is None:
        return _redirect(_back(form, "/download"), cart=None)
    sample = _one(form, "sample") or None
    left = remove_from_request(session, dataset, _one(form, "accession"), sample=sample)
    return _redirect(_back(form, "/download"), cart=left)


@router.post("/cart/clear")
def cart_clear(form: Form) -> Response:
    """Empty the cart."""
    return _redirect(_back(form, "/download"), cart=None)


@router.post("/download/experiment")
def download_experiment(session: SessionDep, form: Form) -> Response:
    """ "Download now": a request for one whole experiment, outside the cart."""
    dataset = add_to_request(session, None, _one(form, "accession"))
    return _redirect(f"/download?dataset={dataset.id}")


@router.get("/cart")
def cart_page() -> Response:
    """The cart lives on the download page."""
    return RedirectResponse("/download", status_code=307)


def _download_context(request: Request, session: Any, dataset: Dataset | None) -> dict[str, Any]:
    spec = dataset.spec if dataset else {}
    return {
        "dataset": dataset,
        "summary": cart_summary(session, dataset) if dataset else None,
        "is_cart": dataset is not None and dataset.id == request.cookies.get(CART_COOKIE),
        "spec": spec,
        "aggregations": {a.value: a.value.capitalize() for a in AggregateBy},
        "transforms": TRANSFORMS,
        "formats": FORMATS,
        "has_token": find_activated_token(session, request.cookies.get(TOKEN_COOKIE)) is not None,
        "terms": TERMS_AND_CONDITIONS,
        "errors": [],
    }


@router.get("/download", response_class=HTMLResponse)
def download_page(
    request: Request, session: SessionDep, dataset: Annotated[str, Query(max_length=64)] = ""
) -> HTMLResponse:
    """The cart (or a one-experiment request) with the dataset options and the terms of use."""
    chosen = get_dataset(session, dataset) if dataset else _cart(request, session)
    return render(request, "download.html", _download_context(request, session, chosen))


def _options(form: dict[str, list[str]]) -> dict[str, Any]:
    formats = [f for f in form.get("formats", []) if f in FORMATS] or [OutputFormat.TSV_ZIP.value]
    return {
        "aggregate_by": _one(form, "aggregate_by", AggregateBy.EXPERIMENT.value),
        "transform": _one(form, "transform", Transform.NONE.value),
        "quantile_normalize": _one(form, "quantile_normalize") == "on",
        "formats": formats,
    }


def _token_key(request: Request, session: Any) -> str:
    key = request.cookies.get(TOKEN_COOKIE)
    if key and find_activated_token(session, key) is not None:
        return key
    key, _token = create_token(session)
    activate_token(session, key, activated=True)
    return key


@router.post("/download", response_class=HTMLResponse)
def start_download(
    request: Request, session: SessionDep, form: Form, background: BackgroundTasks
) -> Response:
    """Apply the options, accept the terms (token), start the build and go to its status page."""
    dataset = get_dataset(session, _one(form, "dataset"))
    if _one(form, "accept_terms") != "on":
        context = _download_context(request, session, dataset)
        context["errors"] = ["Please accept the terms of use to start building the dataset."]
        return render(request, "download.html", context, status=400)
    dataset = update_request(session, dataset, _options(form))
    key = _token_key(request, session)
    queue_dataset(session, dataset.id)
    background.add_task(request.app.state.dataset_runner, dataset.id)
    was_cart = dataset.id == request.cookies.get(CART_COOKIE)
    response = _redirect(f"/datasets/{dataset.id}", cart=None if was_cart else False)
    response.set_cookie(TOKEN_COOKIE, key, max_age=_YEAR, httponly=True, samesite="lax")
    return response


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(request: Request, dataset_id: str, session: SessionDep) -> HTMLResponse:
    """State of a dataset; refreshes itself while it is being built."""
    dataset = get_dataset(session, dataset_id)
    context = {
        "dataset": dataset,
        "summary": cart_summary(session, dataset),
        "building": dataset.state in (DatasetState.QUEUED, DatasetState.RUNNING),
        "expired": is_expired(dataset),
        "expires_at": as_utc(dataset.expires_at),
        "has_token": find_activated_token(session, request.cookies.get(TOKEN_COOKIE)) is not None,
        "formats": FORMATS,
        "transforms": TRANSFORMS,
    }
    return render(request, "dataset.html", context)


@router.post("/datasets/{dataset_id}/restart")
def restart(request: Request, dataset_id: str, session: SessionDep, background: BackgroundTasks) -> Response:
    """Build a failed (or finished) dataset again."""
    dataset = queue_dataset(session, dataset_id)
    background.add_task(request.app.state.dataset_runner, dataset.id)
    return _redirect(f"/datasets/{dataset.id}")


@router.post("/datasets/{dataset_id}/regenerate")
def regenerate(
    request: Request, dataset_id: str, session: SessionDep, background: BackgroundTasks
) -> Response:
    """Build an expired dataset's files again from its stored request."""
    dataset = queue_regeneration(session, dataset_id)
    background.add_task(request.app.state.dataset_runner, dataset.id)
    return _redirect(f"/datasets/{dataset.id}")


@router.get("/datasets/{dataset_id}/download")
def download_file(
    request: Request,
    dataset_id: str,
    session: SessionDep,
    fmt: Annotated[OutputFormat | None, Query(alias="format")] = None,
) -> Response:
    """A built file, for browsers holding an activated token cookie (accepted terms)."""
    if find_activated_token(session, request.cookies.get(TOKEN_COOKIE)) is None:
        message = "Downloads need the terms of use accepted: start the dataset from the download page first."
        return render(
            request, "error.html", {"message": message, "status": 403, "errors": [message]}, status=403
        )
    try:
        path = dataset_file(session, dataset_id, fmt=fmt)
    except DatasetExpiredError as exc:
        return render(
            request, "error.html", {"message": str(exc), "status": 410, "errors": [str(exc)]}, status=410
        )
    chosen = fmt or next(f for f, ext in EXTENSIONS.items() if path.name.endswith(ext))
    return FileResponse(path, filename=f"genemill-dataset-{dataset_id[:8]}{EXTENSIONS[chosen]}")
