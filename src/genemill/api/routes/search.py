"""``/v1/search/``: full-text experiment search with facet filters, ordering and facet counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from genemill.api.deps import MAX_OFFSET, LimitDep, OffsetDep, SearchCacheDep, SessionDep, page
from genemill.api.responses import json_response
from genemill.api.schemas import SearchBody, SearchPage
from genemill.store.search import ORDERINGS, SearchCache, SearchQuery

__all__ = ["SearchFilters", "router"]

router = APIRouter(prefix="/search", tags=["search"])

Values = Annotated[list[str] | None, Query()]
ORDERING_PATTERN = f"^-?({'|'.join(ORDERINGS)})$"
Ordering = Annotated[
    str, Query(pattern=ORDERING_PATTERN, description=f"One of {', '.join(ORDERINGS)}; '-' for descending.")
]
Threshold = Annotated[int | None, Query(ge=-1, le=MAX_OFFSET)]


def _split(values: list[str] | None) -> tuple[str, ...]:
    """Repeated parameters and comma-separated lists, both accepted."""
    return tuple(part.strip() for value in values or [] for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Filters:
    """Search filters parsed from the query string."""

    organisms: tuple[str, ...] = ()
    technologies: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    has_publication: bool | None = None
    num_downloadable_samples_gt: int | None = None
    num_processed_samples_gt: int | None = None

    def query(self, *, text: str = "", ordering: str, limit: int, offset: int) -> SearchQuery:
        """The store query for one page."""
        return SearchQuery(
            text=text,
            organisms=self.organisms,
            technologies=self.technologies,
            platforms=self.platforms,
            has_publication=self.has_publication,
            num_downloadable_samples_gt=self.num_downloadable_samples_gt,
            num_processed_samples_gt=self.num_processed_samples_gt,
            ordering=ordering,
            limit=limit,
            offset=offset,
        )


async def search_filters(
    organism: Values = None,
    downloadable_organism: Values = None,
    technology: Values = None,
    platform: Values = None,
    has_publication: bool | None = None,
    num_downloadable_samples__gt: Threshold = None,
    num_processed_samples__gt: Threshold = None,
) -> Filters:
    """Facet filters: organism (name or HOMO_SAPIENS), technology, platform (GPL…), has_publication."""
    return Filters(
        organisms=_split(organism) + _split(downloadable_organism),
        technologies=_split(technology),
        platforms=_split(platform),
        has_publication=has_publication,
        num_downloadable_samples_gt=num_downloadable_samples__gt,
        num_processed_samples_gt=num_processed_samples__gt,
    )


SearchFilters = Annotated[Filters, Depends(search_filters)]


async def _page(request: Request, query: SearchQuery, session: Any, cache: SearchCache) -> Response:
    """The SearchPage JSON (fields exactly the model's); ``X-Search-Engine`` says what answered.

    Memory and cache answers come on the event loop (about a millisecond); a SQL search (index
    loading, ``field:value`` terms, PostgreSQL) runs in the thread pool so it never stalls the loop.
    """
    result = cache.search_in_memory(session, query)
    if result is None:
        result = await run_in_threadpool(cache.search, session, query)
    body = page(request, result.results, count=result.count, limit=query.limit, offset=query.offset)
    body |= {"facets": result.facets, "facet_experiments": result.facet_experiments}
    return json_response(body, headers={"X-Search-Engine": result.engine})


# async: the in-memory search takes about a millisecond; a thread-pool hop per request costs more
# (SQL searches do hop, see _page).
@router.get("", response_model=SearchPage)
async def search_experiments(
    request: Request,
    session: SessionDep,
    cache: SearchCacheDep,
    filters: SearchFilters,
    search: Annotated[str, Query(max_length=1000, description="Free text; field:value terms.")] = "",
    ordering: Ordering = "_score",
    limit: LimitDep = 25,
    offset: OffsetDep = 0,
) -> Response:
    """Search experiments; facets count downloadable samples per value."""
    query = filters.query(text=search, ordering=ordering, limit=limit, offset=offset)
    return await _page(request, query, session, cache)


@router.post("", response_model=SearchPage)
async def search_experiments_post(
    request: Request, session: SessionDep, cache: SearchCacheDep, body: SearchBody
) -> Response:
    """The same search with the parameters as a JSON body."""
    filters = Filters(
        organisms=_split(body.organism),
        technologies=_split(body.technology),
        platforms=_split(body.platform),
        has_publication=body.has_publication,
        num_downloadable_samples_gt=body.num_downloadable_samples__gt,
        num_processed_samples_gt=body.num_processed_samples__gt,
    )
    query = filters.query(text=body.search, ordering=body.ordering, limit=body.limit, offset=body.offset)
    return await _page(request, query, session, cache)
