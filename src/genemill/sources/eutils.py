"""NCBI E-utilities in JSON mode: find GEO records (db=gds) and summarise PubMed articles.

Requests go to ``settings.eutils_base_url`` (``https://eutils.ncbi.nlm.nih.gov/entrez/eutils``) with
``retmode=json``, ``tool=genemill``, ``email=<contact_email>`` and ``api_key=<ncbi_api_key>`` when
set, each through the shared :func:`~genemill.sources.http.ncbi_limiter` (3 requests/s, 10/s with a
key). Response layouts (``"header": {"type": ..., "version": "0.3"}``)::

    esearch   {"esearchresult": {"count": "1", "retmax": "1", "retstart": "0",
                                 "idlist": ["200000781"], "querytranslation": "GSE781[ACCN]", ...}}
    esummary  {"result": {"uids": ["200000781"],
                          "200000781": {"uid", "accession": "GSE781", "entrytype": "GSE", "title",
                                        "summary", "taxon", "gpl": "96;97", "gdstype", "pdat",
                                        "suppfile", "n_samples": 34, "pubmedids": ["14641932"],
                                        "samples": [{"accession", "title"}], "ftplink", "bioproject",
                                        "extrelations": [{"relationtype": "SRA", "targetobject"}]}}}
    PubMed    {"result": {"uids": [pmid], pmid: {"title", "authors": [{"name", "authtype"}], "source",
                                                 "fulljournalname", "pubdate",
                                                 "articleids": [{"idtype": "doi", "value"}]}}}

Failures arrive with HTTP 200 as a top-level ``"error"`` string; "API rate limit exceeded" is
retried like a 429, any other error raises :class:`~genemill.errors.SourceError`. A document that
cannot be summarised carries its own ``"error"`` and raises :class:`~genemill.errors.NotFoundError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from genemill.accessions import parse_accession
from genemill.config import Settings
from genemill.errors import DownloadError, NotFoundError, SourceError
from genemill.sources.http import (
    DEFAULT_POLICY,
    RETRYABLE_STATUSES,
    RateLimiter,
    RetryPolicy,
    TransientResponse,
    ncbi_limiter,
    with_retries,
)

__all__ = [
    "GeoSampleRef",
    "GeoSummary",
    "Publication",
    "esearch",
    "fetch_publication",
    "find_geo_summary",
    "parse_esearch",
    "parse_gds_summaries",
    "parse_pubmed_summary",
    "summarize_gds",
]

TOOL = "genemill"
_SUMMARY_BATCH = 200  # NCBI serves at most 500 UIDs per JSON esummary; keep URLs short


@dataclass(frozen=True)
class GeoSampleRef:
    """A sample listed in a series summary."""

    accession: str
    title: str


@dataclass(frozen=True)
class GeoSummary:
    """One GEO DataSets (db=gds) document summary: a series, dataset, platform or sample."""

    uid: str
    accession: str
    entry_type: str
    title: str
    summary: str
    taxon: str
    n_samples: int
    platforms: tuple[str, ...]
    series_type: str
    published: str
    pubmed_ids: tuple[str, ...]
    samples: tuple[GeoSampleRef, ...]
    supplementary_types: tuple[str, ...]
    ftp_link: str
    bioproject: str
    sra_studies: tuple[str, ...]


@dataclass(frozen=True)
class Publication:
    """The PubMed fields genemill records for an experiment's publication."""

    pmid: str
    title: str
    authors: tuple[str, ...]
    journal: str
    published: str
    doi: str | None


# -- parsing (pure) ----------------------------------------------------------------------------------
def parse_esearch(payload: Mapping[str, Any]) -> list[str]:
    """Return the UIDs of an esearch JSON response.

    Raises
    ------
    SourceError
        When the response has no ``esearchresult`` or reports an ``ERROR``.
    """
    result = payload.get("esearchresult")
    if not isinstance(result, dict):
        msg = f"esearch response has no 'esearchresult' object (keys: {sorted(payload)})"
        raise SourceError(msg)
    if "ERROR" in result:
        msg = f"esearch failed: {result['ERROR']}"
        raise SourceError(msg)
    return [str(uid) for uid in result.get("idlist", [])]


