"""GEO URL layout, directory listings and fetchers, served from real files at GEO's real paths."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
from fixture_server import Fault, FixtureServer, autoindex_html

from genemill.config import Settings
from genemill.errors import AccessionError, DownloadError, NotFoundError
from genemill.sources import geo
from genemill.sources.http import make_client

DATA = Path(__file__).parents[2] / "data"
GEOQUERY = DATA / "geo-soft" / "geoquery-extdata"
NCBI = "https://ftp.ncbi.nlm.nih.gov"

# The page NCBI serves for a directory without an index (quoted from a capture of the live server).
FORBIDDEN_PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en" xml:lang="en">
<head>
<title>Access forbidden!</title>
<link rev="made" href="mailto:webadmin@ncbi.nlm.nih.gov" />
</head>
<body>
<h1>Access forbidden!</h1>
<p>You don't have permission to access the requested directory.
There is either no index document or the directory is read-protected.</p>
<h2>Error 403</h2>
<address><a href="/">ftp.ncbi.nlm.nih.gov</a><br /><span>Apache</span></address>
</body>
</html>
"""


@pytest.mark.parametrize(
    ("build", "accession", "expected"),
    [
        (geo.series_soft_url, "GSE37302", "/geo/series/GSE37nnn/GSE37302/soft/GSE37302_family.soft.gz"),
        (geo.series_soft_url, "gse781", "/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz"),
        (
            geo.series_matrix_url,
            "GSE37302",
            "/geo/series/GSE37nnn/GSE37302/matrix/GSE37302_series_matrix.txt.gz",
        ),
        (geo.series_miniml_url, "GSE37302", "/geo/series/GSE37nnn/GSE37302/miniml/GSE37302_family.xml.tgz"),
        (geo.series_suppl_url, "GSE37302", "/geo/series/GSE37nnn/GSE37302/suppl/"),
        (geo.series_raw_tar_url, "GSE37302", "/geo/series/GSE37nnn/GSE37302/suppl/GSE37302_RAW.tar"),
        (geo.sample_suppl_url, "GSM1234", "/geo/samples/GSM1nnn/GSM1234/suppl/"),
        (geo.platform_soft_url, "GPL96", "/geo/platforms/GPLnnn/GPL96/soft/GPL96_family.soft.gz"),
        (geo.platform_annot_url, "GPL96", "/geo/platforms/GPLnnn/GPL96/annot/GPL96.annot.gz"),
        (geo.platform_annot_url, "GPL10558", "/geo/platforms/GPL10nnn/GPL10558/annot/GPL10558.annot.gz"),
    ],
    ids=[
        "soft",
        "soft-3-digit",
        "matrix",
        "miniml",
        "suppl",
        "raw-tar",
        "sample-suppl",
        "gpl-soft",
        "annot",
        "annot-5-digit",
    ],
)
def test_url_layout(build, accession, expected):
    assert build(NCBI + "/", accession) == NCBI + expected


def test_per_platform_series_matrix_url():
    url = geo.series_matrix_url(NCBI, "GSE781", platform="GPL97")
    assert url == NCBI + "/geo/series/GSEnnn/GSE781/matrix/GSE781-GPL97_series_matrix.txt.gz"


@pytest.mark.parametrize(
    ("build", "accession", "message"),
    [
        (geo.series_soft_url, "GSM1234", r"'GSM1234' is not a GEO series accession: expected GSE<digits>"),
        (geo.platform_soft_url, "GSE1", r"'GSE1' is not a GEO platform accession: expected GPL<digits>"),
        (geo.sample_suppl_url, "E-MEXP-428", r"not a GEO sample accession: expected GSM<digits>"),
        (geo.series_soft_url, "GSE12x", r"not a known accession"),
    ],
    ids=["sample-as-series", "series-as-platform", "arrayexpress-as-sample", "malformed"],
)
def test_wrong_accession_kind_is_rejected(build, accession, message):
    with pytest.raises(AccessionError, match=message):
        build(NCBI, accession)


