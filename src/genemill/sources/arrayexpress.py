"""ArrayExpress experiments as BioStudies serves them: MAGE-TAB files and the study info endpoint.

Layout under ``settings.biostudies_base_url`` (``https://www.ebi.ac.uk/biostudies``)::

    /files/<acc>/<acc>.idf.txt          the IDF  (redirects to the study folder on ftp.ebi.ac.uk)
    /files/<acc>/<acc>.sdrf.txt         the SDRF (likewise)
    /api/v1/studies/<acc>/info          JSON describing where the study's files live

The info document (fields as served by BioStudies' ``/info`` endpoint)::

    {"files": 178,
     "httpLink": "https://ftp.ebi.ac.uk/biostudies/fire/E-GEOD-/059/E-GEOD-16059",
     "ftpLink": "ftp://ftp.ebi.ac.uk/biostudies/fire/E-GEOD-/059/E-GEOD-16059",
     "relPath": "E-GEOD-/059/E-GEOD-16059", "isPublic": true,
     "released": 1242086400000, "modified": 1691250665774, "sections": [...]}

A study's files are ``<httpLink>/Files/<name>``. Large files are fetched there directly
(:func:`fetch_study_file`) rather than through the ``/files/`` redirect. An unknown accession
answers 404 or an empty ``{}`` (BioStudies returns an empty object when it finds no document);
both raise :class:`~genemill.errors.NotFoundError`.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from genemill.accessions import AccessionKind, Archive, parse_accession
from genemill.config import Settings
from genemill.errors import AccessionError, DownloadError, InputError, NotFoundError, SourceError
from genemill.sources.fetch import FetchedFile, ProgressCallback, fetch
from genemill.sources.http import DEFAULT_POLICY, RetryPolicy, get_with_retries

__all__ = [
    "StudyInfo",
    "fetch_idf",
    "fetch_sdrf",
    "fetch_study_file",
    "fetch_study_info",
    "file_url",
    "idf_url",
    "info_url",
    "parse_study_info",
    "sdrf_url",
    "study_file_url",
]


@dataclass(frozen=True)
class StudyInfo:
    """Where a BioStudies study keeps its files."""

    accession: str
    http_link: str
    ftp_link: str
    rel_path: str
    n_files: int
    is_public: bool
    released_ms: int | None
    modified_ms: int | None


def _experiment(accession: str) -> str:
    parsed = parse_accession(accession)
    if parsed.archive is not Archive.ARRAY_EXPRESS or parsed.kind is not AccessionKind.SERIES:
        msg = f"{accession!r} is not an ArrayExpress experiment accession: expected E-XXXX-<n>"
        raise AccessionError(msg)
    return parsed.code


def study_file_url(base: str, accession: str, name: str) -> str:
    """``{base}/files/E-MEXP-428/<name>``: BioStudies' link to one file of a study."""
    code = _experiment(accession)
    return f"{base.rstrip('/')}/files/{code}/{urllib.parse.quote(name)}"


def idf_url(base: str, accession: str) -> str:
    """``{base}/files/E-MEXP-428/E-MEXP-428.idf.txt``."""
    return study_file_url(base, accession, f"{_experiment(accession)}.idf.txt")


def sdrf_url(base: str, accession: str) -> str:
    """``{base}/files/E-MEXP-428/E-MEXP-428.sdrf.txt``."""
    return study_file_url(base, accession, f"{_experiment(accession)}.sdrf.txt")


def info_url(base: str, accession: str) -> str:
    """``{base}/api/v1/studies/E-MEXP-428/info``."""
    return f"{base.rstrip('/')}/api/v1/studies/{_experiment(accession)}/info"