def _documents(payload: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
    result = payload.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("uids"), list):
        msg = f"{what} esummary response has no 'result.uids' list (keys: {sorted(payload)})"
        raise SourceError(msg)
    documents = []
    for uid in result["uids"]:
        document = result.get(str(uid))
        if not isinstance(document, dict):
            msg = f"{what} esummary response lists uid {uid} but has no document for it"
            raise SourceError(msg)
        documents.append(document)
    return documents


def _split(text: object, pattern: str = r"[;,]") -> tuple[str, ...]:
    return tuple(part.strip() for part in re.split(pattern, str(text or "")) if part.strip())


def _platforms(gpl: object) -> tuple[str, ...]:
    """``"96;97"`` or ``"GPL96"`` → ``("GPL96", "GPL97")``."""
    return tuple(p if p.upper().startswith("GPL") else f"GPL{p}" for p in _split(gpl, r"[;,\s]+"))


def _count(value: object) -> int:
    text = str(value if value is not None else "").strip()
    return int(text) if text.isdigit() else 0


def _gds_summary(document: Mapping[str, Any]) -> GeoSummary:
    relations = document.get("extrelations") or []
    return GeoSummary(
        uid=str(document.get("uid", "")),
        accession=str(document.get("accession", "")),
        entry_type=str(document.get("entrytype", "")),
        title=str(document.get("title", "")),
        summary=str(document.get("summary", "")),
        taxon=str(document.get("taxon", "")),
        n_samples=_count(document.get("n_samples")),
        platforms=_platforms(document.get("gpl")),
        series_type=str(document.get("gdstype", "")),
        published=str(document.get("pdat", "")),
        pubmed_ids=tuple(str(p) for p in document.get("pubmedids") or [] if str(p).strip()),
        samples=tuple(
            GeoSampleRef(accession=str(s.get("accession", "")), title=str(s.get("title", "")))
            for s in document.get("samples") or []
        ),
        supplementary_types=_split(document.get("suppfile")),
        ftp_link=str(document.get("ftplink", "")),
        bioproject=str(document.get("bioproject", "")),
        sra_studies=tuple(
            str(r.get("targetobject", ""))
            for r in relations
            if str(r.get("relationtype", "")).upper() == "SRA" and r.get("targetobject")
        ),
    )


def parse_gds_summaries(payload: Mapping[str, Any]) -> list[GeoSummary]:
    """Return one :class:`GeoSummary` per UID of a ``db=gds`` esummary JSON response, in order."""
    return [_gds_summary(document) for document in _documents(payload, "gds")]


def parse_pubmed_summary(payload: Mapping[str, Any], pmid: str) -> Publication:
    """Return the :class:`Publication` for ``pmid`` from a ``db=pubmed`` esummary JSON response.

    Raises
    ------
    NotFoundError
        When the response carries no summary for ``pmid`` (e.g. ``"cannot get document summary"``).
    """
    documents = {str(d.get("uid", "")): d for d in _documents(payload, "pubmed")}
    document = documents.get(str(pmid))
    if document is None or "error" in document:
        reason = document.get("error") if document else "no document in the response"
        msg = f"PubMed has no summary for PMID {pmid}: {reason}"
        raise NotFoundError(msg)
    doi = next(
        (str(a["value"]) for a in document.get("articleids") or [] if a.get("idtype") == "doi"),
        None,
    )
    if doi is None and str(document.get("elocationid", "")).startswith("doi: "):
        doi = str(document["elocationid"])[len("doi: ") :]
    return Publication(
        pmid=str(pmid),
        title=str(document.get("title", "")),
        authors=tuple(str(a.get("name", "")) for a in document.get("authors") or [] if a.get("name")),
        journal=str(document.get("fulljournalname") or document.get("source") or ""),
        published=str(document.get("pubdate", "")),
        doi=doi,
    )


# -- requests ----------------------------------------------------------------------------------------
def _common_params(settings: Settings) -> dict[str, str]:
    params = {"retmode": "json", "tool": TOOL}
    if settings.contact_email:
        params["email"] = settings.contact_email
    if settings.ncbi_api_key:
        params["api_key"] = settings.ncbi_api_key
    return params


