"""``/v1/samples/``: samples with refine.bio's filters, and one sample with its provenance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from genemill.api.deps import LimitDep, OffsetDep, SessionDep, page
from genemill.api.schemas import Page, SampleOut
from genemill.store import catalog
from genemill.store.models import Technology

__all__ = ["router"]

router = APIRouter(prefix="/samples", tags=["samples"])

Text = Annotated[str | None, Query(max_length=500)]


async def harmonized_filters(
    sex: Text = None,
    age: Annotated[float | None, Query(ge=0, le=1000, description="Age in years.")] = None,
    specimen_part: Text = None,
    genetic_information: Text = None,
    developmental_stage: Text = None,
    disease: Text = None,
    disease_stage: Text = None,
    cell_line: Text = None,
    treatment: Text = None,
    race: Text = None,
    subject: Text = None,
    compound: Text = None,
    time: Text = None,
) -> dict[str, str]:
    """Exact (case-insensitive) filters on the harmonized fields; age in years."""
    values = locals()
    return {
        name: f"{value:g}" if name == "age" else value for name, value in values.items() if value is not None
    }


Harmonized = Annotated[dict[str, str], Depends(harmonized_filters)]


@router.get("", response_model=Page[SampleOut])
def list_samples(
    request: Request,
    session: SessionDep,
    harmonized: Harmonized,
    experiment_accession_code: Text = None,
    accession_codes: Annotated[str | None, Query(max_length=100_000, description="Comma list.")] = None,
    organism: Text = None,
    organism__name: Text = None,
    platform: Text = None,
    technology: Technology | None = None,
    is_processed: bool | None = None,
    filter_by: Text = None,
    ordering: Annotated[str, Query(pattern=f"^-?({'|'.join(catalog.SAMPLE_ORDERINGS)})$")] = "-is_processed",
    limit: LimitDep = 25,
    offset: OffsetDep = 0,
) -> dict[str, Any]:
    """Samples filtered by experiment, organism, platform, state, harmonized fields or text."""
    flt = catalog.SampleFilter(
        experiment_accession_code=experiment_accession_code,
        accession_codes=tuple(a for a in (accession_codes or "").split(",") if a.strip()),
        organism=organism or organism__name,
        platform=platform,
        technology=technology.value if technology else None,
        is_processed=is_processed,
        filter_by=filter_by,
        harmonized=harmonized,
        ordering=ordering,
        limit=limit,
        offset=offset,
    )
    count, samples = catalog.list_samples(session, flt)
    results = [catalog.sample_detail_dict(s) for s in samples]
    return page(request, results, count=count, limit=limit, offset=offset)


@router.get("/{accession}", response_model=SampleOut)
def get_sample(accession: str, session: SessionDep) -> dict[str, Any]:
    """One sample with harmonized fields, raw annotations and processing provenance."""
    return catalog.sample_detail_dict(catalog.get_sample(session, accession))
