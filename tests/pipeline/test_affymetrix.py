"""The Affymetrix pipeline end to end on real arrays: CEL + CDF -> stored probe-set and gene values."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill.config import Settings
from genemill.pipeline.private import create_cel_experiment
from genemill.pipeline.process import process_experiment
from genemill.pipeline.survey import import_metadata
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression
from genemill.store.results import current_values

DATA = Path(__file__).resolve().parents[2] / "data"
FOCUS = DATA / "affy-hg-focus"
CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]
GSE781 = DATA / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"


def _reference(name: str) -> pd.DataFrame:
    table = pd.read_csv(FOCUS / "reference" / name, sep="\t", index_col=0)
    table.columns = [c.replace(".CEL.gz", "").replace(".CEL", "") for c in table.columns]
    return table


@pytest.fixture
def env(tmp_path):
    settings = Settings(home=tmp_path / "home")
    db = Database(settings.resolved_database_url)
    db.migrate()
    yield settings, db
    db.dispose()


def _stored(db: Database, accession: str, *, kind: str) -> pd.DataFrame:
    with db.session() as session:
        experiment = queries.get_experiment(session, accession)
        columns = {}
        for sample in experiment.samples:
            values = current_values(sample, kind=kind)
            assert values is not None
            columns[sample.title] = read_expression(values.path, samples=[sample.accession])[sample.accession]
    return pd.DataFrame(columns)


@pytest.mark.parametrize(
    ("method", "reference", "transform", "tolerance"),
    [
        ("rma", "HG-Focus_affy_rma_log2.tsv", lambda x: x, 1e-4),
        ("mas5", "HG-Focus_affy_mas5_signal.tsv", np.log2, 1e-4),
    ],
    ids=["rma", "mas5"],
)
def test_hg_focus_probe_sets_equal_bioconductor(env, method, reference, transform, tolerance) -> None:
    settings, db = env
    accession = create_cel_experiment(
        settings, db, CELS, title="HG-Focus", cdf=FOCUS / "HG-Focus.CDF.gz", organism="Homo sapiens"
    )
    report = process_experiment(settings, db, accession, method=method)
    assert len(report.processed) == 2
    stored = _stored(db, accession, kind="expression:probeset")
    expected = transform(_reference(reference))
    expected.columns = [c.split(".")[0] for c in expected.columns]
    stored.columns = [c.split(".")[0] for c in stored.columns]
    stored = stored.loc[expected.index, expected.columns]
    diff = float(np.abs(stored.to_numpy() - expected.to_numpy()).max())
    print(f"{method}: max |diff| vs affy = {diff:.2e} (log2, float32 storage)")
    assert diff <= tolerance


def test_hg_focus_maps_to_ensembl_genes_through_gpl96(env) -> None:
    settings, db = env
    import_metadata(settings, db, GSE781)  # brings the GPL96 table (HG-Focus ids are a subset)
    accession = create_cel_experiment(settings, db, CELS, title="HG-Focus", cdf=FOCUS / "HG-Focus.CDF.gz")
    report = process_experiment(settings, db, accession)
    mapping = report.details["affymetrix"]["HG-Focus"]["mapping"]
    assert mapping["annotation_table"] == "GPL96"
    assert mapping["n_input_ids"] == 8793
    assert mapping["n_control"] == 47
    assert mapping["n_unmapped"] == 121
    genes = _stored(db, accession, kind="expression")
    assert genes.index.str.startswith("ENSG").all()
    assert len(genes) > 7000
    assert np.isfinite(genes.to_numpy()).all()


def test_bad_cels_are_refused_and_the_others_processed(env, tmp_path) -> None:
    settings, db = env
    truncated = tmp_path / "truncated.CEL"
    truncated.write_bytes(CELS[0].read_bytes()[:5000])
    empty = tmp_path / "empty.CEL"
    empty.write_bytes(b"")
    unknown = tmp_path / "Test3-1-121502.CEL"
    shutil.copy(DATA / "affy-test3-formats" / "Test3-1-121502.v3-lf.CEL", unknown)
    files = [*CELS, truncated, empty, unknown]
    accession = create_cel_experiment(settings, db, files, title="mixed", cdf=FOCUS / "HG-Focus.CDF.gz")
    report = process_experiment(settings, db, accession)
    assert len(report.processed) == 2
    assert "truncated.CEL" in report.refused[f"{accession}-truncated"]
    assert "empty.CEL" in report.refused[f"{accession}-empty"]
    assert "no CDF for chip type 'Test3'" in report.refused[f"{accession}-Test3-1-121502"]
    assert len(report.refused) == 3
    with db.session() as session:
        sample = queries.get_sample(session, f"{accession}-empty")
        assert sample.processing_state.value == "UNPROCESSABLE"
