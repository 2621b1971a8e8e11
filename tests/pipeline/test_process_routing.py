"""``process_experiments`` (what ``genemill process`` runs): MAS5 fans out to one job per sample,
RMA stays one job per experiment. Real HG-Focus and Hu6800 CELs (data/affy-*), SQLite and PostgreSQL.

The truncated CEL below is GENERATED (the first 5000 bytes of a real HG-Focus CEL) to stand for a
bad upload.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from genemill.config import Settings
from genemill.pipeline.affymetrix import cdf_dir
from genemill.pipeline.executors import LocalExecutor
from genemill.pipeline.jobs import JobKind
from genemill.pipeline.private import create_cel_experiment
from genemill.pipeline.process import process_experiments
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression
from genemill.store.models import Job, JobState, ProcessingState
from genemill.store.results import current_values

DATA = Path(__file__).resolve().parents[2] / "data"
FOCUS = DATA / "affy-hg-focus"
HU6800 = DATA / "affy-hu6800"
FOCUS_CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]
HU_CEL = HU6800 / "T1_r1.CEL.gz"


def _mas5_reference(path: Path) -> pd.DataFrame:
    table = np.log2(pd.read_csv(path, sep="\t", index_col=0))
    table.columns = [c.split(".")[0] for c in table.columns]
    return table


def _jobs(db: Database) -> dict[str, tuple[str, JobState, int]]:
    with db.session() as session:
        return {j.target: (j.kind, j.state, j.attempts) for j in session.scalars(select(Job))}


def _stored_probesets(db: Database, sample_accession: str) -> pd.Series:
    with db.session() as session:
        sample = queries.get_sample(session, sample_accession)
        values = current_values(sample, kind="expression:probeset")
        assert values is not None
        assert values.path.parent.name == sample.accession  # the sample's own folder
        return read_expression(values.path)[sample.accession]


def _experiment(settings: Settings, db: Database, tmp_path: Path) -> str:
    # install_cdf names a CDF by the chip type inside it; this XDA CDF says "3101a03", the CEL "Hu6800".
    cdf_dir(settings).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HU6800 / "Hu6800.CDF.gz", cdf_dir(settings) / "hu6800.CDF.gz")
    truncated = tmp_path / "truncated.CEL"
    truncated.write_bytes(FOCUS_CELS[0].read_bytes()[:5000])
    files = [*FOCUS_CELS, HU_CEL, truncated]
    return create_cel_experiment(settings, db, files, title="mixed", cdf=FOCUS / "HG-Focus.CDF.gz")


def test_mas5_runs_one_job_per_sample_and_a_bad_array_does_not_sink_the_others(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    accession = _experiment(settings, db, tmp_path)
    progress: list[tuple[int, int, str]] = []
    executor = LocalExecutor(2)  # spawned worker processes, two samples at a time
    try:
        run = process_experiments(
            settings,
            db,
            [accession],
            method="mas5",
            executor=executor,
            on_progress=lambda done, total, message: progress.append((done, total, message)),
        )
    finally:
        executor.shutdown()
    samples = [
        f"{accession}-{name}" for name in ("HG-Focus-1-121502.calvin", "HG-Focus-2-121502.calvin", "T1_r1")
    ]
    bad = f"{accession}-truncated"
    assert run.experiments == {accession: "samples"}
    jobs = _jobs(db)
    assert jobs == dict.fromkeys([*samples, bad], (JobKind.PROCESS_SAMPLE.value, JobState.SUCCEEDED, 1))
    report = run.samples[accession]
    assert sorted(report.processed) == sorted(samples)
    assert list(report.refused) == [bad] and "truncated.CEL" in report.refused[bad]
    assert progress[0] == (0, 4, "4 job(s) to run")
    assert [done for done, _, _ in progress] == [0, 1, 2, 3, 4]
    assert all(total == 4 for _, total, _ in progress)
    focus = _mas5_reference(FOCUS / "reference" / "HG-Focus_affy_mas5_signal.tsv")
    hu = _mas5_reference(HU6800 / "reference" / "Hu6800_T1_r1_affy_mas5_signal.tsv")
    for sample, reference in zip(samples, [focus.iloc[:, 0], focus.iloc[:, 1], hu.iloc[:, 0]], strict=True):
        stored = _stored_probesets(db, sample)
        diff = float(np.abs(stored.to_numpy() - reference.loc[stored.index].to_numpy()).max())
        assert len(stored) == len(reference) and diff < 1e-4, (sample, diff)
    with db.session() as session:
        experiment = queries.get_experiment(session, accession)
        assert (experiment.num_total_samples, experiment.num_processed_samples) == (4, 3)
        assert queries.get_sample(session, bad).processing_state == ProcessingState.UNPROCESSABLE

    again = process_experiments(settings, db, [accession], method="mas5")
    assert again.summary.succeeded == [] and sorted(again.samples[accession].processed) == sorted(samples)
    assert _jobs(db) == jobs  # finished samples are not redone


def test_rma_stays_one_job_per_experiment(settings: Settings, db: Database) -> None:
    accession = create_cel_experiment(settings, db, FOCUS_CELS, title="focus", cdf=FOCUS / "HG-Focus.CDF.gz")
    run = process_experiments(settings, db, [accession], method="rma")
    assert run.experiments == {accession: "experiment"} and run.samples == {}
    assert _jobs(db) == {accession: (JobKind.PROCESS.value, JobState.SUCCEEDED, 1)}
    reference = pd.read_csv(FOCUS / "reference" / "HG-Focus_affy_rma_log2.tsv", sep="\t", index_col=0)
    for k, name in enumerate(("HG-Focus-1-121502.calvin", "HG-Focus-2-121502.calvin")):
        with db.session() as session:
            sample = queries.get_sample(session, f"{accession}-{name}")
            values = current_values(sample, kind="expression:probeset")
            assert values is not None
            column = read_expression(values.path)[sample.accession]
        diff = float(np.abs(column.to_numpy() - reference.iloc[:, k].loc[column.index].to_numpy()).max())
        assert diff < 1e-4


@pytest.mark.parametrize("method", ["mas5", "rma"])
def test_an_unknown_accession_is_refused_before_any_job(
    settings: Settings, db: Database, method: str
) -> None:
    from genemill.errors import NotFoundError

    with pytest.raises(NotFoundError):
        process_experiments(settings, db, ["GSE999999999"], method=method)
    assert _jobs(db) == {}


def test_rma_reference_runs_per_sample_against_the_platform_reference(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    from genemill.pipeline.affy_reference import build_platform_reference

    first = create_cel_experiment(settings, db, FOCUS_CELS, title="focus", cdf=FOCUS / "HG-Focus.CDF.gz")
    process_experiments(settings, db, [first], method="rma")
    with db.session() as session:
        reference = build_platform_reference(settings, session, "HG-Focus")
    arriving = tmp_path / "new" / FOCUS_CELS[1].name  # the same scan, arriving on its own
    arriving.parent.mkdir()
    shutil.copyfile(FOCUS_CELS[1], arriving)
    second = create_cel_experiment(settings, db, [arriving], title="one new array")
    run = process_experiments(settings, db, [second], method="rma-reference")
    sample = f"{second}-HG-Focus-2-121502.calvin"
    assert run.experiments == {second: "samples"} and run.samples[second].processed == [sample]
    assert _jobs(db)[sample] == (JobKind.PROCESS_SAMPLE.value, JobState.SUCCEEDED, 1)
    alone = _stored_probesets(db, sample)
    with db.session() as session:
        values = current_values(queries.get_sample(session, sample), kind="expression:probeset")
        assert values is not None and values.result.parameters["rma_reference"] == reference.reference_id
        together_values = current_values(
            queries.get_sample(session, f"{first}-HG-Focus-2-121502.calvin"), kind="expression:probeset"
        )
        assert together_values is not None
        together = read_expression(together_values.path)[f"{first}-HG-Focus-2-121502.calvin"]
    assert float(np.abs(alone.sort_index().to_numpy() - together.sort_index().to_numpy()).max()) <= 1e-6


def test_an_rnaseq_experiment_stays_one_job_whatever_the_array_method(
    settings: Settings, db: Database
) -> None:
    from genemill.pipeline.rnaseq_private import create_quant_experiment

    srp = DATA / "rnaseq-refinebio-SRP095529"
    accession = create_quant_experiment(
        settings,
        db,
        [srp / "SRR5125621.quant.sf.gz", srp / "SRR5125622.quant.sf.gz"],
        title="zebrafish quant",
        tx2gene=srp / "genes_to_transcripts.txt.gz",
    )
    run = process_experiments(settings, db, [accession], method="mas5")
    assert run.experiments == {accession: "experiment"}
    assert _jobs(db) == {accession: (JobKind.PROCESS.value, JobState.SUCCEEDED, 1)}
    with db.session() as session:
        states = {s.processing_state for s in queries.get_experiment(session, accession).samples}
    assert states == {ProcessingState.PROCESSED}


def test_process_samples_refreshes_the_search_index_with_the_new_counts(
    settings: Settings, db: Database
) -> None:
    """Searches sort and filter on indexed counts: per-sample runs must reindex, not only count."""
    from genemill.pipeline.sample_jobs import process_samples
    from genemill.store.search_models import ExperimentFacet

    accession = create_cel_experiment(settings, db, FOCUS_CELS, title="focus", cdf=FOCUS / "HG-Focus.CDF.gz")

    def indexed_downloadable() -> int:
        with db.session() as session:
            experiment = queries.get_experiment(session, accession)
            rows = session.scalars(
                select(ExperimentFacet).where(
                    ExperimentFacet.experiment_id == experiment.id, ExperimentFacet.facet == "has_publication"
                )
            ).all()
            return sum(row.downloadable_samples for row in rows)

    assert indexed_downloadable() == 0
    report = process_samples(settings, db, accession, method="mas5")
    assert len(report.processed) == 2
    assert indexed_downloadable() == 2
