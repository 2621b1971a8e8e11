"""ENA portal API: the read runs of a study (or project, sample, run) with FASTQ URLs, MD5s and sizes.

Request (``settings.ena_base_url`` = ``https://www.ebi.ac.uk/ena/portal/api``)::

    GET /filereport?accession=SRP012345&result=read_run&format=tsv&fields=<READ_RUN_FIELDS, comma-joined>

Response: tab-separated, a header row naming the fields, then one row per run. ``fastq_ftp``,
``fastq_md5`` and ``fastq_bytes`` hold ``;``-separated values aligned position by position: one file
for a single-end run, ``_1`` and ``_2`` for paired-end, sometimes an unpaired file first and then
``_1``/``_2``. Paths carry no scheme (``ftp.sra.ebi.ac.uk/vol1/fastq/ERR127/ERR127302/...``); ENA
serves the same paths over HTTPS, so genemill prefixes ``https://``.

The FASTQ files of a run are fetched from the URLs ENA gives, or from a mirror
(:func:`fastq_download_url`).

ENA has been seen to answer 200 with an empty body, or with a header and no rows, while degraded.
An empty body is retried like a 503; header-only (or 204) raises
:class:`~genemill.errors.NotFoundError` — indistinguishable from "no such accession", so callers that
expect runs should retry the job later rather than conclude there are none. Rows whose FASTQ columns
disagree in length or carry a malformed MD5 raise :class:`~genemill.errors.SourceError`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from genemill.config import Settings
from genemill.errors import DownloadError, NotFoundError, SourceError
from genemill.sources.fetch import FetchedFile, ProgressCallback, fetch
from genemill.sources.http import (
    DEFAULT_POLICY,
    RETRYABLE_STATUSES,
    RetryPolicy,
    TransientResponse,
    with_retries,
)

__all__ = [
    "READ_RUN_FIELDS",
    "EnaRun",
    "FastqFile",
    "fastq_download_url",
    "fetch_fastq",
    "fetch_run_fastqs",
    "filereport_params",
    "list_read_runs",
    "parse_read_runs",
]

READ_RUN_FIELDS = (
    "run_accession",
    "study_accession",
    "sample_accession",
    "experiment_accession",
    "fastq_ftp",
    "fastq_md5",
    "fastq_bytes",
    "library_layout",
    "library_strategy",
    "library_source",
    "instrument_platform",
    "instrument_model",
    "read_count",
    "base_count",
    "scientific_name",
    "tax_id",
    "secondary_study_accession",
    "secondary_sample_accession",
    "study_title",
    "experiment_title",
    "sample_title",
)

_MD5 = re.compile(r"^[0-9a-f]{32}$")
_MATE = re.compile(r"_([12])\.(?:fastq|fq)(?:\.gz)?$")


@dataclass(frozen=True)
class FastqFile:
    """One FASTQ file of a run: HTTPS URL, MD5, size in bytes and mate (1, 2 or None if unpaired)."""

    url: str
    md5: str
    size: int
    mate: int | None

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class EnaRun:
    """One sequencing run as ENA's ``read_run`` report describes it."""

    run_accession: str
    study_accession: str
    sample_accession: str
    experiment_accession: str
    fastq: tuple[FastqFile, ...]
    library_layout: str
    library_strategy: str
    library_source: str
    instrument_platform: str
    instrument_model: str
    read_count: int | None
    base_count: int | None
    scientific_name: str
    tax_id: str
    secondary_study_accession: str = ""
    secondary_sample_accession: str = ""
    study_title: str = ""
    experiment_title: str = ""
    sample_title: str = ""

    @property
    def is_paired(self) -> bool:
        return self.library_layout.upper() == "PAIRED"


def fastq_download_url(url: str, settings: Settings) -> str:
    """Where to fetch an ENA FASTQ URL from: ENA itself, or the mirror ``ena_base_url`` names.

    With the default ``ena_base_url`` (on ``www.ebi.ac.uk``) the URL is returned unchanged. When
    ``ena_base_url`` points at another host (a local mirror, or the test server), that host serves
    the FASTQ files too, under ENA's own paths (``/vol1/fastq/ERR127/ERR127302/…``).
    """
    mirror = httpx.URL(settings.ena_base_url)
    if mirror.host.endswith("ebi.ac.uk"):
        return url
    return str(httpx.URL(url).copy_with(scheme=mirror.scheme, host=mirror.host, port=mirror.port))


def filereport_params(accession: str) -> dict[str, str]:
    """Query parameters of the ``filereport`` request for ``accession``."""
    return {
        "accession": accession,
        "result": "read_run",
        "fields": ",".join(READ_RUN_FIELDS),
        "format": "tsv",
    }


def _https(path: str) -> str:
    path = path.strip()
    for scheme in ("ftp://", "http://", "https://"):
        if path.startswith(scheme):
            path = path[len(scheme) :]
    return "https://" + path


def _mates(urls: list[str], *, paired: bool) -> list[int | None]:
    found = [_MATE.search(url) for url in urls]
    if all(found):
        return [int(m.group(1)) if m else None for m in found]
    if paired and len(urls) == 2:  # unconventional names: ENA lists _1 before _2
        return [1, 2]
    if paired and len(urls) == 3:  # an unpaired file precedes the pair
        return [None, 1, 2]
    return [int(m.group(1)) if m else None for m in found]