def test_fetch_series_soft_of_real_gse781(fixture_server, client, source_settings, fast_policy, tmp_path):
    soft = GEOQUERY / "GSE781_family.soft.gz"
    fixture_server.add_file("/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz", soft)
    fixture_server.add_fault("/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz", Fault.status(503))
    path = geo.fetch_series_soft(client, source_settings, "GSE781", dest_dir=tmp_path, policy=fast_policy)
    assert path == tmp_path / "GSE781_family.soft.gz"
    assert path.read_bytes() == soft.read_bytes()
    with gzip.open(path, "rt", encoding="latin-1") as fh:
        assert "^SERIES = GSE781\n" in [fh.readline() for _ in range(10)]
    assert [(r.host, r.status) for r in fixture_server.requests] == [
        ("ftp.ncbi.nlm.nih.gov", 503),
        ("ftp.ncbi.nlm.nih.gov", 200),
    ]


def test_geo_base_url_from_settings(fixture_server, fast_policy, tmp_path):
    soft = GEOQUERY / "GSE781_family.soft.gz"
    fixture_server.add_file("/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz", soft)
    settings = Settings(home=tmp_path / "home", geo_base_url=fixture_server.base_url + "/")
    with make_client(settings) as plain:
        path = geo.fetch_series_soft(plain, settings, "GSE781", dest_dir=tmp_path / "out", policy=fast_policy)
    assert path.stat().st_size == soft.stat().st_size


def test_missing_series_is_not_found_naming_the_accession(
    fixture_server, client, source_settings, fast_policy, tmp_path
):
    url = NCBI + "/geo/series/GSE999999nnn/GSE999999999/soft/GSE999999999_family.soft.gz"
    with pytest.raises(NotFoundError) as caught:
        geo.fetch_series_soft(client, source_settings, "GSE999999999", dest_dir=tmp_path, policy=fast_policy)
    assert str(caught.value) == f"GSE999999999 does not exist at GEO (404 for {url})"
    assert len(fixture_server.requests) == 1  # a 404 is not retried
    assert list(tmp_path.iterdir()) == []


def test_server_errors_stay_download_errors(fixture_server, client, source_settings, fast_policy, tmp_path):
    path = "/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz"
    fixture_server.add_fault(path, Fault.status(502, times=9))
    with pytest.raises(DownloadError) as caught:
        geo.fetch_series_soft(client, source_settings, "GSE781", dest_dir=tmp_path, policy=fast_policy)
    assert caught.value.status == 502


def test_fetch_platform_annot_of_real_gpl97(fixture_server, client, source_settings, fast_policy, tmp_path):
    annot = GEOQUERY / "GPL97.annot.gz"
    fixture_server.add_file("/geo/platforms/GPLnnn/GPL97/annot/GPL97.annot.gz", annot)
    path = geo.fetch_platform_annot(client, source_settings, "GPL97", dest_dir=tmp_path, policy=fast_policy)
    assert path.read_bytes() == annot.read_bytes()


# -- listings --------------------------------------------------------------------------------------
def test_parse_listing_keeps_only_file_names():
    page = autoindex_html(
        "/geo/series/GSE37nnn/GSE37302/suppl", ["GSE37302_RAW.tar", "filelist.txt", "a b.txt"]
    )
    assert geo.parse_listing(page) == ["GSE37302_RAW.tar", "filelist.txt", "a b.txt"]


def test_parse_listing_drops_navigation_and_unsafe_links():
    page = """<pre><a href="?C=N;O=D">Name</a><a href="/geo/series/GSE1nnn/GSE1000/">Parent Directory</a>
    <a href="../">Up</a><a href="soft/">soft/</a><a href="#top">top</a>
    <a href="https://evil.example.com/x.gz">x</a><a href="//evil.example.com/y.gz">y</a>
    <a href="mailto:webadmin@ncbi.nlm.nih.gov">mail</a><a href="%2e%2e%2fescape.txt">esc</a>
    <A HREF='GSE1000_counts.txt.gz'>x</A><a href="GSE1000_counts.txt.gz">again</a>
    <a href="p&amp;q.tsv">amp</a></pre>"""
    assert geo.parse_listing(page) == ["GSE1000_counts.txt.gz", "p&q.tsv"]


def test_forbidden_page_lists_nothing():
    assert geo.parse_listing(FORBIDDEN_PAGE) == []


