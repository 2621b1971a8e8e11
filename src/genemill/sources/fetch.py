"""Verified, resumable, atomic downloads: :func:`fetch`.

The protocol, for a destination ``dest``:

1. **Cache hit.** If ``dest`` exists it is hashed and checked against every expectation given
   (size, MD5, SHA-256). A match is returned without touching the network; a mismatch deletes
   ``dest`` and downloads afresh. With no expectations an existing file is trusted.
2. **Stream.** Bytes go to ``<dest>.part`` in the same folder (so the final rename never crosses a
   file system), read with ``iter_raw`` and ``Accept-Encoding: identity`` so a server's
   ``Content-Encoding`` can never alter the stored bytes. MD5 and SHA-256 are updated as chunks are
   written, so a multi-GB file is read from the network once and never re-read.
3. **Resume.** If ``<dest>.part`` exists (left by a cut connection, a stalled server or a killed
   process) the request carries ``Range: bytes=<size>-`` plus ``If-Range`` with the ETag (or
   Last-Modified) of the bytes already held, kept in ``<dest>.part.validator`` so it survives a
   crash: if the file changed on the server the answer is the new file in full, never a splice.
   ``206`` with a matching ``Content-Range`` appends; ``200`` means the server ignored the range (or
   the file changed) and the part is discarded; ``416`` means the part already holds every byte.
4. **Retry.** 408/425/429/5xx, connect/read timeouts, resets and bodies cut short of their
   ``Content-Length`` are retried per :class:`~genemill.sources.http.RetryPolicy`, honouring
   ``Retry-After``. The budget counts *consecutive failures without progress*: an attempt that
   grew the part beyond its largest size so far resets it, so a long download over a flaky link
   keeps going while a dead server (or one that ignores ``Range`` and always cuts at the same byte)
   is given up after ``max_attempts`` tries (:class:`~genemill.errors.DownloadError` with the URL and
   last status). Other statuses (404, 403, ...) fail at once with a ``DownloadError``.
5. **Verify, then install.** Size and checksums are compared; a mismatch deletes the part and raises
   :class:`~genemill.errors.ChecksumError` naming the URL, expected and actual values. A match is
   fsynced and moved into place with :func:`os.replace`, so ``dest`` is either absent, the old file,
   or the complete verified new one — never partial.

Not handled: two processes fetching the same ``dest`` at once (they share one ``.part``); the job
queue is expected to give each file to one worker.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from genemill.errors import ChecksumError, DownloadError
from genemill.sources.http import (
    DEFAULT_POLICY,
    RETRYABLE_ERRORS,
    RETRYABLE_STATUSES,
    RetryPolicy,
    TransientResponse,
    exhausted,
    wait_after_failure,
)

__all__ = ["FetchedFile", "ProgressCallback", "fetch", "hash_file"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]
"""``progress(bytes_done, total)``; ``total`` is ``None`` when neither the server nor the caller knows it."""

CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class FetchedFile:
    """A verified file on disk: where it is, its size in bytes and its hex digests."""

    path: Path
    size: int
    sha256: str
    md5: str


@dataclass(frozen=True)
class _Expected:
    size: int | None
    md5: str | None
    sha256: str | None

    def mismatch(self, size: int, md5: str, sha256: str) -> tuple[str, str, str] | None:
        """Return ``(what, expected, actual)`` for the first failed check, or None."""
        checks = (("size", self.size, size), ("md5", self.md5, md5), ("sha256", self.sha256, sha256))
        for what, expected, actual in checks:
            if expected is not None and expected != actual:
                return what, str(expected), str(actual)
        return None


class _Partial:
    """The ``.part`` file plus running digests that always cover exactly its bytes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        # The ETag/Last-Modified of the representation the part holds, kept beside it so that a
        # resume after a crash still sends If-Range (GEO regenerates files and publishes no hashes).
        self._validator_path = path.with_name(path.name + ".validator")
        self.validator: str | None = None
        if path.exists() and self._validator_path.is_file():
            self.validator = self._validator_path.read_text(encoding="utf-8").strip() or None
        elif not path.exists():
            self._validator_path.unlink(missing_ok=True)

    def remember(self, validator: str | None) -> None:
        """Record (or with None, forget) the validator of the bytes in the part."""
        self.validator = validator
        if validator is None:
            self._validator_path.unlink(missing_ok=True)
        else:
            self._validator_path.write_text(validator + "\n", encoding="utf-8")

    def sync(self) -> int:
        """Re-read the file if its size differs from what was hashed; return its size."""
        on_disk = self.path.stat().st_size if self.path.exists() else 0
        if on_disk != self.size:
            self._md5 = hashlib.md5(usedforsecurity=False)
            self._sha256 = hashlib.sha256()
            self.size = 0
            if on_disk:
                with self.path.open("rb") as fh:
                    while chunk := fh.read(CHUNK_SIZE):
                        self._hash(chunk)
        return self.size

    def discard(self) -> None:
        """Delete the part file and its validator, and forget its digests."""
        self.path.unlink(missing_ok=True)
        self.remember(None)
        self.sync()

    def write(self, fh: BinaryIO, chunk: bytes) -> None:
        fh.write(chunk)
        self._hash(chunk)

    def _hash(self, chunk: bytes) -> None:
        self._md5.update(chunk)
        self._sha256.update(chunk)
        self.size += len(chunk)

    def digests(self) -> tuple[str, str]:
        return self._md5.hexdigest(), self._sha256.hexdigest()


