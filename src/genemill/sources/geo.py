"""NCBI GEO's file server: URL layout, directory listings and fetchers.

Layout under ``settings.geo_base_url`` (default ``https://ftp.ncbi.nlm.nih.gov``), where ``<stub>``
replaces the last three digits of the accession by ``nnn`` (GSE37302 → GSE37nnn, GSE781 → GSEnnn)::

    /geo/series/<stub>/<GSE>/soft/<GSE>_family.soft.gz          family SOFT (series + platforms + samples)
    /geo/series/<stub>/<GSE>/matrix/<GSE>_series_matrix.txt.gz  series matrix, one platform
    /geo/series/<stub>/<GSE>/matrix/<GSE>-<GPL>_series_matrix.txt.gz   one per platform otherwise
    /geo/series/<stub>/<GSE>/miniml/<GSE>_family.xml.tgz        MINiML family archive
    /geo/series/<stub>/<GSE>/suppl/                             supplementary files (<GSE>_RAW.tar, ...)
    /geo/samples/<stub>/<GSM>/suppl/                            a sample's supplementary files
    /geo/platforms/<stub>/<GPL>/soft/<GPL>_family.soft.gz       platform SOFT
    /geo/platforms/<stub>/<GPL>/annot/<GPL>.annot.gz            platform annotation file

Directories answer with an Apache autoindex (``<pre>`` lines of ``<a href="name">``, an absolute
``Parent Directory`` link and a site footer link); :func:`parse_listing` keeps only plain file names.
A directory without an index — the normal state of ``suppl/`` for a series with no supplementary
files — answers 403 "Access forbidden", which :func:`list_directory` reports as an empty listing. A
404 on a record's file or folder means the record does not exist and raises
:class:`~genemill.errors.NotFoundError` naming the accession. GEO publishes no checksums; downloads
are verified against the announced ``Content-Length``.
"""

from __future__ import annotations

import html.parser
import urllib.parse
from pathlib import Path

import httpx

from genemill.accessions import AccessionKind, Archive, geo_stub, parse_accession
from genemill.config import Settings
from genemill.errors import AccessionError, DownloadError, NotFoundError
from genemill.sources.fetch import FetchedFile, ProgressCallback, fetch
from genemill.sources.http import DEFAULT_POLICY, RetryPolicy, get_with_retries

__all__ = [
    "fetch_geo_file",
    "fetch_platform_annot",
    "fetch_platform_soft",
    "fetch_sample_supplementary",
    "fetch_series_matrices",
    "fetch_series_miniml",
    "fetch_series_raw_tar",
    "fetch_series_soft",
    "fetch_series_supplementary",
    "list_directory",
    "list_sample_supplementary",
    "list_series_matrices",
    "list_series_supplementary",
    "parse_listing",
    "platform_annot_url",
    "platform_dir_url",
    "platform_soft_url",
    "sample_dir_url",
    "sample_suppl_url",
    "series_dir_url",
    "series_matrix_dir_url",
    "series_matrix_url",
    "series_miniml_url",
    "series_raw_tar_url",
    "series_soft_url",
    "series_suppl_url",
]

_FOLDERS = {
    AccessionKind.SERIES: ("series", "GSE"),
    AccessionKind.SAMPLE: ("samples", "GSM"),
    AccessionKind.PLATFORM: ("platforms", "GPL"),
}


def _record_dir(base: str, accession: str, kind: AccessionKind) -> str:
    parsed = parse_accession(accession)
    folder, prefix = _FOLDERS[kind]
    if parsed.archive is not Archive.GEO or parsed.kind is not kind:
        msg = f"{accession!r} is not a GEO {kind.value} accession: expected {prefix}<digits>"
        raise AccessionError(msg)
    return f"{base.rstrip('/')}/geo/{folder}/{geo_stub(parsed.code)}/{parsed.code}/"


def _code(accession: str) -> str:
    return parse_accession(accession).code


# -- URL layout (pure) -------------------------------------------------------------------------------
def series_dir_url(base: str, accession: str) -> str:
    """``{base}/geo/series/GSE37nnn/GSE37302/``."""
    return _record_dir(base, accession, AccessionKind.SERIES)


def series_soft_url(base: str, accession: str) -> str:
    """``{base}/geo/series/GSE37nnn/GSE37302/soft/GSE37302_family.soft.gz``."""
    return f"{series_dir_url(base, accession)}soft/{_code(accession)}_family.soft.gz"


def series_matrix_dir_url(base: str, accession: str) -> str:
    """``{base}/geo/series/GSE37nnn/GSE37302/matrix/``."""
    return f"{series_dir_url(base, accession)}matrix/"