def test_list_series_supplementary(fixture_server, client, source_settings, fast_policy):
    folder = "/geo/series/GSEnnn/GSE781/suppl/"
    fixture_server.add_bytes(folder, autoindex_html(folder, ["GSE781_RAW.tar", "filelist.txt"]))
    fixture_server.add_fault(folder, Fault.reset())
    names = geo.list_series_supplementary(client, source_settings, "GSE781", policy=fast_policy)
    assert names == ["GSE781_RAW.tar", "filelist.txt"]


def test_folder_without_index_is_empty(fixture_server, client, source_settings, fast_policy):
    folder = "/geo/samples/GSM11nnn/GSM11805/suppl/"
    fixture_server.add_bytes(folder, FORBIDDEN_PAGE, status=403, content_type="text/html")
    assert geo.list_sample_supplementary(client, source_settings, "GSM11805", policy=fast_policy) == []


def test_missing_folder_is_not_found(fixture_server, client, source_settings, fast_policy):
    with pytest.raises(NotFoundError, match=r"^GSE1 does not exist at GEO \(404 for https://ftp\.ncbi"):
        geo.list_series_supplementary(client, source_settings, "GSE1", policy=fast_policy)


def test_fetch_series_matrices_gets_one_file_per_platform(
    fixture_server, client, source_settings, fast_policy, tmp_path
):
    folder = "/geo/series/GSEnnn/GSE781/matrix/"
    names = ["GSE781-GPL96_series_matrix.txt.gz", "GSE781-GPL97_series_matrix.txt.gz"]
    fixture_server.add_bytes(folder, autoindex_html(folder, names))
    for name in names:  # generated stand-ins: the real matrices are not in data/
        fixture_server.add_bytes(folder + name, gzip.compress(f"!Series_title\t{name}\n".encode()))
    paths = geo.fetch_series_matrices(
        client, source_settings, "GSE781", dest_dir=tmp_path, policy=fast_policy
    )
    assert [p.name for p in paths] == names
    assert gzip.decompress(paths[1].read_bytes()).startswith(b"!Series_title\tGSE781-GPL97")


def test_series_without_matrix_files_is_not_found(
    fixture_server, client, source_settings, fast_policy, tmp_path
):
    folder = "/geo/series/GSEnnn/GSE781/matrix/"
    fixture_server.add_bytes(folder, autoindex_html(folder, ["README.txt"]))
    with pytest.raises(NotFoundError, match=r"GSE781 has no series matrix at GEO"):
        geo.fetch_series_matrices(client, source_settings, "GSE781", dest_dir=tmp_path, policy=fast_policy)


def test_fetch_supplementary_and_raw_tar(fixture_server, client, source_settings, fast_policy, tmp_path):
    sample = GEOQUERY / "GSM11805.txt.gz"  # real file; the tar around it is generated here
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(sample, arcname=sample.name)
    folder = "/geo/series/GSEnnn/GSE781/suppl/"
    fixture_server.add_bytes(folder + "GSE781_RAW.tar", buffer.getvalue())
    fixture_server.add_file(folder + "filelist.txt", sample)
    raw = geo.fetch_series_raw_tar(client, source_settings, "GSE781", dest_dir=tmp_path, policy=fast_policy)
    with tarfile.open(raw) as tar:
        assert tar.getnames() == ["GSM11805.txt.gz"]
    other = geo.fetch_series_supplementary(
        client, source_settings, "GSE781", name="filelist.txt", dest_dir=tmp_path, policy=fast_policy
    )
    assert other.read_bytes() == sample.read_bytes()


def test_fetch_sample_supplementary(
    fixture_server: FixtureServer, client, source_settings, fast_policy, tmp_path
):
    sample = GEOQUERY / "GSM11805.txt.gz"
    fixture_server.add_file("/geo/samples/GSM11nnn/GSM11805/suppl/GSM11805 copy.txt.gz", sample)
    path = geo.fetch_sample_supplementary(
        client,
        source_settings,
        "GSM11805",
        name="GSM11805 copy.txt.gz",
        dest_dir=tmp_path,
        policy=fast_policy,
    )
    assert path.name == "GSM11805 copy.txt.gz" and path.read_bytes() == sample.read_bytes()
    assert fixture_server.requests[0].path == "/geo/samples/GSM11nnn/GSM11805/suppl/GSM11805 copy.txt.gz"
