"""A missing CDF fetched by chip type in online mode, from a CDF repository served locally.

The repository serves the real CDFs of data/affy-hg-focus (as ``HG-Focus.CDF.gz``) and
data/affy-hu6800 (inside an Affymetrix-style library-file zip ``Hu6800.zip``). GEO is the same
local server, which has no platform tables (404), so values stay at the probe-set level.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixture_server import Fault, FixtureServer

from genemill.config import Settings
from genemill.pipeline.affy_cdf import cdf_dir
from genemill.pipeline.private import create_cel_experiment
from genemill.pipeline.process import process_experiment
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression
from genemill.store.results import current_values

DATA = Path(__file__).resolve().parents[2] / "data"
FOCUS = DATA / "affy-hg-focus"
FOCUS_CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]
HU_CEL = DATA / "affy-hu6800" / "T1_r1.CEL.gz"
HU_CDF = DATA / "affy-hu6800" / "Hu6800.CDF.gz"
LIBRARY = "/affymetrix/library"


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        yield running


def _settings(tmp_path: Path, server: FixtureServer, *, online: bool = True) -> Settings:
    return Settings(
        home=tmp_path / "home",
        online=online,
        cdf_base_url=server.url(LIBRARY),
        geo_base_url=server.base_url,
    )


def _serve_hu6800_zip(server: FixtureServer) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("CD_Hu6800/Full/Hu6800/LibFiles/Hu6800.CDF", gzip.decompress(HU_CDF.read_bytes()))
    server.add_bytes(f"{LIBRARY}/Hu6800.zip", buffer.getvalue())


def _experiment(settings: Settings, files: list[Path]) -> tuple[Database, str]:
    db = Database(settings.resolved_database_url)
    db.migrate()
    return db, create_cel_experiment(settings, db, files, title="online CDF", organism="Homo sapiens")


def _cdf_requests(server: FixtureServer) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in server.requests if r.path.startswith(LIBRARY)]


def test_missing_cdfs_fetched_installed_and_used(tmp_path: Path, server: FixtureServer) -> None:
    server.add_file(f"{LIBRARY}/HG-Focus.CDF.gz", FOCUS / "HG-Focus.CDF.gz")
    _serve_hu6800_zip(server)
    settings = _settings(tmp_path, server)
    db, accession = _experiment(settings, [*FOCUS_CELS, HU_CEL])
    try:
        report = process_experiment(settings, db, accession)
        assert sorted(report.processed) == sorted(
            f"{accession}-{n}" for n in ("HG-Focus-1-121502.calvin", "HG-Focus-2-121502.calvin", "T1_r1")
        )
        assert sorted(p.name for p in cdf_dir(settings).iterdir()) == ["hgfocus.CDF.gz", "hu6800.CDF"]
        assert list((settings.home / "downloads" / "cdf").iterdir()) == []  # staging cleaned up
        # one lookup per chip type, not per CEL: HG-Focus found at the second name, Hu6800 at the fifth
        assert _cdf_requests(server).count("HG-Focus.CDF.gz") == 1
        assert _cdf_requests(server).count("Hu6800.zip") == 1
        expected = pd.read_csv(FOCUS / "reference" / "HG-Focus_affy_rma_log2.tsv", sep="\t", index_col=0)
        with db.session() as session:
            sample = queries.get_sample(session, f"{accession}-HG-Focus-1-121502.calvin")
            values = current_values(sample, kind="expression:probeset")
            assert values is not None
            stored = read_expression(values.path, samples=[sample.accession])[sample.accession]
        diff = np.abs(stored.loc[expected.index].to_numpy() - expected.iloc[:, 0].to_numpy()).max()
        assert diff <= 1e-4  # the fetched CDF gives affy::rma's values
        before = len(_cdf_requests(server))
        process_experiment(settings, db, accession)
        assert len(_cdf_requests(server)) == before  # installed: no second download
    finally:
        db.dispose()


def test_cdf_missing_from_repository_refuses_its_samples_only(tmp_path: Path, server: FixtureServer) -> None:
    _serve_hu6800_zip(server)
    settings = _settings(tmp_path, server)
    db, accession = _experiment(settings, [*FOCUS_CELS, HU_CEL])
    try:
        report = process_experiment(settings, db, accession)
        assert list(report.processed) == [f"{accession}-T1_r1"]
        for name in ("HG-Focus-1-121502.calvin", "HG-Focus-2-121502.calvin"):
            reason = report.refused[f"{accession}-{name}"]
            assert f"{name}.CEL.gz: no CDF for chip type 'HG-Focus' in the CDF repository: tried " in reason
            assert server.url(f"{LIBRARY}/HG-Focus.cdf.gz") in reason
            assert server.url(f"{LIBRARY}/HG-Focus.zip") in reason
            with db.session() as session:
                assert (
                    queries.get_sample(session, f"{accession}-{name}").processing_state.value
                    == "UNPROCESSABLE"
                )
        assert [n for n in _cdf_requests(server) if n.startswith("HG-Focus")] == [
            "HG-Focus.cdf.gz",
            "HG-Focus.CDF.gz",
            "HG-Focus.cdf",
            "HG-Focus.CDF",
            "HG-Focus.zip",
        ]  # asked once for both CELs
    finally:
        db.dispose()


def test_corrupt_cdf_in_repository_refused_and_not_installed(tmp_path: Path, server: FixtureServer) -> None:
    text = gzip.decompress((FOCUS / "HG-Focus.CDF.gz").read_bytes())
    server.add_bytes(f"{LIBRARY}/HG-Focus.CDF.gz", gzip.compress(text[: len(text) // 3]))  # cut short
    settings = _settings(tmp_path, server)
    db, accession = _experiment(settings, FOCUS_CELS)
    try:
        report = process_experiment(settings, db, accession)
        assert not report.processed
        reason = report.refused[f"{accession}-HG-Focus-1-121502.calvin"]
        assert "downloaded CDF for chip type 'HG-Focus' is unreadable, not installed" in reason
        assert server.url(f"{LIBRARY}/HG-Focus.CDF.gz") in reason
        assert not cdf_dir(settings).exists() or list(cdf_dir(settings).iterdir()) == []
        assert (
            not (settings.home / "cdf-cache").exists() or list((settings.home / "cdf-cache").iterdir()) == []
        )
        assert list((settings.home / "downloads" / "cdf").iterdir()) == []
    finally:
        db.dispose()


def test_cut_transfer_resumed_verified_and_installed(tmp_path: Path, server: FixtureServer) -> None:
    server.add_file(f"{LIBRARY}/HG-Focus.CDF.gz", FOCUS / "HG-Focus.CDF.gz")
    server.add_fault(f"{LIBRARY}/HG-Focus.CDF.gz", Fault.truncate(after_bytes=50_000))
    settings = _settings(tmp_path, server)
    db, accession = _experiment(settings, FOCUS_CELS[:1])
    try:
        report = process_experiment(settings, db, accession)
        assert list(report.processed) == [f"{accession}-HG-Focus-1-121502.calvin"]
        gets = server.requests_for(f"{LIBRARY}/HG-Focus.CDF.gz")
        assert [r.range for r in gets] == [None, "bytes=50000-"]
        installed = cdf_dir(settings) / "hgfocus.CDF.gz"
        assert installed.read_bytes() == (FOCUS / "HG-Focus.CDF.gz").read_bytes()
    finally:
        db.dispose()


def test_refused_download_refuses_the_sample_and_installs_nothing(
    tmp_path: Path, server: FixtureServer
) -> None:
    _serve_hu6800_zip(server)
    server.add_fault(f"{LIBRARY}/Hu6800.zip", Fault.status(403))
    settings = _settings(tmp_path, server)
    db, accession = _experiment(settings, [HU_CEL])
    try:
        report = process_experiment(settings, db, accession)
        assert not report.processed
        reason = report.refused[f"{accession}-T1_r1"]
        assert f"GET {server.url(LIBRARY)}/Hu6800.zip: HTTP 403" in reason
        assert not cdf_dir(settings).exists() or list(cdf_dir(settings).iterdir()) == []
    finally:
        db.dispose()


def test_offline_says_how_to_add_the_cdf(tmp_path: Path, server: FixtureServer) -> None:
    server.add_file(f"{LIBRARY}/HG-Focus.CDF.gz", FOCUS / "HG-Focus.CDF.gz")
    settings = _settings(tmp_path, server, online=False)
    db, accession = _experiment(settings, FOCUS_CELS[:1])
    try:
        report = process_experiment(settings, db, accession)
        reason = report.refused[f"{accession}-HG-Focus-1-121502.calvin"]
        assert "no CDF for chip type 'HG-Focus': add one with `genemill import-cel --cdf FILE`" in reason
        assert "set GENEMILL_ONLINE=1 and GENEMILL_CDF_BASE_URL" in reason
        assert server.requests == []
    finally:
        db.dispose()