def series_matrix_url(base: str, accession: str, *, platform: str | None = None) -> str:
    """``.../matrix/GSE37302_series_matrix.txt.gz``, or ``GSE37302-GPL96_...`` for one platform."""
    stem = _code(accession) if platform is None else f"{_code(accession)}-{_code(platform)}"
    return f"{series_matrix_dir_url(base, accession)}{stem}_series_matrix.txt.gz"


def series_miniml_url(base: str, accession: str) -> str:
    """``{base}/geo/series/GSE37nnn/GSE37302/miniml/GSE37302_family.xml.tgz``."""
    return f"{series_dir_url(base, accession)}miniml/{_code(accession)}_family.xml.tgz"


def series_suppl_url(base: str, accession: str) -> str:
    """``{base}/geo/series/GSE37nnn/GSE37302/suppl/`` (a directory listing)."""
    return f"{series_dir_url(base, accession)}suppl/"


def series_raw_tar_url(base: str, accession: str) -> str:
    """``{base}/geo/series/GSE37nnn/GSE37302/suppl/GSE37302_RAW.tar`` (the raw-data bundle)."""
    return f"{series_suppl_url(base, accession)}{_code(accession)}_RAW.tar"


def sample_dir_url(base: str, accession: str) -> str:
    """``{base}/geo/samples/GSM1nnn/GSM1234/``."""
    return _record_dir(base, accession, AccessionKind.SAMPLE)


def sample_suppl_url(base: str, accession: str) -> str:
    """``{base}/geo/samples/GSM1nnn/GSM1234/suppl/`` (a directory listing)."""
    return f"{sample_dir_url(base, accession)}suppl/"


def platform_dir_url(base: str, accession: str) -> str:
    """``{base}/geo/platforms/GPLnnn/GPL96/``."""
    return _record_dir(base, accession, AccessionKind.PLATFORM)


def platform_soft_url(base: str, accession: str) -> str:
    """``{base}/geo/platforms/GPLnnn/GPL96/soft/GPL96_family.soft.gz``."""
    return f"{platform_dir_url(base, accession)}soft/{_code(accession)}_family.soft.gz"


def platform_annot_url(base: str, accession: str) -> str:
    """``{base}/geo/platforms/GPLnnn/GPL96/annot/GPL96.annot.gz``."""
    return f"{platform_dir_url(base, accession)}annot/{_code(accession)}.annot.gz"


# -- directory listings ------------------------------------------------------------------------------
class _LinkCollector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def parse_listing(text: str) -> list[str]:
    """Return the file names linked from an Apache autoindex page, in page order, without repeats.

    Dropped: sort links (``?C=N;O=D``), anchors, parent and absolute links (``/geo/...``, ``../``),
    other sites (``https://www.hhs.gov/...``, ``mailto:``), subdirectories (``name/``) and anything that
    would escape the directory after percent-decoding (``..``, ``a/b``).
    """
    collector = _LinkCollector()
    collector.feed(text)
    collector.close()
    names: list[str] = []
    for href in collector.hrefs:
        if href.startswith(("?", "#", "/", ".")) or ":" in href.split("/", 1)[0]:
            continue
        if href.endswith("/"):
            continue
        name = urllib.parse.unquote(href)
        if "/" in name or "\\" in name or name in ("", ".", "..") or name.startswith("-"):
            continue
        if name not in names:
            names.append(name)
    return names


