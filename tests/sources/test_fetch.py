"""fetch(): resume, retries, timeouts, checksums, cache hits and atomicity against a local server.

Also covers the retry helper of genemill.sources.http (RetryPolicy, with_retries).
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import httpx
import pytest
from fixture_server import Fault, FixtureServer

from genemill.config import Settings
from genemill.errors import ChecksumError, DownloadError
from genemill.sources.fetch import fetch, hash_file
from genemill.sources.http import (
    RetryPolicy,
    TransientResponse,
    make_client,
    retry_after_seconds,
    with_retries,
)

DATA = Path(__file__).parents[2] / "data"
SOFT = DATA / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"  # real, 10,142,112 bytes
SOFT_PATH = "/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz"
URL = "https://ftp.ncbi.nlm.nih.gov" + SOFT_PATH
SOFT_BYTES = SOFT.read_bytes()
SOFT_SHA256 = hashlib.sha256(SOFT_BYTES).hexdigest()
SOFT_MD5 = hashlib.md5(SOFT_BYTES, usedforsecurity=False).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".validator")))


@pytest.fixture
def soft_server(fixture_server: FixtureServer) -> FixtureServer:
    fixture_server.add_file(SOFT_PATH, SOFT)
    return fixture_server


def test_fetch_streams_verifies_and_reports_digests(soft_server, client, fast_policy, tmp_path):
    seen: list[tuple[int, int | None]] = []
    result = fetch(
        client,
        URL,
        tmp_path / "GSE781_family.soft.gz",
        expected_size=len(SOFT_BYTES),
        expected_md5=SOFT_MD5.upper(),  # case does not matter
        expected_sha256=SOFT_SHA256,
        progress=lambda done, total: seen.append((done, total)),
        policy=fast_policy,
    )
    assert result.path.read_bytes() == SOFT_BYTES
    assert (result.size, result.sha256, result.md5) == (len(SOFT_BYTES), SOFT_SHA256, SOFT_MD5)
    assert seen[-1] == (len(SOFT_BYTES), len(SOFT_BYTES))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    (request,) = soft_server.requests
    assert request.host == "ftp.ncbi.nlm.nih.gov"
    assert request.headers["user-agent"] == "genemill/0.1.0 (+tests@genemill.invalid)"
    assert request.headers["accept-encoding"] == "identity"
    assert leftovers(tmp_path) == []


def test_truncated_body_is_resumed_with_a_range_request(soft_server, client, fast_policy, tmp_path):
    soft_server.add_fault(SOFT_PATH, Fault.truncate(after_bytes=3_000_000))
    result = fetch(client, URL, tmp_path / "x.soft.gz", expected_sha256=SOFT_SHA256, policy=fast_policy)
    assert result.sha256 == SOFT_SHA256
    first, second = soft_server.requests
    assert (first.range, first.status, first.fault) == (None, 200, "truncate")
    assert (second.range, second.status) == ("bytes=3000000-", 206)
    assert second.headers["if-range"] == first_etag(soft_server)
    assert leftovers(tmp_path) == []


def first_etag(server: FixtureServer) -> str:
    with httpx.Client() as plain:
        return plain.head(server.url(SOFT_PATH)).headers["ETag"]


def test_existing_part_from_an_earlier_run_is_resumed(soft_server, client, fast_policy, tmp_path):
    dest = tmp_path / "GSE781_family.soft.gz"
    Path(str(dest) + ".part").write_bytes(SOFT_BYTES[:4_000_000])
    result = fetch(client, URL, dest, expected_md5=SOFT_MD5, policy=fast_policy)
    assert result.md5 == SOFT_MD5
    (request,) = soft_server.requests
    assert (request.range, request.status) == ("bytes=4000000-", 206)
    assert "if-range" not in request.headers  # no validator was recorded for that part


def test_server_answering_200_to_a_range_request_restarts_cleanly(soft_server, client, fast_policy, tmp_path):
    dest = tmp_path / "GSE781_family.soft.gz"
    Path(str(dest) + ".part").write_bytes(SOFT_BYTES[:1000])
    soft_server.add_fault(SOFT_PATH, Fault.ignore_range())
    result = fetch(client, URL, dest, policy=fast_policy)
    assert (result.size, result.sha256) == (len(SOFT_BYTES), SOFT_SHA256)  # not 1000 bytes too long
    assert [(r.range, r.status) for r in soft_server.requests] == [("bytes=1000-", 200)]


def test_part_of_a_file_that_changed_on_the_server_is_not_spliced(
    fixture_server, client, fast_policy, tmp_path
):
    """A crash leaves old bytes + their ETag; the file is then regenerated; If-Range gets it whole."""
    old, new = b"old version " * 1000, b"new version!" * 1000
    dest = tmp_path / "f.txt"
    Path(str(dest) + ".part").write_bytes(old[:5000])
    Path(str(dest) + ".part.validator").write_text('"etag-of-the-old-version"\n')
    fixture_server.add_bytes("/f.txt", new)
    result = fetch(client, "https://example.org/f.txt", dest, policy=fast_policy)
    assert dest.read_bytes() == new and result.size == len(new)
    (request,) = fixture_server.requests
    assert request.headers["if-range"] == '"etag-of-the-old-version"'
    assert request.status == 200
    assert leftovers(tmp_path) == []


def test_complete_part_is_confirmed_by_416(soft_server, client, fast_policy, tmp_path):
    dest = tmp_path / "GSE781_family.soft.gz"
    Path(str(dest) + ".part").write_bytes(SOFT_BYTES)
    result = fetch(client, URL, dest, expected_sha256=SOFT_SHA256, policy=fast_policy)
    assert result.sha256 == SOFT_SHA256
    assert [r.status for r in soft_server.requests] == [416]


def test_part_longer_than_the_remote_file_is_discarded(fixture_server, client, fast_policy, tmp_path):
    """The file shrank on the server since the part was written: 416 with another size -> start over."""
    fixture_server.add_bytes("/f.txt", b"short and new")
    dest = tmp_path / "f.txt"
    Path(str(dest) + ".part").write_bytes(b"a much longer old version of the file")
    result = fetch(client, "https://example.org/f.txt", dest, policy=fast_policy)
    assert dest.read_bytes() == b"short and new" and result.size == 13
    assert [(r.range, r.status) for r in fixture_server.requests] == [("bytes=37-", 416), (None, 200)]


def test_make_client_defaults(source_settings):
    with make_client(source_settings) as made:
        assert made.follow_redirects is True
        assert made.timeout.read == 120.0 and made.timeout.connect == 15.0
        assert made.headers["User-Agent"] == "genemill/0.1.0 (+tests@genemill.invalid)"


def test_retry_after_429_honours_retry_after(soft_server, client, fast_policy, tmp_path):
    soft_server.add_fault(SOFT_PATH, Fault.status(429, retry_after=1))
    start = time.monotonic()
    fetch(client, URL, tmp_path / "x", expected_sha256=SOFT_SHA256, policy=fast_policy)
    elapsed = time.monotonic() - start
    assert [r.status for r in soft_server.requests] == [429, 200]
    assert elapsed >= 1.0, f"Retry-After: 1 not honoured (retried after {elapsed:.3f} s)"


def test_retry_after_500_then_success(soft_server, client, fast_policy, tmp_path):
    soft_server.add_fault(SOFT_PATH, Fault.status(500, times=2))
    result = fetch(client, URL, tmp_path / "x", policy=fast_policy)
    assert result.sha256 == SOFT_SHA256
    assert [r.status for r in soft_server.requests] == [500, 500, 200]


def test_gives_up_after_max_attempts_with_status(soft_server, client, fast_policy, tmp_path):
    soft_server.add_fault(SOFT_PATH, Fault.status(500, times=99))
    with pytest.raises(DownloadError, match=r"failed after 3 attempts: HTTP 500") as caught:
        fetch(client, URL, tmp_path / "x", policy=fast_policy)
    assert (caught.value.url, caught.value.status) == (URL, 500)
    assert len(soft_server.requests) == 3
    assert list(tmp_path.iterdir()) == []


def test_non_retryable_status_fails_at_once(fixture_server, client, fast_policy, tmp_path):
    with pytest.raises(DownloadError, match=r"HTTP 404") as caught:
        fetch(client, "https://example.org/missing.gz", tmp_path / "missing.gz", policy=fast_policy)
    assert caught.value.status == 404
    assert len(fixture_server.requests) == 1


def test_connection_reset_is_retried(soft_server, client, fast_policy, tmp_path):
    soft_server.add_fault(SOFT_PATH, Fault.reset(times=2))
    assert fetch(client, URL, tmp_path / "x", policy=fast_policy).sha256 == SOFT_SHA256
    assert [r.status for r in soft_server.requests] == [0, 0, 200]


def test_stalled_connection_times_out_and_resumes(soft_server, client, fast_policy, tmp_path):
    soft_server.add_fault(SOFT_PATH, Fault.stall(seconds=10, after_bytes=2_000_000))
    start = time.monotonic()
    result = fetch(client, URL, tmp_path / "x", expected_sha256=SOFT_SHA256, policy=fast_policy)
    assert result.sha256 == SOFT_SHA256
    assert time.monotonic() - start < 5  # the 0.5 s read timeout fired; the 10 s stall did not block
    assert [r.range for r in soft_server.requests] == [None, "bytes=2000000-"]


def test_stall_before_any_byte_counts_against_the_budget(soft_server, client, fast_policy, tmp_path):
    soft_server.add_fault(SOFT_PATH, Fault.stall(seconds=10, times=99))
    with pytest.raises(DownloadError, match=r"after 3 attempts: ReadTimeout") as caught:
        fetch(client, URL, tmp_path / "x", policy=fast_policy)
    assert caught.value.status is None
    assert len(soft_server.requests) == 3


def test_progress_resets_the_failure_budget(soft_server, client, fast_policy, tmp_path):
    """Five cuts in a row would exhaust 3 attempts, but every cut delivered bytes, so it completes."""
    for _ in range(5):
        soft_server.add_fault(SOFT_PATH, Fault.truncate(after_bytes=1_500_000))
    result = fetch(client, URL, tmp_path / "x", expected_sha256=SOFT_SHA256, policy=fast_policy)
    assert result.sha256 == SOFT_SHA256
    assert len(soft_server.requests) == 6


def test_server_without_ranges_cutting_at_the_same_byte_is_given_up(
    fixture_server, client, fast_policy, tmp_path
):
    """Restarting from zero and dying at the same byte is no progress: no endless loop."""
    fixture_server.add_file(SOFT_PATH, SOFT, ranges=False)
    fixture_server.add_fault(SOFT_PATH, Fault.truncate(after_bytes=1000, times=99))
    with pytest.raises(DownloadError, match=r"after 3 attempts: RemoteProtocolError"):
        fetch(client, URL, tmp_path / "x", policy=fast_policy)
    assert [(r.range, r.status) for r in fixture_server.requests] == [
        (None, 200),
        ("bytes=1000-", 200),
        ("bytes=1000-", 200),
    ]


def test_checksum_mismatch_leaves_nothing_behind(soft_server, client, fast_policy, tmp_path):
    dest = tmp_path / "GSE781_family.soft.gz"
    with pytest.raises(ChecksumError) as caught:
        fetch(client, URL, dest, expected_sha256="0" * 64, policy=fast_policy)
    message = str(caught.value)
    assert URL in message and "0" * 64 in message and SOFT_SHA256 in message
    assert (caught.value.expected, caught.value.actual) == ("0" * 64, SOFT_SHA256)
    assert list(tmp_path.iterdir()) == []


def test_announced_size_mismatch_fails_before_downloading(soft_server, client, fast_policy, tmp_path):
    with pytest.raises(ChecksumError, match=r"size expected 123, found 10142112 \(announced"):
        fetch(client, URL, tmp_path / "x", expected_size=123, policy=fast_policy)
    assert list(tmp_path.iterdir()) == []


def test_cache_hit_is_reverified_without_a_request(soft_server, client, fast_policy, tmp_path):
    dest = tmp_path / "GSE781_family.soft.gz"
    dest.write_bytes(SOFT_BYTES)
    result = fetch(client, URL, dest, expected_sha256=SOFT_SHA256, policy=fast_policy)
    assert result.sha256 == SOFT_SHA256
    assert soft_server.requests == []


def test_cache_hit_with_wrong_content_is_downloaded_again(soft_server, client, fast_policy, tmp_path):
    dest = tmp_path / "GSE781_family.soft.gz"
    dest.write_bytes(SOFT_BYTES[:-10] + b"corrupted!")
    result = fetch(client, URL, dest, expected_md5=SOFT_MD5, policy=fast_policy)
    assert dest.read_bytes() == SOFT_BYTES and result.md5 == SOFT_MD5
    assert len(soft_server.requests) == 1


def test_cache_hit_without_expectations_is_trusted(soft_server, client, fast_policy, tmp_path):
    dest = tmp_path / "x"
    dest.write_bytes(b"whatever was there")
    assert fetch(client, URL, dest, policy=fast_policy).size == len(b"whatever was there")
    assert soft_server.requests == []


def test_destination_is_never_partially_written(soft_server, client, fast_policy, tmp_path):
    dest = tmp_path / "GSE781_family.soft.gz"
    soft_server.add_fault(SOFT_PATH, Fault.truncate(after_bytes=5_000_000))
    states: set[bool] = set()

    def watch(done: int, total: int | None) -> None:
        states.add(dest.exists())

    fetch(client, URL, dest, expected_sha256=SOFT_SHA256, progress=watch, policy=fast_policy)
    assert states == {False}  # while bytes were arriving, dest did not exist at all
    assert hash_file(dest) == (len(SOFT_BYTES), SOFT_MD5, SOFT_SHA256)


def test_failed_download_keeps_the_old_file_out_of_dest(soft_server, client, fast_policy, tmp_path):
    soft_server.add_fault(SOFT_PATH, Fault.truncate(after_bytes=1000))
    soft_server.add_fault(SOFT_PATH, Fault.status(503, times=99))
    dest = tmp_path / "x"
    with pytest.raises(DownloadError, match="HTTP 503"):
        fetch(client, URL, dest, policy=fast_policy)
    assert not dest.exists()
    assert leftovers(tmp_path) == ["x.part", "x.part.validator"]  # kept for the next resume
    assert Path(str(dest) + ".part").read_bytes() == SOFT_BYTES[:1000]


def test_content_encoding_never_alters_the_stored_bytes(fixture_server, client, fast_policy, tmp_path):
    """A misconfigured server labelling a .gz as Content-Encoding: gzip must not get it decompressed."""
    gz = DATA / "geo-soft" / "geoquery-extdata" / "GSM11805.txt.gz"
    fixture_server.add_bytes("/GSM11805.txt.gz", gz.read_bytes(), headers={"Content-Encoding": "gzip"})
    result = fetch(client, "https://example.org/GSM11805.txt.gz", tmp_path / "s.gz", policy=fast_policy)
    assert result.path.read_bytes() == gz.read_bytes()


def test_settings_base_url_without_transport(fixture_server, fast_policy, tmp_path):
    """The other way to reach the server: a plain client and the server's own URL."""
    fixture_server.add_bytes("/plain.txt", b"plain")
    settings = Settings(home=tmp_path / "home")
    with make_client(settings) as plain:
        result = fetch(plain, fixture_server.url("/plain.txt"), tmp_path / "p.txt", policy=fast_policy)
    assert result.path.read_bytes() == b"plain"
    assert re.fullmatch(r"genemill/\S+", fixture_server.requests[0].headers["user-agent"])


