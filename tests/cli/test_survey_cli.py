"""`genemill import | show | list | jobs` on the real GSE781 family SOFT (34 samples, GPL96 + GPL97)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genemill.cli import _register, app

GSE781 = (
    Path(__file__).resolve().parents[2] / "data" / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"
)

_register()


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("GENEMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENEMILL_DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_help_on_every_command(run) -> None:
    for command in ([], ["import"], ["add"], ["list"], ["show"], ["jobs"], ["db"], ["db", "init"]):
        result = run(*command, "--help")
        assert result.exit_code == 0, command
        assert "Usage" in result.output


def test_add_help_names_every_archive_it_surveys(run) -> None:
    output = " ".join(run("add", "--help").output.replace("│", " ").split())  # unwrap the help box
    for prefix in ("GSE", "E-", "SRP", "ERP", "DRP", "PRJNA", "PRJEB", "PRJDB"):
        assert f"{prefix}…" in output, prefix


def test_import_and_show_gse781(run) -> None:
    result = run("import", str(GSE781))
    assert result.exit_code == 0, result.output
    shown = run("show", "GSE781")
    assert shown.exit_code == 0
    text = shown.output
    for label, value in [
        ("Accession", "GSE781"),
        ("Title", "Normal and Renal Cell Carcinoma Kidney Tissue, Human"),
        ("Organism", "Homo sapiens"),
        ("Downloadable Samples", "0"),
        ("Technology", "MICROARRAY"),
        ("Platform", "Affymetrix Human Genome U133A Array (hgu133a)"),
        ("Submitter Supplied Information", "Each total RNA sample is hybridized"),
        ("PubMed ID", "14641932"),
        ("Total Samples", "34"),
        ("Alternate Accession IDs", "E-GEOD-781"),
    ]:
        assert f"{label}: {value}" in text, label
    assert "GSM11805" in text
    assert "Sex" in text and "Age" in text


def test_show_json_uses_anchor_field_names(run) -> None:
    run("import", str(GSE781))
    data = json.loads(run("show", "GSE781", "--json").output)
    for key in (
        "accession_code",
        "title",
        "description",
        "pubmed_id",
        "organism_names",
        "platform_accession_codes",
        "num_total_samples",
        "num_processed_samples",
        "num_downloadable_samples",
        "samples",
    ):
        assert key in data
    assert data["num_total_samples"] == 34
    assert data["platform_accession_codes"] == ["GPL96", "GPL97"]
    assert len(data["samples"]) == 34
    gsm = {s["accession_code"]: s for s in data["samples"]}["GSM11805"]
    assert gsm["platform_accession_code"] == "GPL96"
    assert gsm["sex"] == "female" and gsm["age"] == 70.0
    assert gsm["harmonized_sources"]["age"]["sources"] == ["Age"]


def test_reimport_is_idempotent(run) -> None:
    assert run("import", str(GSE781)).exit_code == 0
    assert run("import", str(GSE781)).exit_code == 0
    listed = run("list").output
    assert "1 experiment(s)" in listed
    jobs = run("jobs").output
    assert jobs.count("SUCCEEDED") == 1


def test_truncated_gzip_fails_cleanly_and_keeps_earlier_experiments(run, tmp_path) -> None:
    assert run("import", str(GSE781)).exit_code == 0
    data = GSE781.read_bytes()
    broken = tmp_path / "GSE999_family.soft.gz"
    broken.write_bytes(data[: len(data) // 2])
    result = run("import", str(broken))
    assert result.exit_code == 2
    assert "GSE999_family.soft.gz" in result.output
    assert "failed" in result.output
    listed = run("list").output
    assert "GSE781" in listed and "1 experiment(s)" in listed
    assert "FAILED" in run("jobs", "--state", "failed").output


def test_unknown_format_and_missing_experiment(run, tmp_path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_bytes(gzip.compress(b"hello world\n"))
    result = run("import", str(junk))
    assert result.exit_code == 2
    assert "unrecognized metadata format" in result.output
    missing = CliRunner().invoke(app, ["show", "GSE424242"])
    assert missing.exit_code != 0


def test_import_arrayexpress_idf_with_quoted_keys(run) -> None:
    idf = Path(__file__).resolve().parents[2] / "data" / "magetab-caarray" / "e-mexp-428_v1.0.idf"
    result = run("import", str(idf))
    assert result.exit_code == 0, result.output
    assert "E-MEXP-428" in run("list").output
