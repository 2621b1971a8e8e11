"""HTML pages (Jinja2, server-rendered, usable without JavaScript): search, experiment, sample, plots.

Each page calls the same store functions as its JSON twin under ``/v1`` and renders a template:

* ``/`` and ``/search``: free text, facets (organism, technology, platform, publication) as links
  that toggle a filter, sort, paging — ``/v1/search/``;
* ``/experiments/{accession}``: the refine.bio experiment page fields, the sample table (one
  column per harmonized field present, processing information and additional metadata as
  ``<details>``), paging and a text filter — ``/v1/experiments/{accession}/`` + ``/v1/samples/``;
* ``/experiments/{accession}/boxplot.svg`` and ``/pca.svg?color_by=``: charts of processed values;
* ``/samples/{accession}``: one sample — ``/v1/samples/{accession}/``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from genemill.api.deps import SearchCacheDep, SessionDep
from genemill.errors import InputError
from genemill.store import catalog, listings
from genemill.store.expression_view import read_experiment_values
from genemill.store.models import HARMONIZED_FIELDS, Experiment
from genemill.store.search import SearchQuery
from genemill.web import charts, filters
from genemill.web.rendering import STATIC_DIR, TEMPLATES_DIR, cart_state, render, render_error

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "build_router", "render", "render_error"]

SORTS = {
    "_score": "Best match",
    "-num_downloadable_samples": "Most downloadable samples",
    "-num_total_samples": "Most samples",
    "num_total_samples": "Fewest samples",
    "-source_first_published": "Newest",
    "source_first_published": "Oldest",
}
PAGE_SIZES = (10, 20, 50)
SAMPLE_PAGE_SIZES = (10, 20, 50, 100)
Values = Annotated[list[str] | None, Query()]
PageSize = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Text = Annotated[str, Query(max_length=1000)]


def _pages(count: int, limit: int, offset: int) -> dict[str, int]:
    return {
        "page": offset // limit + 1,
        "pages": max(1, math.ceil(count / limit)),
        "limit": limit,
        "offset": offset,
    }


router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    session: SessionDep,
    cache: SearchCacheDep,
    q: Text = "",
    organism: Values = None,
    technology: Values = None,
    platform: Values = None,
    has_publication: bool | None = None,
    downloadable: bool = False,
    ordering: Annotated[str, Query(max_length=64)] = "_score",
    limit: PageSize = 10,
    offset: Offset = 0,
) -> HTMLResponse:
    """Search experiments with facets, sort and paging."""
    query = SearchQuery(
        text=q,
        organisms=tuple(organism or ()),
        technologies=tuple(technology or ()),
        platforms=tuple(platform or ()),
        has_publication=has_publication,
        num_downloadable_samples_gt=0 if downloadable else None,
        ordering=ordering if ordering in SORTS else "_score",
        limit=limit,
        offset=offset,
    )
    result = cache.search(session, query)
    context = {
        "q": q,
        "query": query,
        "result": result,
        "selected": {
            "organism": set(organism or ()),
            "technology": set(technology or ()),
            "platform": set(platform or ()),
            "has_publication": {str(has_publication).lower()} if has_publication is not None else set(),
        },
        "downloadable": downloadable,
        "sorts": SORTS,
        "page_sizes": PAGE_SIZES,
        "paging": _pages(result.count, limit, offset),
        "platform_titles": listings.platform_titles(session, list(result.facets.get("platform", {}))),
    }
    return render(request, "search.html", context)


@router.get("/experiments/{accession}", response_class=HTMLResponse)
def experiment_page(
    request: Request,
    accession: str,
    session: SessionDep,
    filter_by: Text = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Offset = 0,
    color_by: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """The experiment page: seed fields, sample table, plots."""
    data = catalog.experiment_detail(session, accession)
    flt = catalog.SampleFilter(
        experiment_accession_code=data["accession_code"],
        filter_by=filter_by or None,
        ordering="accession_code",
        limit=limit,
        offset=offset,
    )
    count, samples = catalog.list_samples(session, flt)
    colour_fields = ["platform", *data["sample_metadata"]]
    context = {
        "cart": cart_state(request, session),
        "e": data,
        "samples": [catalog.sample_detail_dict(s) for s in samples],
        "sample_count": count,
        "filter_by": filter_by,
        "paging": _pages(count, limit, offset),
        "page_sizes": SAMPLE_PAGE_SIZES,
        "colour_fields": colour_fields,
        "color_by": color_by if color_by in colour_fields else (data["sample_metadata"] or ["platform"])[0],
    }
    return render(request, "experiment.html", context)


def _groups(experiment: Experiment, samples: list[str], field: str) -> list[str]:
    by_accession = {s.accession: s for s in experiment.samples}
    labels = []
    for accession in samples:
        sample = by_accession[accession]
        if field == "platform":
            value: Any = sample.platform.accession if sample.platform else None
        else:
            value = getattr(sample, field, None)
        labels.append(filters.format_value(value) or "unknown")
    return labels


def _svg(text: str) -> Response:
    return Response(text, media_type="image/svg+xml", headers={"Cache-Control": "max-age=60"})


@router.get("/experiments/{accession}/boxplot.svg")
def boxplot(accession: str, session: SessionDep) -> Response:
    """Distribution of each processed sample's values."""
    experiment = catalog.get_experiment(session, accession)
    values = read_experiment_values(experiment)
    if values is None:
        return _svg(charts.message_svg("No processed samples yet."))
    samples = [str(c) for c in values.values.columns]
    ylabel = "log2(value + 1)" if values.transformed else "log2 expression"
    groups = _groups(experiment, samples, "platform")
    return _svg(charts.boxplot_svg(values.values.to_numpy(), samples, groups=groups, ylabel=ylabel))


@router.get("/experiments/{accession}/pca.svg")
def pca(
    accession: str, session: SessionDep, color_by: Annotated[str, Query(max_length=64)] = "platform"
) -> Response:
    """Samples on the first two principal components, coloured by a metadata field."""
    if color_by != "platform" and color_by not in HARMONIZED_FIELDS:
        msg = f"color_by: expected platform or a harmonized field, found {color_by!r}"
        raise InputError(msg)
    experiment = catalog.get_experiment(session, accession)
    values = read_experiment_values(experiment)
    if values is None:
        return _svg(charts.message_svg("No processed samples yet."))
    samples = [str(c) for c in values.values.columns]
    groups = _groups(experiment, samples, color_by)
    legend = filters.field_label(color_by)
    return _svg(charts.pca_svg(values.values.to_numpy(), samples, groups=groups, legend=legend))


@router.get("/samples/{accession}", response_class=HTMLResponse)
def sample_page(request: Request, accession: str, session: SessionDep) -> HTMLResponse:
    """One sample: harmonized fields, processing information, files, raw metadata."""
    sample = catalog.sample_detail_dict(catalog.get_sample(session, accession))
    fields = [name for name in HARMONIZED_FIELDS if sample.get(name) not in (None, "")]
    return render(request, "sample.html", {"s": sample, "fields": fields})


def build_router() -> APIRouter:
    """The HTML routes: pages, plots, cart and dataset pages."""
    from genemill.web import cart

    combined = APIRouter(include_in_schema=False)
    combined.include_router(router)
    combined.include_router(cart.router)
    return combined