# -- the retry helper ------------------------------------------------------------------------------
def test_with_retries_counts_attempts_and_raises_download_error():
    calls: list[int] = []
    policy = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.001)

    def always_busy(attempt: int) -> None:
        calls.append(attempt)
        raise TransientResponse("HTTP 503 Service Unavailable", status=503)

    with pytest.raises(DownloadError, match=r"GET u failed after 4 attempts: HTTP 503") as caught:
        with_retries(always_busy, url="u", policy=policy)
    assert calls == [1, 2, 3, 4]
    assert caught.value.status == 503


def test_with_retries_returns_first_success_and_lets_other_errors_through():
    policy = RetryPolicy(max_attempts=5, base_delay=0.001)

    def flaky(attempt: int) -> int:
        if attempt < 3:
            raise httpx.ReadError("connection reset by peer")
        return attempt

    def broken(attempt: int) -> int:
        raise KeyError(attempt)

    assert with_retries(flaky, url="u", policy=policy) == 3
    with pytest.raises(KeyError):  # not transient: no retry, no wrapping
        with_retries(broken, url="u", policy=policy)


@pytest.mark.parametrize(
    ("failures", "retry_after", "expected"),
    [(1, None, 1.0), (2, None, 2.0), (4, None, 8.0), (10, None, 30.0), (1, 7.0, 7.0), (1, 999.0, 60.0)],
    ids=["first", "doubles", "exponential", "capped", "retry-after-wins", "retry-after-capped"],
)
def test_backoff_schedule_without_jitter(failures, retry_after, expected):
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0, jitter=0.0, max_retry_after=60.0)
    assert policy.delay(failures, retry_after) == expected


def test_jitter_stays_within_its_fraction():
    policy = RetryPolicy(base_delay=1.0, jitter=0.5)
    delays = [policy.delay(1) for _ in range(200)]
    assert all(0.5 <= d <= 1.0 for d in delays) and len(set(delays)) > 1


def test_retry_after_http_date_is_understood():
    when = "Wed, 21 Oct 2015 07:28:00 GMT"  # in the past: retry at once
    response = httpx.Response(503, headers={"Retry-After": when})
    assert retry_after_seconds(response) == 0.0
    assert retry_after_seconds(httpx.Response(503, headers={"Retry-After": "12"})) == 12.0
    assert retry_after_seconds(httpx.Response(503, headers={"Retry-After": "soon"})) is None
