"""Online processing of a GEO series: CELs fetched by GEO's sample layout, header chip type wins,
and arrays that cannot be fetched or processed fall back to the submitter's table.

The series is GSE781's real SOFT trimmed to two samples. Real HG-Focus scans (data/affy-hg-focus)
stand in for GSM11805's CEL, so the served CEL's header says HG-Focus while GEO labels the sample
GPL96: the pipeline must follow the header. GSM11810's CEL is not served (404).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from fixture_server import FixtureServer

from genemill.config import Settings
from genemill.pipeline.affymetrix import install_cdf
from genemill.pipeline.process import process_experiment, process_experiments
from genemill.pipeline.survey import import_metadata
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.results import current_values

DATA = Path(__file__).resolve().parents[2] / "data"
GSE781 = DATA / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"
FOCUS = DATA / "affy-hg-focus"
KEEP = {"GSM11805", "GSM11810"}


def _two_sample_family(tmp_path: Path) -> Path:
    lines, keep = [], True
    with gzip.open(GSE781, "rt", encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("^SAMPLE"):
                keep = line.split("=", 1)[1].strip() in KEEP
            elif line.startswith("^"):
                keep = True
            if line.startswith("!Series_sample_id") and line.split("=", 1)[1].strip() not in KEEP:
                continue
            if keep:
                lines.append(line)
    path = tmp_path / "GSE781_two_samples.soft"
    path.write_text("".join(lines), encoding="latin-1")
    return path


def _online_gse781(tmp_path: Path, server: FixtureServer) -> tuple[Settings, Database]:
    """The two-sample GSE781 imported, online, with only GSM11805's CEL served."""
    server.add_file(
        "/geo/samples/GSM11nnn/GSM11805/suppl/GSM11805.CEL.gz", FOCUS / "HG-Focus-1-121502.calvin.CEL.gz"
    )
    settings = Settings(
        home=tmp_path / "home", online=True, geo_base_url=server.base_url, retry_backoff_seconds=0.01
    )
    db = Database(settings.resolved_database_url)
    db.migrate()
    import_metadata(settings, db, _two_sample_family(tmp_path))
    return settings, db


def test_cels_are_downloaded_and_unfetchable_ones_fall_back(tmp_path) -> None:
    with FixtureServer() as server:
        settings, db = _online_gse781(tmp_path, server)
        install_cdf(settings, FOCUS / "HG-Focus.CDF.gz")
        report = process_experiment(settings, db, "GSE781", method="mas5")
    assert report.details["downloads"]["fetched"] == ["GSM11805"]
    assert "GSM11810.CEL.gz" in report.details["downloads"]["failed"]["GSM11810"]
    assert report.processed == {"GSM11805": "affymetrix-mas5", "GSM11810": "submitter"}
    with db.session() as session:
        raw = queries.get_sample(session, "GSM11805")
        values = current_values(raw)
        assert values is not None and values.result.parameters["chip_type"] == "HG-Focus"
        assert raw.platform is not None and raw.platform.accession == "hgfocus"  # the header wins
        assert raw.original_files[0].is_downloaded and raw.original_files[0].sha256
        fallback = queries.get_sample(session, "GSM11810")
        assert current_values(fallback).result.mode == "submitter"  # type: ignore[union-attr]
        assert "404" in fallback.qc["raw_download_error"]
    db.dispose()


def test_a_per_sample_job_keeps_why_the_array_gave_way_to_the_submitter_table(tmp_path) -> None:
    """MAS5 runs one job per sample: an array without its CDF (none installed, none to fetch)
    is processed from the submitter's table, and the sample keeps the Affymetrix refusal."""
    with FixtureServer() as server:
        settings, db = _online_gse781(tmp_path, server)
        run = process_experiments(settings, db, ["GSE781"], method="mas5")
    assert run.samples["GSE781"].processed == ["GSM11805", "GSM11810"]
    with db.session() as session:
        sample = queries.get_sample(session, "GSM11805")
        assert current_values(sample).result.mode == "submitter"  # type: ignore[union-attr]
        note = sample.qc["submitter_fallback"]
        assert note["raw_pipeline"] == "affymetrix-mas5"
        assert "HG-Focus" in note["reason"] and "CDF" in note["reason"]
    db.dispose()