def file_url(info: StudyInfo, name: str) -> str:
    """``<httpLink>/Files/<name>``: the direct HTTPS address of one of the study's files."""
    return f"{info.http_link.rstrip('/')}/Files/{urllib.parse.quote(name)}"


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_study_info(accession: str, payload: Mapping[str, Any]) -> StudyInfo:
    """Build a :class:`StudyInfo` from the ``/info`` JSON of ``accession``.

    Raises
    ------
    NotFoundError
        For the empty object BioStudies returns when it has no such study.
    SourceError
        When ``httpLink`` is missing or not an http(s) URL.
    """
    if not payload:
        msg = f"{accession} does not exist at BioStudies/ArrayExpress (empty study info)"
        raise NotFoundError(msg)
    http_link = payload.get("httpLink")
    if not isinstance(http_link, str) or not http_link.startswith(("https://", "http://")):
        msg = f"{accession}: study info has no usable 'httpLink' (found {http_link!r})"
        raise SourceError(msg)
    return StudyInfo(
        accession=accession,
        http_link=http_link.rstrip("/"),
        ftp_link=str(payload.get("ftpLink", "")),
        rel_path=str(payload.get("relPath", "")),
        n_files=_optional_int(payload.get("files")) or 0,
        is_public=bool(payload.get("isPublic", False)),
        released_ms=_optional_int(payload.get("released")),
        modified_ms=_optional_int(payload.get("modified")),
    )


def fetch_study_info(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> StudyInfo:
    """GET and parse the study's ``/info`` document."""
    code = _experiment(accession)
    url = info_url(settings.biostudies_base_url, code)
    response = get_with_retries(client, url, policy=policy)
    if response.status_code == httpx.codes.NOT_FOUND:
        msg = f"{code} does not exist at BioStudies/ArrayExpress (404 for {url})"
        raise NotFoundError(msg)
    if response.status_code != httpx.codes.OK:
        msg = f"GET {url}: HTTP {response.status_code} {response.reason_phrase}".rstrip()
        raise DownloadError(msg, url=url, status=response.status_code)
    try:
        payload = json.loads(response.content)
    except ValueError as exc:
        msg = f"GET {url}: expected JSON study info, found {response.text[:60]!r}"
        raise SourceError(msg) from exc
    if not isinstance(payload, dict):
        msg = f"GET {url}: expected a JSON object, found {type(payload).__name__}"
        raise SourceError(msg)
    return parse_study_info(code, payload)


def _fetch(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    accession: str,
    policy: RetryPolicy,
    progress: ProgressCallback | None,
    expected_size: int | None = None,
) -> FetchedFile:
    try:
        return fetch(client, url, dest, expected_size=expected_size, policy=policy, progress=progress)
    except DownloadError as exc:
        if exc.status == httpx.codes.NOT_FOUND:
            msg = f"{accession}: {dest.name} does not exist at BioStudies/ArrayExpress (404 for {url})"
            raise NotFoundError(msg) from exc
        raise


def fetch_idf(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Path:
    """Download ``<acc>.idf.txt`` into ``dest_dir``; return its path."""
    code = _experiment(accession)
    url = idf_url(settings.biostudies_base_url, code)
    dest = Path(dest_dir) / f"{code}.idf.txt"
    return _fetch(client, url, dest, accession=code, policy=policy, progress=None).path


def fetch_sdrf(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Path:
    """Download ``<acc>.sdrf.txt`` into ``dest_dir``; return its path."""
    code = _experiment(accession)
    url = sdrf_url(settings.biostudies_base_url, code)
    dest = Path(dest_dir) / f"{code}.sdrf.txt"
    return _fetch(client, url, dest, accession=code, policy=policy, progress=None).path


def fetch_study_file(
    client: httpx.Client,
    info: StudyInfo,
    name: str,
    *,
    dest_dir: Path,
    expected_size: int | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> FetchedFile:
    """Download the study file ``name`` (e.g. a raw-data zip) from ``info.http_link``."""
    if "/" in name or name in ("", ".", ".."):
        msg = f"{info.accession}: file name {name!r} must be a plain name, not a path"
        raise InputError(msg)
    dest = Path(dest_dir) / name
    return _fetch(
        client,
        file_url(info, name),
        dest,
        accession=info.accession,
        expected_size=expected_size,
        policy=policy,
        progress=progress,
    )
