"""Response and request models of the JSON API, with refine.bio's field names (ANCHOR.md §4).

Every list is a ``Page[T]``: ``{count, next, previous, results}`` (limit/offset pagination).
Every error is an ``ErrorOut``: ``{ok: false, error, errors, status}`` (one shape, see server.py).
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AboutStatsOut",
    "ComputedFileOut",
    "ErrorOut",
    "ExperimentOut",
    "ExperimentSampleOut",
    "ExperimentSummary",
    "InstitutionOut",
    "JobFailureOut",
    "OrganismOut",
    "OriginalFileOut",
    "Page",
    "PlatformOut",
    "ProcessorDetailOut",
    "ProcessorOut",
    "ProcessorVersionOut",
    "ResultOut",
    "SampleOut",
    "SearchBody",
    "SearchPage",
    "StatsOut",
    "TokenOut",
    "TokenUpdate",
]

T = TypeVar("T")
_MAX = 1_000_000_000


class ErrorOut(BaseModel):
    """The one error shape of every 4xx/5xx response."""

    ok: Literal[False] = False
    error: str
    errors: list[str] = Field(default_factory=list)
    status: int


class Page(BaseModel, Generic[T]):
    """A page of results with links to its neighbours."""

    count: int
    next: str | None = None
    previous: str | None = None
    results: list[T]


class ExperimentSummary(BaseModel):
    """An experiment as a search or list result (no samples)."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    accession_code: str
    alternate_accession_code: str | None = None
    title: str
    description: str
    technology: str
    submitter_institution: str
    has_publication: bool
    publication_title: str
    publication_doi: str
    publication_authors: list[str]
    pubmed_id: str | None = None
    source_database: str
    source_url: str
    sample_metadata_fields: list[str]
    platform_names: list[str]
    platform_accession_codes: list[str]
    organism_names: list[str]
    downloadable_organism_names: list[str]
    num_total_samples: int
    num_processed_samples: int
    num_downloadable_samples: int
    source_first_published: str | None = None
    score: float | None = Field(default=None, alias="_score")
    is_exact_match: bool = False


class SearchPage(Page[ExperimentSummary]):
    """Search results plus facet counts (downloadable samples per value, as refine.bio)."""

    facets: dict[str, dict[str, int]]
    facet_experiments: dict[str, dict[str, int]]


class ExperimentSampleOut(BaseModel):
    """A sample as listed inside an experiment."""

    accession_code: str
    title: str
    platform_accession_code: str | None = None
    platform_name: str | None = None
    pretty_platform: str | None = None
    technology: str
    is_processed: bool
    is_unable_to_be_processed: bool
    processing_state: str


class ExperimentOut(BaseModel):
    """One experiment with the anchor's fields and its samples."""

    id: int
    accession_code: str
    alternate_accession_code: str | None = None
    alternate_accession_codes: list[str]
    title: str
    description: str
    protocol_description: dict[str, Any]
    technology: str
    source_database: str
    source_url: str
    submitter_institution: str
    has_publication: bool
    pubmed_id: str | None = None
    publication_title: str
    publication_doi: str
    publication_authors: list[str]
    source_first_published: str | None = None
    source_last_modified: str | None = None
    organism_names: list[str]
    platform_accession_codes: list[str]
    platform_names: list[str]
    sample_metadata: list[str]
    num_total_samples: int
    num_processed_samples: int
    num_downloadable_samples: int
    metadata_file_format: str
    created_at: str | None = None
    last_modified: str | None = None
    samples: list[ExperimentSampleOut]


class ProcessorOut(BaseModel):
    """Name and version of the software that produced a result."""

    name: str
    version: str


class ComputedFileOut(BaseModel):
    """A file a processing result wrote."""

    kind: str
    sha256: str
    size_in_bytes: int


class ResultOut(BaseModel):
    """One processing result: how a sample's values were made."""

    id: int
    processor: ProcessorOut
    mode: str
    parameters: dict[str, Any]
    input_sha256: list[str]
    output_sha256: str | None = None
    annotations: dict[str, Any]
    created_at: str | None = None
    files: list[ComputedFileOut] = Field(default_factory=list)


class OriginalFileOut(BaseModel):
    """A file as the archive published it."""

    filename: str
    source_url: str
    kind: str
    size_in_bytes: int | None = None
    sha256: str | None = None
    md5: str | None = None
    is_downloaded: bool