def list_directory(
    client: httpx.Client,
    url: str,
    *,
    accession: str,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> list[str]:
    """Return the file names in the GEO directory ``url`` (a 403 "no index" page counts as empty).

    Raises
    ------
    NotFoundError
        On 404, naming ``accession``.
    DownloadError
        On another failure status, or when retries are exhausted.
    """
    response = get_with_retries(client, url, policy=policy)
    if response.status_code == httpx.codes.FORBIDDEN:
        return []
    if response.status_code == httpx.codes.NOT_FOUND:
        msg = f"{accession} does not exist at GEO (404 for {url})"
        raise NotFoundError(msg)
    if response.status_code != httpx.codes.OK:
        msg = f"GET {url}: HTTP {response.status_code} {response.reason_phrase}".rstrip()
        raise DownloadError(msg, url=url, status=response.status_code)
    return parse_listing(response.text)


def list_series_supplementary(
    client: httpx.Client, settings: Settings, accession: str, *, policy: RetryPolicy = DEFAULT_POLICY
) -> list[str]:
    """File names in a series' ``suppl/`` folder (``[]`` when it has none)."""
    url = series_suppl_url(settings.geo_base_url, accession)
    return list_directory(client, url, accession=_code(accession), policy=policy)


def list_sample_supplementary(
    client: httpx.Client, settings: Settings, accession: str, *, policy: RetryPolicy = DEFAULT_POLICY
) -> list[str]:
    """File names in a sample's ``suppl/`` folder (``[]`` when it has none)."""
    url = sample_suppl_url(settings.geo_base_url, accession)
    return list_directory(client, url, accession=_code(accession), policy=policy)


def list_series_matrices(
    client: httpx.Client, settings: Settings, accession: str, *, policy: RetryPolicy = DEFAULT_POLICY
) -> list[str]:
    """Series-matrix file names: one for a single-platform series, one per platform otherwise."""
    url = series_matrix_dir_url(settings.geo_base_url, accession)
    names = list_directory(client, url, accession=_code(accession), policy=policy)
    return [name for name in names if name.endswith("_series_matrix.txt.gz")]


# -- fetchers ----------------------------------------------------------------------------------------
def fetch_geo_file(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    accession: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> FetchedFile:
    """:func:`~genemill.sources.fetch.fetch` a GEO file, turning a 404 into a NotFoundError."""
    try:
        return fetch(client, url, dest, policy=policy, progress=progress)
    except DownloadError as exc:
        if exc.status == httpx.codes.NOT_FOUND:
            msg = f"{accession} does not exist at GEO (404 for {url})"
            raise NotFoundError(msg) from exc
        raise


def _fetch_named(
    client: httpx.Client,
    url: str,
    dest_dir: Path,
    *,
    accession: str,
    policy: RetryPolicy,
    progress: ProgressCallback | None,
) -> Path:
    name = urllib.parse.unquote(url.rsplit("/", 1)[1])
    dest = Path(dest_dir) / name
    return fetch_geo_file(client, url, dest, accession=accession, policy=policy, progress=progress).path


def fetch_series_soft(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download ``<GSE>_family.soft.gz`` into ``dest_dir``; return its path.

    Raises
    ------
    NotFoundError
        ``"GSE999999999 does not exist at GEO (404 for <url>)"``.
    """
    url = series_soft_url(settings.geo_base_url, accession)
    return _fetch_named(client, url, dest_dir, accession=_code(accession), policy=policy, progress=progress)


def fetch_series_miniml(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download ``<GSE>_family.xml.tgz`` into ``dest_dir``; return its path."""
    url = series_miniml_url(settings.geo_base_url, accession)
    return _fetch_named(client, url, dest_dir, accession=_code(accession), policy=policy, progress=progress)


def fetch_series_matrices(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Download every series-matrix file of a series (one per platform) into ``dest_dir``.

    Raises
    ------
    NotFoundError
        When the series has no ``matrix/`` folder or it lists no matrix file.
    """
    names = list_series_matrices(client, settings, accession, policy=policy)
    folder = series_matrix_dir_url(settings.geo_base_url, accession)
    if not names:
        msg = f"{_code(accession)} has no series matrix at GEO ({folder} lists none)"
        raise NotFoundError(msg)
    return [
        _fetch_named(
            client,
            folder + urllib.parse.quote(name),
            dest_dir,
            accession=_code(accession),
            policy=policy,
            progress=progress,
        )
        for name in names
    ]


def fetch_series_raw_tar(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download ``<GSE>_RAW.tar`` (often GBs; resumable) into ``dest_dir``; return its path."""
    url = series_raw_tar_url(settings.geo_base_url, accession)
    return _fetch_named(client, url, dest_dir, accession=_code(accession), policy=policy, progress=progress)


def fetch_series_supplementary(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    name: str,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download the supplementary file ``name`` (from :func:`list_series_supplementary`)."""
    url = series_suppl_url(settings.geo_base_url, accession) + urllib.parse.quote(name)
    return _fetch_named(client, url, dest_dir, accession=_code(accession), policy=policy, progress=progress)


def fetch_sample_supplementary(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    name: str,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download a sample's supplementary file ``name`` (e.g. its CEL file)."""
    url = sample_suppl_url(settings.geo_base_url, accession) + urllib.parse.quote(name)
    return _fetch_named(client, url, dest_dir, accession=_code(accession), policy=policy, progress=progress)


def fetch_platform_soft(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download ``<GPL>_family.soft.gz`` into ``dest_dir``; return its path."""
    url = platform_soft_url(settings.geo_base_url, accession)
    return _fetch_named(client, url, dest_dir, accession=_code(accession), policy=policy, progress=progress)


def fetch_platform_annot(
    client: httpx.Client,
    settings: Settings,
    accession: str,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download ``<GPL>.annot.gz`` (GEO's curated platform annotation) into ``dest_dir``."""
    url = platform_annot_url(settings.geo_base_url, accession)
    return _fetch_named(client, url, dest_dir, accession=_code(accession), policy=policy, progress=progress)