def _fastq_files(row: dict[str, str], *, line: int) -> tuple[FastqFile, ...]:
    run = row.get("run_accession", "?")
    urls = [u for u in row.get("fastq_ftp", "").split(";") if u.strip()]
    md5s = [m.strip().lower() for m in row.get("fastq_md5", "").split(";") if m.strip()]
    sizes = [s.strip() for s in row.get("fastq_bytes", "").split(";") if s.strip()]
    if not (len(urls) == len(md5s) == len(sizes)):
        msg = (
            f"ENA filereport line {line} ({run}): fastq_ftp/fastq_md5/fastq_bytes list "
            f"{len(urls)}/{len(md5s)}/{len(sizes)} values, expected equal counts"
        )
        raise SourceError(msg)
    for md5, size in zip(md5s, sizes, strict=True):
        if not _MD5.match(md5) or not size.isdigit():
            msg = f"ENA filereport line {line} ({run}): malformed md5 {md5!r} or size {size!r}"
            raise SourceError(msg)
    mates = _mates(urls, paired=row.get("library_layout", "").upper() == "PAIRED")
    return tuple(
        FastqFile(url=_https(url), md5=md5, size=int(size), mate=mate)
        for url, md5, size, mate in zip(urls, md5s, sizes, mates, strict=True)
    )


def _optional_int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def parse_read_runs(text: str, *, accession: str) -> list[EnaRun]:
    """Parse a ``filereport`` TSV into runs (columns located by header name, any order).

    Raises
    ------
    SourceError
        For an empty body, a header without ``run_accession``, or inconsistent FASTQ columns.
    NotFoundError
        For a header with no rows.
    """
    if not text.strip():
        msg = f"ENA filereport for {accession} is empty (expected a TSV header and rows)"
        raise SourceError(msg)
    reader = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    if "run_accession" not in (reader.fieldnames or []):
        msg = f"ENA filereport for {accession}: header {reader.fieldnames!r} lacks 'run_accession'"
        raise SourceError(msg)
    runs = []
    for line, row in enumerate(reader, start=2):
        clean = {key: (value or "").strip() for key, value in row.items() if key is not None}
        runs.append(
            EnaRun(
                run_accession=clean["run_accession"],
                study_accession=clean.get("study_accession", ""),
                sample_accession=clean.get("sample_accession", ""),
                experiment_accession=clean.get("experiment_accession", ""),
                fastq=_fastq_files(clean, line=line),
                library_layout=clean.get("library_layout", ""),
                library_strategy=clean.get("library_strategy", ""),
                library_source=clean.get("library_source", ""),
                instrument_platform=clean.get("instrument_platform", ""),
                instrument_model=clean.get("instrument_model", ""),
                read_count=_optional_int(clean.get("read_count")),
                base_count=_optional_int(clean.get("base_count")),
                scientific_name=clean.get("scientific_name", ""),
                tax_id=clean.get("tax_id", ""),
                secondary_study_accession=clean.get("secondary_study_accession", ""),
                secondary_sample_accession=clean.get("secondary_sample_accession", ""),
                study_title=clean.get("study_title", ""),
                experiment_title=clean.get("experiment_title", ""),
                sample_title=clean.get("sample_title", ""),
            )
        )
    if not runs:
        msg = f"ENA lists no read runs for {accession} (the filereport has a header and no rows)"
        raise NotFoundError(msg)
    return runs


def list_read_runs(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> list[EnaRun]:
    """Ask ENA for the read runs of ``accession`` (study, project, sample, experiment or run)."""
    url = f"{settings.ena_base_url.rstrip('/')}/filereport"

    def attempt(_: int) -> str:
        response = client.get(url, params=filereport_params(accession))
        if response.status_code in RETRYABLE_STATUSES:
            raise TransientResponse.from_response(response)
        if response.status_code == httpx.codes.NO_CONTENT:
            return ""
        if response.status_code != httpx.codes.OK:
            msg = f"GET {url}?accession={accession}: HTTP {response.status_code} {response.text[:200]!r}"
            raise DownloadError(msg, url=url, status=response.status_code)
        if not response.content.strip():
            msg = "ENA answered 200 with an empty body"
            raise TransientResponse(msg, status=response.status_code)
        return response.text

    text = with_retries(attempt, url=url, policy=policy)
    if not text:
        msg = f"ENA lists no read runs for {accession} (HTTP 204 No Content)"
        raise NotFoundError(msg)
    return parse_read_runs(text, accession=accession)


def fetch_fastq(
    client: httpx.Client,
    fastq: FastqFile,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> FetchedFile:
    """Download one FASTQ file into ``dest_dir``, verified against ENA's size and MD5."""
    dest = Path(dest_dir) / fastq.name
    return fetch(
        client,
        fastq.url,
        dest,
        expected_size=fastq.size,
        expected_md5=fastq.md5,
        policy=policy,
        progress=progress,
    )


def fetch_run_fastqs(
    client: httpx.Client,
    run: EnaRun,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> list[FetchedFile]:
    """Download every FASTQ file of ``run`` into ``dest_dir``, in ENA's order.

    Raises
    ------
    NotFoundError
        When ENA lists no FASTQ for the run (only submitted files, or a degraded answer).
    """
    if not run.fastq:
        msg = f"ENA lists no FASTQ files for run {run.run_accession}"
        raise NotFoundError(msg)
    return [
        fetch_fastq(client, fastq, dest_dir=dest_dir, policy=policy, progress=progress) for fastq in run.fastq
    ]