class SampleOut(BaseModel):
    """One sample: harmonized fields, raw annotations and processing provenance."""

    id: int
    accession_code: str
    title: str
    organism: str | None = None
    organism_taxonomy_id: int | None = None
    platform_accession_code: str | None = None
    platform_name: str | None = None
    pretty_platform: str | None = None
    technology: str
    manufacturer: str
    source_database: str
    source_archive_url: str
    has_raw: bool
    is_processed: bool
    is_unable_to_be_processed: bool
    processing_state: str
    unprocessable_reason: str | None = None
    sex: str | None = None
    age: float | None = None
    age_value: float | None = None
    age_unit: str | None = None
    specimen_part: str | None = None
    genetic_information: str | None = None
    developmental_stage: str | None = None
    disease: str | None = None
    disease_stage: str | None = None
    cell_line: str | None = None
    treatment: str | None = None
    race: str | None = None
    subject: str | None = None
    compound: str | None = None
    time: str | None = None
    harmonized_sources: dict[str, Any]
    annotations: dict[str, Any]
    protocol_info: dict[str, Any]
    qc: dict[str, Any]
    results: list[ResultOut]
    original_files: list[OriginalFileOut]
    experiment_accession_codes: list[str]


class OrganismOut(BaseModel):
    """An organism and how many of its samples genemill holds and processed."""

    name: str
    code: str
    taxonomy_id: int | None = None
    num_samples: int
    num_processed_samples: int


class PlatformOut(BaseModel):
    """A platform with its readable name."""

    platform_accession_code: str
    platform_name: str
    internal_name: str | None = None
    technology: str
    manufacturer: str
    num_samples: int


class ProcessorVersionOut(BaseModel):
    """A processor and version that produced results, and how often (``id``: ``NAME@VERSION``)."""

    id: str
    name: str
    version: str
    num_results: int
    first_used: str | None = None


class TokenOut(BaseModel):
    """An API token (``id`` is the key to send as the ``API-KEY`` header)."""

    id: str
    is_activated: bool
    terms_and_conditions: str


class TokenUpdate(BaseModel):
    """Accept the terms of use: ``{"is_activated": true}``."""

    model_config = ConfigDict(extra="forbid")

    is_activated: bool


class SearchBody(BaseModel):
    """``POST /v1/search/``: the GET parameters as a JSON body."""

    model_config = ConfigDict(extra="forbid")

    search: str = Field(default="", max_length=1000)
    organism: list[str] = Field(default_factory=list, max_length=100)
    technology: list[str] = Field(default_factory=list, max_length=100)
    platform: list[str] = Field(default_factory=list, max_length=100)
    has_publication: bool | None = None
    num_downloadable_samples__gt: int | None = Field(default=None, ge=-1, le=_MAX)
    num_processed_samples__gt: int | None = Field(default=None, ge=-1, le=_MAX)
    ordering: str = Field(
        default="_score",
        pattern=r"^-?(_score|num_total_samples|num_processed_samples|num_downloadable_samples|source_first_published|title|accession_code|id)$",
    )
    limit: int = Field(default=25, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=_MAX)


class StatsOut(BaseModel):
    """Catalog numbers for the about page and operators."""

    experiments: dict[str, int]
    samples: dict[str, int]
    samples_by_technology: dict[str, int]
    organisms: dict[str, int]
    jobs: dict[str, int]
    processors: int


class LatestResultOut(BaseModel):
    """The most recent result of a processor: its parameters show how it is run today."""

    id: int
    mode: str
    parameters: dict[str, Any]
    created_at: str | None = None


class ProcessorDetailOut(BaseModel):
    """One processor version (``NAME@VERSION``): what it produced and how it was last run."""

    id: str
    name: str
    version: str
    num_results: int
    num_current_results: int
    num_samples: int
    num_experiments: int
    first_used: str | None = None
    last_used: str | None = None
    modes: dict[str, int]
    latest_result: LatestResultOut


class InstitutionOut(BaseModel):
    """A submitter institution and how much it submitted."""

    submitter_institution: str
    num_experiments: int
    num_samples: int


class AboutStatsOut(BaseModel):
    """The about page's numbers (refine.bio's ``/v1/stats-about/`` names) and datasets per state."""

    samples_available: int
    total_size_in_bytes: int
    supported_organisms: int
    experiments_processed: int
    processed_samples_by_organism: dict[str, int]
    processed_samples_by_technology: dict[str, int]
    datasets: dict[str, int]


class JobFailureOut(BaseModel):
    """Failed jobs sharing an error: how many, on how many targets (samples or experiments), when last."""

    reason: str
    error_type: str | None = None
    job_count: int
    target_count: int
    last_failed: str | None = None
