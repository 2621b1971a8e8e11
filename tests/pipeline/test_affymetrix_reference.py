"""Per-platform RMA references in the pipeline, on the real HG-Focus pair and the real Hu6800 array.

An experiment is processed with experiment-wide RMA, a reference is built from its processed
arrays, then a new experiment holding one of those arrays is processed with ``rma-reference``: the
stored values equal the experiment-wide ones (both stored as float32; measured max |diff| 0).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from genemill import affy
from genemill.config import Settings
from genemill.errors import NotFoundError
from genemill.pipeline.affy_reference import build_platform_reference, current_reference, reference_dir
from genemill.pipeline.private import create_cel_experiment
from genemill.pipeline.process import process_experiment
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression
from genemill.store.results import current_values

DATA = Path(__file__).resolve().parents[2] / "data"
FOCUS = DATA / "affy-hg-focus"
HU6800 = DATA / "affy-hu6800"
CASES = {
    "hg-focus": (
        "HG-Focus",
        FOCUS / "HG-Focus.CDF.gz",
        [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"],
    ),
    "hu6800": ("Hu6800", HU6800 / "Hu6800.CDF.gz", [HU6800 / "T1_r1.CEL.gz"]),
}


@pytest.fixture
def env(tmp_path: Path):
    settings = Settings(home=tmp_path / "home")
    db = Database(settings.resolved_database_url)
    db.migrate()
    yield settings, db
    db.dispose()


def _stored(db: Database, sample_accession: str) -> tuple[np.ndarray, str, dict]:
    with db.session() as session:
        sample = queries.get_sample(session, sample_accession)
        values = current_values(sample, kind="expression:probeset")
        assert values is not None
        table = read_expression(values.path, samples=[sample_accession])
        return table[sample_accession].sort_index().to_numpy(), values.result.mode, values.result.parameters


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_array_against_reference_equals_experiment_rma(env, tmp_path: Path, case: str) -> None:
    settings, db = env
    chip_type, cdf, cels = CASES[case]
    first = create_cel_experiment(settings, db, cels, title="reference arrays", cdf=cdf)
    process_experiment(settings, db, first, method="rma")
    name = cels[-1].name.removesuffix(".CEL.gz")
    together, together_mode, _ = _stored(db, f"{first}-{name}")
    with db.session() as session:
        reference = build_platform_reference(settings, session, chip_type)
    assert sorted(reference.arrays) == sorted(f"{first}-{c.name.removesuffix('.CEL.gz')}" for c in cels)
    assert (reference_dir(settings, chip_type) / f"{reference.reference_id}.npz").is_file()
    assert current_reference(settings, chip_type).reference_id == reference.reference_id

    new_file = tmp_path / "new" / cels[-1].name  # the same scan, arriving on its own
    new_file.parent.mkdir()
    shutil.copy(cels[-1], new_file)
    second = create_cel_experiment(settings, db, [new_file], title="one new array")
    report = process_experiment(settings, db, second, method="rma-reference")
    assert list(report.processed) == [f"{second}-{name}"]  # private accessions digest the CELs:
    alone, mode, parameters = _stored(db, f"{second}-{name}")  # for Hu6800 it is the same sample
    assert (mode, together_mode) == ("rma-reference", "rma-experiment")
    assert parameters["rma_reference"] == reference.reference_id
    diff = float(np.abs(alone - together).max())
    print(f"{case}: stored rma-reference vs rma-experiment max |diff| = {diff:.1e}")
    assert diff <= 1e-6


def test_without_a_reference_samples_are_refused_with_the_way_out(env) -> None:
    settings, db = env
    _, cdf, cels = CASES["hu6800"]
    accession = create_cel_experiment(settings, db, cels, title="no reference yet", cdf=cdf)
    report = process_experiment(settings, db, accession, method="rma-reference")
    reason = report.refused[f"{accession}-T1_r1"]
    assert "T1_r1.CEL.gz: no RMA reference for chip type 'Hu6800'" in reason
    assert "build_platform_reference" in reason


def test_reference_needs_processed_arrays(env) -> None:
    settings, db = env
    with (
        db.session() as session,
        pytest.raises(NotFoundError, match="no processed arrays of chip type 'HG-Focus'"),
    ):
        build_platform_reference(settings, session, "HG-Focus")


def test_reference_built_on_another_cdf_refuses_the_samples(env) -> None:
    settings, db = env
    _, hu_cdf, hu_cels = CASES["hu6800"]
    foreign = affy.build_rma_reference(hu_cels, cdf=hu_cdf)
    folder = reference_dir(settings, "HG-Focus")  # e.g. left there by an older, different CDF
    affy.save_rma_reference(foreign, folder / f"{foreign.reference_id}.npz")
    (folder / "current").write_text(foreign.reference_id + "\n", encoding="utf-8")
    _, cdf, cels = CASES["hg-focus"]
    accession = create_cel_experiment(settings, db, cels, title="focus", cdf=cdf)
    report = process_experiment(settings, db, accession, method="rma-reference")
    assert not report.processed
    reason = report.refused[f"{accession}-HG-Focus-1-121502.calvin"]
    assert f"RMA reference {foreign.reference_id} was built for chip type '3101_a03'" in reason
    assert "a reference serves only the platform (CDF) it was built on" in reason
