"""CDFs fetched by chip type from a CDF repository served locally (real CDF files, real names).

The served files are the real Affymetrix CDFs of data/affy-hg-focus and data/affy-hu6800, laid out
as Affymetrix names library files (``<chip type>.CDF.gz``, ``<chip type>.CDF``, and a library-file
zip holding ``<chip type>.CDF`` in a folder).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from fixture_server import Fault, FixtureServer

from genemill.config import Settings
from genemill.errors import ChecksumError, InputError, NotFoundError
from genemill.sources.affy_library import cdf_urls, fetch_cdf
from genemill.sources.http import RetryPolicy, make_client

DATA = Path(__file__).parents[2] / "data"
FOCUS_CDF = DATA / "affy-hg-focus" / "HG-Focus.CDF.gz"
HU6800_CDF = DATA / "affy-hu6800" / "Hu6800.CDF.gz"
BASE = "/affymetrix/library"


def _settings(tmp_path: Path, server: FixtureServer) -> Settings:
    return Settings(home=tmp_path / "home", cdf_base_url=server.url(BASE))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _library_zip(chip: str, cdf_text: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(f"{chip}_libraryfile/CD_{chip}/Full/{chip}/LibFiles/{chip}.CDF", cdf_text)
        bundle.writestr(f"{chip}_libraryfile/CD_{chip}/Full/{chip}/LibFiles/{chip}.PSI", b"")
    return buffer.getvalue()


def test_urls_follow_affymetrix_names() -> None:
    assert cdf_urls("https://cdf.example/lib/", "HG-U133_Plus_2") == [
        "https://cdf.example/lib/HG-U133_Plus_2.cdf.gz",
        "https://cdf.example/lib/HG-U133_Plus_2.CDF.gz",
        "https://cdf.example/lib/HG-U133_Plus_2.cdf",
        "https://cdf.example/lib/HG-U133_Plus_2.CDF",
        "https://cdf.example/lib/HG-U133_Plus_2.zip",
    ]


def test_gz_cdf_found_under_its_upper_case_name(tmp_path: Path, fixture_server: FixtureServer) -> None:
    fixture_server.add_file(f"{BASE}/HG-Focus.CDF.gz", FOCUS_CDF)
    settings = _settings(tmp_path, fixture_server)
    with make_client(settings) as client:
        fetched = fetch_cdf(settings, client, "HG-Focus", dest_dir=tmp_path / "staging")
    assert fetched.path.read_bytes() == FOCUS_CDF.read_bytes()
    assert fetched.sha256 == _sha256(FOCUS_CDF.read_bytes())
    assert fetched.url.endswith("/HG-Focus.CDF.gz")
    statuses = [(r.path.rsplit("/", 1)[1], r.status) for r in fixture_server.requests]
    assert statuses == [("MD5SUMS", 404), ("HG-Focus.cdf.gz", 404), ("HG-Focus.CDF.gz", 200)]


def test_library_zip_member_extracted(tmp_path: Path, fixture_server: FixtureServer) -> None:
    text = gzip.decompress(HU6800_CDF.read_bytes())
    fixture_server.add_bytes(f"{BASE}/Hu6800.zip", _library_zip("Hu6800", text))
    settings = _settings(tmp_path, fixture_server)
    with make_client(settings) as client:
        fetched = fetch_cdf(settings, client, "Hu6800", dest_dir=tmp_path / "staging")
    assert fetched.path.name == "Hu6800.CDF"
    assert fetched.path.read_bytes() == text
    assert sorted(p.name for p in (tmp_path / "staging").iterdir()) == ["Hu6800.CDF", "Hu6800.zip"]


def test_zip_without_the_cdf_is_refused(tmp_path: Path, fixture_server: FixtureServer) -> None:
    fixture_server.add_bytes(f"{BASE}/Hu6800.zip", _library_zip("HG-Focus", b"[CDF]\r\n"))
    settings = _settings(tmp_path, fixture_server)
    with (
        make_client(settings) as client,
        pytest.raises(InputError, match=r"Hu6800\.zip: no Hu6800\.CDF inside"),
    ):
        fetch_cdf(settings, client, "Hu6800", dest_dir=tmp_path / "staging")


def test_all_names_missing_lists_the_urls_tried(tmp_path: Path, fixture_server: FixtureServer) -> None:
    settings = _settings(tmp_path, fixture_server)
    with make_client(settings) as client, pytest.raises(NotFoundError) as caught:
        fetch_cdf(settings, client, "HG-U133_Plus_2", dest_dir=tmp_path / "staging")
    message = str(caught.value)
    assert "no CDF for chip type 'HG-U133_Plus_2' in the CDF repository" in message
    for url in cdf_urls(fixture_server.url(BASE), "HG-U133_Plus_2"):
        assert url in message


def test_md5sums_mismatch_refused_and_nothing_kept(tmp_path: Path, fixture_server: FixtureServer) -> None:
    real = FOCUS_CDF.read_bytes()
    fixture_server.add_bytes(f"{BASE}/MD5SUMS", b"cb0b594759f114ac8bdc8e8721426da0  ./HG-Focus.CDF.gz\n")
    fixture_server.add_bytes(f"{BASE}/HG-Focus.CDF.gz", real[: len(real) // 2])  # a damaged copy
    settings = _settings(tmp_path, fixture_server)
    with make_client(settings) as client, pytest.raises(ChecksumError, match="md5 expected cb0b5947"):
        fetch_cdf(settings, client, "HG-Focus", dest_dir=tmp_path / "staging")
    assert list((tmp_path / "staging").iterdir()) == []


def test_md5sums_match_accepted(tmp_path: Path, fixture_server: FixtureServer) -> None:
    # The MD5SUMS line is the real one shipped in data/affy-hg-focus/MD5SUMS.
    fixture_server.add_file(f"{BASE}/MD5SUMS", DATA / "affy-hg-focus" / "MD5SUMS")
    fixture_server.add_file(f"{BASE}/HG-Focus.CDF.gz", FOCUS_CDF)
    settings = _settings(tmp_path, fixture_server)
    with make_client(settings) as client:
        fetched = fetch_cdf(settings, client, "HG-Focus", dest_dir=tmp_path / "staging")
    assert fetched.path.read_bytes() == FOCUS_CDF.read_bytes()


def test_cut_transfer_resumed(tmp_path: Path, fixture_server: FixtureServer) -> None:
    fixture_server.add_file(f"{BASE}/HG-Focus.cdf.gz", FOCUS_CDF)
    fixture_server.add_fault(f"{BASE}/HG-Focus.cdf.gz", Fault.truncate(after_bytes=100_000))
    settings = _settings(tmp_path, fixture_server)
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    with make_client(settings) as client:
        fetched = fetch_cdf(settings, client, "HG-Focus", dest_dir=tmp_path / "staging", policy=policy)
    assert fetched.sha256 == _sha256(FOCUS_CDF.read_bytes())
    ranges = [r.range for r in fixture_server.requests_for(f"{BASE}/HG-Focus.cdf.gz")]
    assert ranges[0] is None
    assert ranges[1] is not None
    assert ranges[1].startswith("bytes=")


def test_no_repository_configured(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with make_client(settings) as client, pytest.raises(NotFoundError, match="GENEMILL_CDF_BASE_URL"):
        fetch_cdf(settings, client, "HG-Focus", dest_dir=tmp_path / "staging")