class _Truncated(TransientResponse):
    """The body ended before the announced length without a transport error (resume it)."""


def hash_file(path: Path) -> tuple[int, str, str]:
    """Return ``(size, md5, sha256)`` of ``path``, reading it once."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest(), sha256.hexdigest()


def fetch(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    expected_md5: str | None = None,
    expected_sha256: str | None = None,
    progress: ProgressCallback | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> FetchedFile:
    """Download ``url`` to ``dest``, verified, resumable and atomic (see the module docstring).

    Raises
    ------
    DownloadError
        The server refused (non-retryable status) or kept failing without progress.
    ChecksumError
        The complete download differs from ``expected_size`` / ``expected_md5`` / ``expected_sha256``.
    """
    dest = Path(dest)
    expected = _Expected(
        size=expected_size,
        md5=expected_md5.strip().lower() if expected_md5 else None,
        sha256=expected_sha256.strip().lower() if expected_sha256 else None,
    )
    cached = _cache_hit(url, dest, expected)
    if cached is not None:
        if progress is not None:
            progress(cached.size, cached.size)
        return cached
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _Partial(dest.with_name(dest.name + ".part"))
    _download(client, url, part, expected=expected, progress=progress, policy=policy)
    md5, sha256 = part.digests()
    problem = expected.mismatch(part.size, md5, sha256)
    if problem is not None:
        part.discard()
        raise _checksum_error(url, problem)
    part.path.replace(dest)  # os.replace: atomic within one file system
    part.remember(None)
    _fsync_directory(dest.parent)
    return FetchedFile(path=dest, size=part.size, sha256=sha256, md5=md5)


def _cache_hit(url: str, dest: Path, expected: _Expected) -> FetchedFile | None:
    if not dest.is_file():
        return None
    size, md5, sha256 = hash_file(dest)
    problem = expected.mismatch(size, md5, sha256)
    if problem is None:
        return FetchedFile(path=dest, size=size, sha256=sha256, md5=md5)
    what, wanted, found = problem
    logger.warning("%s: cached %s has %s %s, expected %s; downloading again", url, dest, what, found, wanted)
    dest.unlink()
    return None


def _checksum_error(url: str, problem: tuple[str, str, str]) -> ChecksumError:
    what, wanted, found = problem
    msg = f"{url}: {what} expected {wanted}, found {found}; the partial download was deleted"
    return ChecksumError(msg, expected=wanted, actual=found)


def _download(
    client: httpx.Client,
    url: str,
    part: _Partial,
    *,
    expected: _Expected,
    progress: ProgressCallback | None,
    policy: RetryPolicy,
) -> None:
    failures = 0
    # Progress means the part grew past its largest size so far: a server that ignores Range and
    # cuts every transfer at the same byte restarts from zero each time and is given up on.
    best = part.sync()
    while True:
        try:
            _attempt(client, url, part, expected=expected, progress=progress)
        except RETRYABLE_ERRORS as exc:
            if part.size > best:
                best, failures = part.size, 1
            else:
                failures += 1
            if failures >= policy.max_attempts:
                raise exhausted(exc, url=url, attempts=failures) from exc
            wait_after_failure(exc, url=url, failures=failures, policy=policy)
        else:
            return


def _attempt(
    client: httpx.Client,
    url: str,
    part: _Partial,
    *,
    expected: _Expected,
    progress: ProgressCallback | None,
) -> None:
    offset = part.sync()
    if expected.size is not None and offset > expected.size:
        part.discard()
        offset = 0
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if part.validator:
            headers["If-Range"] = part.validator
    else:
        part.remember(None)
    with client.stream("GET", url, headers=headers) as response:
        announced = _accept(response, url, part, offset=offset)
        if announced is None:  # 416: the part already holds the whole representation
            return
        if part.validator is None:
            part.remember(_validator(response))
        if expected.size is not None and announced >= 0 and announced != expected.size:
            part.discard()
            problem = ("size", str(expected.size), f"{announced} (announced by the server)")
            raise _checksum_error(url, problem)
        total = announced if announced >= 0 else expected.size
        _stream(response, part, total=total, progress=progress)
    if total is not None and part.size < total:
        msg = f"body ended at byte {part.size} of {total}"
        raise _Truncated(msg, status=response.status_code)


def _accept(response: httpx.Response, url: str, part: _Partial, *, offset: int) -> int | None:
    """Check the status against the request.

    Return the full size of the file (``-1`` if unknown), or None when a 416 says the part is complete.
    """
    status = response.status_code
    if status in RETRYABLE_STATUSES:
        raise TransientResponse.from_response(response)
    if status == httpx.codes.REQUESTED_RANGE_NOT_SATISFIABLE and offset:
        _, total = _content_range(response)
        if total == offset:
            return None
        logger.warning("%s: part holds %d bytes but the server has %s; restarting", url, offset, total)
        part.discard()
        raise TransientResponse.from_response(response)
    if status == httpx.codes.OK:
        if offset:
            logger.warning("%s: server ignored Range (answered 200); restarting from byte 0", url)
            part.discard()
        length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else -1
    if status == httpx.codes.PARTIAL_CONTENT:
        start, total = _content_range(response)
        if start != offset:
            part.discard()
            msg = f"asked for bytes from {offset}, server sent Content-Range starting at {start}"
            raise TransientResponse(msg, status=status)
        return total if total is not None else -1
    msg = f"GET {url}: HTTP {status} {response.reason_phrase}".rstrip()
    raise DownloadError(msg, url=url, status=status)


def _content_range(response: httpx.Response) -> tuple[int | None, int | None]:
    """Parse ``Content-Range: bytes <start>-<end>/<total>`` (or ``bytes */<total>``)."""
    value = response.headers.get("Content-Range", "")
    unit, _, spec = value.strip().partition(" ")
    if unit.lower() != "bytes" or "/" not in spec:
        return None, None
    span, _, total_text = spec.partition("/")
    first = span.partition("-")[0]
    start = int(first) if first.isdigit() else None
    total = int(total_text) if total_text.isdigit() else None
    return start, total


def _validator(response: httpx.Response) -> str | None:
    etag = str(response.headers.get("ETag", ""))
    if etag and not etag.startswith("W/"):  # If-Range only accepts strong validators
        return etag
    return str(response.headers.get("Last-Modified", "")) or None


def _stream(
    response: httpx.Response,
    part: _Partial,
    *,
    total: int | None,
    progress: ProgressCallback | None,
) -> None:
    with part.path.open("ab") as fh:
        try:
            for chunk in response.iter_raw():  # as received: nothing is held back when a cut comes
                part.write(fh, chunk)
                if progress is not None:
                    progress(part.size, total)
        finally:
            fh.flush()
            os.fsync(fh.fileno())


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        logger.debug("fsync of directory %s not supported", directory)
    finally:
        os.close(fd)