def _get_json(
    client: httpx.Client,
    settings: Settings,
    endpoint: str,
    *,
    params: Mapping[str, str],
    limiter: RateLimiter | None,
    policy: RetryPolicy,
) -> dict[str, Any]:
    url = f"{settings.eutils_base_url.rstrip('/')}/{endpoint}"
    gate = limiter if limiter is not None else ncbi_limiter(settings)
    query = {**_common_params(settings), **params}

    def attempt(_: int) -> dict[str, Any]:
        gate.acquire()
        response = client.get(url, params=query)
        if response.status_code in RETRYABLE_STATUSES:
            raise TransientResponse.from_response(response)
        if response.status_code != httpx.codes.OK:
            msg = f"GET {url}: HTTP {response.status_code} {response.reason_phrase}".rstrip()
            raise DownloadError(msg, url=url, status=response.status_code)
        try:
            payload = json.loads(response.content)
        except ValueError as exc:  # an HTML error page or a cut body: worth another try
            msg = f"{endpoint} answered 200 with a body that is not JSON ({exc})"
            raise TransientResponse(msg, status=response.status_code) from exc
        if not isinstance(payload, dict):
            msg = f"{endpoint} answered with JSON {type(payload).__name__}, expected an object"
            raise SourceError(msg)
        error = payload.get("error")
        if isinstance(error, str) and "rate limit" in error.lower():
            msg = f"{endpoint}: {error}"
            raise TransientResponse(msg, status=429)
        return payload

    payload = with_retries(attempt, url=url, policy=policy)
    if isinstance(payload.get("error"), str) and "result" not in payload:
        msg = f"E-utilities {endpoint} failed: {payload['error']}"
        raise SourceError(msg)
    return payload


def esearch(
    client: httpx.Client,
    settings: Settings,
    term: str,
    *,
    db: str = "gds",
    retmax: int = 100,
    limiter: RateLimiter | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> list[str]:
    """Search ``db`` for ``term`` (e.g. ``GSE781[ACCN]``); return matching UIDs (at most ``retmax``)."""
    params = {"db": db, "term": term, "retmax": str(retmax)}
    payload = _get_json(client, settings, "esearch.fcgi", params=params, limiter=limiter, policy=policy)
    return parse_esearch(payload)


def summarize_gds(
    client: httpx.Client,
    settings: Settings,
    uids: Iterable[str],
    *,
    limiter: RateLimiter | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> list[GeoSummary]:
    """Return GEO DataSets summaries for ``uids`` (batched, one request per 200 UIDs)."""
    uid_list = [str(uid) for uid in uids]
    summaries: list[GeoSummary] = []
    for start in range(0, len(uid_list), _SUMMARY_BATCH):
        params = {"db": "gds", "id": ",".join(uid_list[start : start + _SUMMARY_BATCH])}
        payload = _get_json(client, settings, "esummary.fcgi", params=params, limiter=limiter, policy=policy)
        summaries.extend(parse_gds_summaries(payload))
    return summaries


def find_geo_summary(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    limiter: RateLimiter | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> GeoSummary:
    """Look a GEO accession up (``<acc>[ACCN]`` in db=gds) and return its own summary.

    Raises
    ------
    NotFoundError
        When no returned summary carries exactly ``accession``.
    """
    code = parse_accession(accession).code
    uids = esearch(client, settings, f"{code}[ACCN]", limiter=limiter, policy=policy)
    summaries = summarize_gds(client, settings, uids, limiter=limiter, policy=policy) if uids else []
    for summary in summaries:
        if summary.accession.upper() == code:
            return summary
    found = ", ".join(s.accession for s in summaries) or "nothing"
    msg = f"{code} not found in NCBI GEO DataSets (esearch {code}[ACCN] returned {found})"
    raise NotFoundError(msg)


def fetch_publication(
    client: httpx.Client,
    settings: Settings,
    pmid: str,
    *,
    limiter: RateLimiter | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Publication:
    """Return title, authors, journal, date and DOI of PubMed article ``pmid``."""
    params = {"db": "pubmed", "id": str(pmid)}
    payload = _get_json(client, settings, "esummary.fcgi", params=params, limiter=limiter, policy=policy)
    return parse_pubmed_summary(payload, str(pmid))
