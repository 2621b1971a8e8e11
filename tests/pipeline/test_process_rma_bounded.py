"""Experiment-wide RMA in bounded memory (``pipeline.rma_bounded``) on the real HG-Focus CELs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill import affy
from genemill.errors import UnsupportedPlatformError
from genemill.pipeline.rma_bounded import MAX_IN_MEMORY_BYTES, experiment_rma, pm_bytes

DATA = Path(__file__).resolve().parents[2] / "data"
FOCUS = DATA / "affy-hg-focus"
CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]


@pytest.fixture(scope="module")
def layout():
    return affy.read_cdf(FOCUS / "HG-Focus.CDF.gz")


def test_small_experiments_run_in_memory_and_large_ones_chunked_with_the_same_table(layout, tmp_path) -> None:
    assert pm_bytes(layout, 2) < MAX_IN_MEMORY_BYTES
    in_memory = experiment_rma(CELS, layout, scratch_dir=tmp_path)
    chunked = experiment_rma(CELS, layout, scratch_dir=tmp_path, max_in_memory_bytes=0, chunk_arrays=1)
    assert (in_memory.attrs["rma_path"], chunked.attrs["rma_path"]) == ("in-memory", "chunked")
    assert list(chunked.index) == list(in_memory.index) and list(chunked.columns) == list(in_memory.columns)
    assert float(np.abs(chunked.to_numpy() - in_memory.to_numpy()).max()) < 1e-9
    reference = pd.read_csv(FOCUS / "reference" / "HG-Focus_affy_rma_log2.tsv", sep="\t", index_col=0)
    diff = np.abs(chunked.to_numpy() - reference.loc[chunked.index].to_numpy()).max()
    assert float(diff) < 1e-4  # Bioconductor affy::rma
    assert list(tmp_path.iterdir()) == []  # the scratch matrix is gone


def test_a_cel_of_another_chip_is_refused_on_the_chunked_path(layout, tmp_path) -> None:
    other = DATA / "affy-hu6800" / "T1_r1.CEL.gz"
    with pytest.raises(UnsupportedPlatformError, match="T1_r1"):
        experiment_rma([CELS[0], other], layout, scratch_dir=tmp_path, max_in_memory_bytes=0)
    assert list(tmp_path.iterdir()) == []


def test_process_experiment_runs_rma_chunked_above_the_threshold(
    sqlite_settings, sqlite_db, monkeypatch
) -> None:
    from genemill.pipeline import rma_bounded
    from genemill.pipeline.private import create_cel_experiment
    from genemill.pipeline.process import process_experiment

    calls: list[int] = []
    real = rma_bounded.rma_chunked

    def counted(*args, **kwargs):  # the real chunked RMA, counted
        calls.append(kwargs["n_arrays"])
        return real(*args, **kwargs)

    monkeypatch.setattr(rma_bounded, "MAX_IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(rma_bounded, "rma_chunked", counted)
    accession = create_cel_experiment(
        sqlite_settings, sqlite_db, CELS, title="focus", cdf=FOCUS / "HG-Focus.CDF.gz"
    )
    report = process_experiment(sqlite_settings, sqlite_db, accession, method="rma")
    assert len(report.processed) == 2
    assert calls == [2]
