"""ArrayExpress / BioStudies: URL layout, study info, and the real E-MEXP-428 IDF/SDRF served locally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixture_server import Fault, FixtureServer

from genemill.errors import AccessionError, InputError, NotFoundError, SourceError
from genemill.sources import arrayexpress

DATA = Path(__file__).parents[2] / "data"
CAARRAY = DATA / "magetab-caarray"  # real E-MEXP-428 MAGE-TAB (caArray load-test copy)
INFO = json.loads(
    (Path(__file__).parents[1] / "data" / "sources" / "biostudies_info_E-MEXP-428.json").read_text()
)
BASE = "https://www.ebi.ac.uk/biostudies"
FIRE = "/biostudies/fire/E-MEXP-/428/E-MEXP-428/Files"


@pytest.fixture
def ae_server(fixture_server: FixtureServer) -> FixtureServer:
    """BioStudies as observed: /files/<acc>/<name> redirects to the study folder on ftp.ebi.ac.uk."""
    fixture_server.add_bytes("/biostudies/api/v1/studies/E-MEXP-428/info", json.dumps(INFO))
    for suffix, local in (("idf.txt", "e-mexp-428_v1.0.idf"), ("sdrf.txt", "e-mexp-428_v1.0.sdrf")):
        name = f"E-MEXP-428.{suffix}"
        fixture_server.add_redirect(
            f"/biostudies/files/E-MEXP-428/{name}", f"https://ftp.ebi.ac.uk{FIRE}/{name}"
        )
        fixture_server.add_file(f"{FIRE}/{name}", CAARRAY / local)
    fixture_server.add_file(f"{FIRE}/e-mexp-428data_v1.0.data", CAARRAY / "e-mexp-428data_v1.0.data")
    return fixture_server


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (arrayexpress.idf_url, f"{BASE}/files/E-MEXP-428/E-MEXP-428.idf.txt"),
        (arrayexpress.sdrf_url, f"{BASE}/files/E-MEXP-428/E-MEXP-428.sdrf.txt"),
        (arrayexpress.info_url, f"{BASE}/api/v1/studies/E-MEXP-428/info"),
    ],
    ids=["idf", "sdrf", "info"],
)
def test_url_layout(build, expected):
    assert build(BASE + "/", "e-mexp-428") == expected


def test_non_experiment_accessions_are_rejected():
    with pytest.raises(AccessionError, match=r"'GSE781' is not an ArrayExpress experiment accession"):
        arrayexpress.idf_url(BASE, "GSE781")
    with pytest.raises(AccessionError, match=r"'A-AFFY-44' is not an ArrayExpress experiment"):
        arrayexpress.info_url(BASE, "A-AFFY-44")


def test_parse_study_info():
    info = arrayexpress.parse_study_info("E-MEXP-428", INFO)
    assert info.http_link == "https://ftp.ebi.ac.uk/biostudies/fire/E-MEXP-/428/E-MEXP-428"
    assert info.ftp_link.startswith("ftp://ftp.ebi.ac.uk/biostudies/fire/")
    assert (info.rel_path, info.is_public, info.released_ms) == (
        "E-MEXP-/428/E-MEXP-428",
        True,
        1112313600000,
    )
    assert arrayexpress.file_url(info, "a b.zip") == info.http_link + "/Files/a%20b.zip"


def test_study_info_errors():
    with pytest.raises(
        NotFoundError, match=r"E-MEXP-9 does not exist at BioStudies/ArrayExpress \(empty study info\)"
    ):
        arrayexpress.parse_study_info("E-MEXP-9", {})
    with pytest.raises(SourceError, match=r"E-MEXP-9: study info has no usable 'httpLink' \(found None\)"):
        arrayexpress.parse_study_info("E-MEXP-9", {"files": 1})


def test_fetch_idf_and_sdrf_follow_the_redirect(ae_server, client, source_settings, fast_policy, tmp_path):
    idf = arrayexpress.fetch_idf(client, source_settings, "E-MEXP-428", dest_dir=tmp_path, policy=fast_policy)
    sdrf = arrayexpress.fetch_sdrf(
        client, source_settings, "E-MEXP-428", dest_dir=tmp_path, policy=fast_policy
    )
    assert idf == tmp_path / "E-MEXP-428.idf.txt"
    assert idf.read_bytes() == (CAARRAY / "e-mexp-428_v1.0.idf").read_bytes()
    assert sdrf.read_bytes() == (CAARRAY / "e-mexp-428_v1.0.sdrf").read_bytes()
    hops = [(r.host, r.path, r.status) for r in ae_server.requests[:2]]
    assert hops == [
        ("www.ebi.ac.uk", "/biostudies/files/E-MEXP-428/E-MEXP-428.idf.txt", 302),
        ("ftp.ebi.ac.uk", f"{FIRE}/E-MEXP-428.idf.txt", 200),
    ]


def test_study_info_then_direct_file_download(ae_server, client, source_settings, fast_policy, tmp_path):
    ae_server.add_fault("/biostudies/api/v1/studies/E-MEXP-428/info", Fault.status(503))
    info = arrayexpress.fetch_study_info(client, source_settings, "E-MEXP-428", policy=fast_policy)
    data = CAARRAY / "e-mexp-428data_v1.0.data"
    fetched = arrayexpress.fetch_study_file(
        client,
        info,
        "e-mexp-428data_v1.0.data",
        dest_dir=tmp_path,
        expected_size=data.stat().st_size,
        policy=fast_policy,
    )
    assert fetched.path.read_bytes() == data.read_bytes()
    assert ae_server.requests[-1].host == "ftp.ebi.ac.uk"


def test_missing_experiment_is_not_found(fixture_server, client, source_settings, fast_policy, tmp_path):
    with pytest.raises(
        NotFoundError,
        match=r"E-MEXP-999: E-MEXP-999.idf.txt does not exist at BioStudies/ArrayExpress \(404 for https://www.ebi.ac.uk/biostudies/files/E-MEXP-999/E-MEXP-999.idf.txt\)",
    ):
        arrayexpress.fetch_idf(client, source_settings, "E-MEXP-999", dest_dir=tmp_path, policy=fast_policy)
    with pytest.raises(
        NotFoundError, match=r"E-MEXP-999 does not exist at BioStudies/ArrayExpress \(404 for"
    ):
        arrayexpress.fetch_study_info(client, source_settings, "E-MEXP-999", policy=fast_policy)


def test_empty_info_object_is_not_found(fixture_server, client, source_settings, fast_policy):
    fixture_server.add_bytes("/biostudies/api/v1/studies/E-MEXP-1/info", "{}")
    with pytest.raises(NotFoundError, match=r"E-MEXP-1 does not exist"):
        arrayexpress.fetch_study_info(client, source_settings, "E-MEXP-1", policy=fast_policy)


def test_study_file_name_must_not_be_a_path(tmp_path, client, fast_policy):
    info = arrayexpress.parse_study_info("E-MEXP-428", INFO)
    with pytest.raises(InputError, match=r"file name '../x' must be a plain name"):
        arrayexpress.fetch_study_file(client, info, "../x", dest_dir=tmp_path, policy=fast_policy)
