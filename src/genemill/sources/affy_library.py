"""Affymetrix library files from a CDF repository, by chip type: :func:`fetch_cdf`.

Affymetrix software finds an array's CDF by the chip type in the CEL header (``HG-Focus``,
``HG-U133_Plus_2``), so a repository is a flat folder of files named that way. The layout under
``Settings.cdf_base_url`` (``GENEMILL_CDF_BASE_URL``), tried in this order for chip type ``<chip>``
exactly as the CEL header spells it::

    <base>/<chip>.cdf.gz    <base>/<chip>.CDF.gz    <base>/<chip>.cdf    <base>/<chip>.CDF
    <base>/<chip>.zip       (an Affymetrix library-file zip holding <chip>.cdf, any case, any folder)
    <base>/MD5SUMS          optional: ``<md5>  [./]<file name>`` lines, as ``md5sum`` writes them

A 404 moves on to the next name; every other failure stops at once. A file listed in ``MD5SUMS``
is verified against it (:class:`~genemill.errors.ChecksumError`, nothing kept). Downloads go
through :func:`genemill.sources.fetch.fetch` (resumable, atomic); a CDF taken out of a zip is
written to a temporary file and renamed. The caller parses and installs what is returned: this
module never interprets a CDF's contents.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from genemill.config import Settings
from genemill.errors import DownloadError, InputError, NotFoundError
from genemill.sources.fetch import fetch
from genemill.sources.http import DEFAULT_POLICY, RetryPolicy

__all__ = ["FetchedCdf", "cdf_urls", "fetch_cdf"]

_SUFFIXES = (".cdf.gz", ".CDF.gz", ".cdf", ".CDF", ".zip")


@dataclass(frozen=True)
class FetchedCdf:
    """A downloaded CDF ready to parse: local path, the URL it came from, sha256 of the download."""

    path: Path
    url: str
    sha256: str


def cdf_urls(base_url: str, chip_type: str) -> list[str]:
    """Return the URLs tried for ``chip_type``, in order (see the module docstring)."""
    base = base_url.rstrip("/")
    return [f"{base}/{chip_type}{suffix}" for suffix in _SUFFIXES]


def fetch_cdf(
    settings: Settings,
    client: httpx.Client,
    chip_type: str,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> FetchedCdf:
    """Download the CDF of ``chip_type`` into ``dest_dir`` (a staging folder the caller owns).

    Raises
    ------
    NotFoundError
        No repository is configured, or every URL answered 404 (the message lists them).
    ChecksumError
        The download differs from the repository's ``MD5SUMS`` entry.
    DownloadError
        Any other refusal or a network failure after retries.
    InputError
        A zip without a ``<chip>.cdf`` member, or not a zip at all.
    """
    if not settings.cdf_base_url:
        msg = (
            f"no CDF for chip type {chip_type!r} and no CDF repository configured: set "
            "GENEMILL_CDF_BASE_URL, or add the CDF with `genemill import-cel --cdf FILE`"
        )
        raise NotFoundError(msg)
    if not chip_type or "/" in chip_type or chip_type in {".", ".."}:
        msg = f"chip type {chip_type!r} cannot name a file in a CDF repository"
        raise InputError(msg)
    urls = cdf_urls(settings.cdf_base_url, chip_type)
    sums = _md5sums(client, f"{settings.cdf_base_url.rstrip('/')}/MD5SUMS", policy=policy)
    dest_dir.mkdir(parents=True, exist_ok=True)
    for url in urls:
        name = url.rsplit("/", 1)[1]
        try:
            fetched = fetch(client, url, dest_dir / name, expected_md5=sums.get(name), policy=policy)
        except DownloadError as exc:
            if exc.status == httpx.codes.NOT_FOUND:
                continue
            raise
        if name.endswith(".zip"):
            return FetchedCdf(_extract_cdf(fetched.path, chip_type), url, fetched.sha256)
        return FetchedCdf(fetched.path, url, fetched.sha256)
    msg = f"no CDF for chip type {chip_type!r} in the CDF repository: tried " + ", ".join(urls)
    raise NotFoundError(msg)


def _md5sums(client: httpx.Client, url: str, *, policy: RetryPolicy) -> dict[str, str]:
    """Return ``{file name: md5}`` from the repository's MD5SUMS, or ``{}`` when it has none."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            fetched = fetch(client, url, Path(folder) / "MD5SUMS", policy=policy)
        except DownloadError as exc:
            if exc.status == httpx.codes.NOT_FOUND:
                return {}
            raise
        text = fetched.path.read_text(encoding="utf-8", errors="replace")
    sums: dict[str, str] = {}
    for line in text.splitlines():
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*").removeprefix("./")
        if len(digest) == 32 and name and "/" not in name:
            sums[name] = digest.lower()
    return sums


def _extract_cdf(archive: Path, chip_type: str) -> Path:
    """Write the zip's ``<chip>.cdf`` member (any case, any folder) beside it; return its path."""
    wanted = f"{chip_type}.cdf".lower()
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if Path(m.filename).name.lower() == wanted]
            if not members:
                names = ", ".join(m.filename for m in bundle.infolist()[:10])
                msg = f"{archive.name}: no {chip_type}.CDF inside (holds {names or 'nothing'})"
                raise InputError(msg)
            target = archive.with_name(f"{chip_type}.CDF")
            handle, temporary = tempfile.mkstemp(dir=archive.parent, suffix=".cdf.tmp")
            try:
                with bundle.open(members[0]) as source, os.fdopen(handle, "wb") as out:
                    shutil.copyfileobj(source, out)  # a CRC mismatch raises BadZipFile here
                Path(temporary).replace(target)
            finally:
                Path(temporary).unlink(missing_ok=True)
    except zipfile.BadZipFile as exc:
        msg = f"{archive.name}: not a readable zip ({exc})"
        raise InputError(msg) from exc
    return target
