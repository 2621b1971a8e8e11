"""Submitter-processed samples end-to-end on the real GSE781 (34 MAS5 VALUE tables, GPL96 + GPL97)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from genemill.config import Settings
from genemill.pipeline.process import process_experiment
from genemill.pipeline.submitter import NOTHING_TO_PROCESS, fallback_refusal
from genemill.pipeline.survey import import_metadata
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression
from genemill.store.results import current_values

DATA = Path(__file__).resolve().parents[2] / "data"
GSE781 = DATA / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"
EGFR = "ENSG00000146648"  # Entrez 1956; six probe sets on GPL96


def _blocks(path: Path) -> dict[str, list[str]]:
    """Independent reader for the test: entity header -> its lines (plain text scan)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    with gzip.open(path, "rt", encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("^"):
                current = blocks.setdefault(line.split("=", 1)[1].strip(), [])
            current.append(line.rstrip("\n"))
    return blocks


def _table(lines: list[str], begin: str) -> list[list[str]]:
    start = next(i for i, line in enumerate(lines) if line.startswith(begin))
    end = next(i for i, line in enumerate(lines) if line.startswith(begin.replace("begin", "end")))
    return [line.split("\t") for line in lines[start + 1 : end]]


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home)
    db = Database(settings.resolved_database_url)
    db.migrate()
    import_metadata(settings, db, GSE781)
    report = process_experiment(settings, db, "GSE781")
    yield settings, db, report
    db.dispose()


def test_every_gse781_sample_gets_a_gene_vector(processed) -> None:
    settings, db, report = processed
    assert len(report.processed) == 34
    assert report.refused == {}
    with db.session() as session:
        experiment = queries.get_experiment(session, "GSE781")
        assert experiment.num_processed_samples == 34
        for sample in experiment.samples:
            values = current_values(sample)
            assert values is not None, sample.accession
            assert values.result.mode == "submitter"
            assert values.value_type == "log2"
            column = read_expression(values.path, samples=[sample.accession])[sample.accession]
            assert np.isfinite(column.to_numpy()).sum() > 9000
            assert all(str(g).startswith("ENSG") for g in column.dropna().index[:50])


def test_named_gene_equals_mean_of_log2_submitter_probe_values(processed) -> None:
    settings, db, report = processed
    blocks = _blocks(GSE781)
    platform = _table(blocks["GPL96"], "!platform_table_begin")
    header = platform[0]
    entrez_column = header.index("ENTREZ_GENE_ID")
    egfr_probes = [row[0] for row in platform[1:] if row[entrez_column].strip() == "1956"]
    assert len(egfr_probes) == 6
    with db.session() as session:
        sample = queries.get_sample(session, "GSM11805")
        values = current_values(sample)
        assert values is not None
        stored = read_expression(values.path, samples=["GSM11805"], with_annotation=True)
    table = {row[0]: float(row[1]) for row in _table(blocks["GSM11805"], "!sample_table_begin")[1:]}
    expected = float(np.mean(np.log2([table[p] for p in egfr_probes])))
    assert stored.loc[EGFR, "GSM11805"] == pytest.approx(expected, rel=1e-6)
    assert stored.loc[EGFR, "symbol"] == "EGFR"
    assert stored.loc[EGFR, "entrez_id"] == "1956"


def test_fraction_of_probe_sets_mapped_per_platform(processed) -> None:
    _, db, report = processed
    fractions = {p: r["fraction_mapped"] for p, r in report.details["submitter"].items()}
    print("fraction of non-control probe sets mapped:", fractions)
    assert fractions["GPL96"] == pytest.approx(20018 / 22215, abs=1e-4)
    assert 0.55 < fractions["GPL97"] < 0.65
    assert report.details["submitter"]["GPL96"]["annotation_release"].startswith("org.Hs.eg.db 3.16.0")


def _mini_family(tmp_path: Path) -> Path:
    """A SOFT family built from real GSE781 lines: the real GPL96 table and three samples derived from
    GSM11805 — one unchanged, one whose ids are replaced (no overlap), one with non-numeric cells."""
    blocks = _blocks(GSE781)
    series = [line for line in blocks["GSE781"] if not line.startswith("!Series_sample_id")]
    sample_lines = blocks["GSM11805"]
    begin = next(i for i, line in enumerate(sample_lines) if line.startswith("!sample_table_begin"))
    head, rows = sample_lines[: begin + 2], sample_lines[begin + 2 : -1]

    def sample(accession: str, body: list[str]) -> list[str]:
        renamed = [line.replace("GSM11805", accession) for line in head]
        return [*renamed, *body, "!sample_table_end"]

    scrambled = [f"NOT_A_PROBE_{i}\t" + line.split("\t", 1)[1] for i, line in enumerate(rows)]
    dirty = list(rows)
    dirty[3] = dirty[3].split("\t")[0] + "\tabc\tP"
    dirty[7] = dirty[7].split("\t")[0] + "\tn/a\tP"
    text = [
        *series,
        "!Series_sample_id = GSM90001",
        "!Series_sample_id = GSM90002",
        "!Series_sample_id = GSM90003",
        *blocks["GPL96"],
        *sample("GSM90001", rows),
        *sample("GSM90002", scrambled),
        *sample("GSM90003", dirty),
    ]
    path = tmp_path / "GSE781_derived_family.soft"
    path.write_text("\n".join(text).replace("GSE781", "GSE90000") + "\n", encoding="latin-1")
    return path


def test_bad_tables_are_refused_with_reasons_and_others_processed(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    db = Database(settings.resolved_database_url)
    db.migrate()
    import_metadata(settings, db, _mini_family(tmp_path))
    report = process_experiment(settings, db, "GSE90000")
    assert sorted(report.processed) == ["GSM90001", "GSM90003"]
    assert "best identifier overlap 0.0%" in report.refused["GSM90002"]
    with db.session() as session:
        refused = queries.get_sample(session, "GSM90002")
        assert refused.processing_state.value == "UNPROCESSABLE"
        assert "below 50%" in (refused.unprocessable_reason or "")
        dirty = queries.get_sample(session, "GSM90003")
        values = current_values(dirty)
        assert values is not None
        detail = values.result.annotations["samples"]["GSM90003"]
        assert detail["n_non_numeric"] == 1
        assert detail["n_null"] == 1
        assert detail["non_numeric_examples"][0][1] == "abc"
    db.dispose()


def test_an_ids_only_platform_table_never_replaces_an_annotated_one(tmp_path) -> None:
    from genemill.pipeline.annotation import load_platform_table

    settings = Settings(home=tmp_path / "home")
    db = Database(settings.resolved_database_url)
    db.migrate()
    import_metadata(settings, db, GSE781)
    import_metadata(settings, db, GSE781.parent / "GDS507.soft.gz")  # GPL97 with ID_REF/IDENTIFIER only
    table = load_platform_table(settings, "GPL97")
    assert table is not None
    assert "ENTREZ_GENE_ID" in table.table.columns
    assert len(table.table) == 22645
    db.dispose()


def test_one_rule_words_a_refusal_after_the_submitter_fallback() -> None:
    raw = "CEL file GSM1.CEL is truncated"
    assert fallback_refusal(raw, "submitter table has no platform") == (
        "CEL file GSM1.CEL is truncated; and submitter table has no platform"
    )
    assert fallback_refusal(raw, None) == "CEL file GSM1.CEL is truncated; and no submitter-processed table"
    assert fallback_refusal(None, "no submitter-processed data table") == "no submitter-processed data table"
    assert fallback_refusal(None, None) == NOTHING_TO_PROCESS
