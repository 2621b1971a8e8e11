"""Fixtures for dataset tests (helpers and what is real vs constructed: ``dataset_lab.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dataset_lab import HG_FOCUS_RMA, ZEBRAFISH, Lab

from genemill.store.db import Database


@pytest.fixture(scope="session")
def hg_focus_rma() -> pd.DataFrame:
    """REAL affy::rma log2 values of the two HG-Focus arrays, columns renamed GSM_HGF1, GSM_HGF2."""
    frame = pd.read_csv(HG_FOCUS_RMA, sep="\t", index_col=0).astype(np.float32)
    frame.columns = ["GSM_HGF1", "GSM_HGF2"]
    frame.index.name = "feature_id"
    return frame


@pytest.fixture(scope="session")
def zebrafish_genes() -> dict[str, pd.DataFrame]:
    """REAL zebrafish gene values (6 runs): ``counts``, ``tpm``, ``lengthScaledTPM``."""
    from genemill.rnaseq import tximport

    paths = sorted(ZEBRAFISH.glob("SRR*.quant.sf.gz"))
    names = [p.name.split(".")[0] for p in paths]
    tx2gene = ZEBRAFISH / "genes_to_transcripts.txt.gz"
    plain = tximport(paths, tx2gene, sample_names=names, tx2gene_order="gene_transcript")
    scaled = tximport(
        paths,
        tx2gene,
        sample_names=names,
        tx2gene_order="gene_transcript",
        counts_from_abundance="lengthScaledTPM",
    )
    return {"counts": plain.counts, "tpm": plain.abundance, "lengthScaledTPM": scaled.counts}


@pytest.fixture
def lab(db: Database, tmp_path: Path) -> Lab:
    """A Lab on each database backend."""
    return Lab(db, tmp_path / "store")


@pytest.fixture
def sqlite_lab(sqlite_db: Database, tmp_path: Path) -> Lab:
    """A Lab on SQLite only (for tests about values, not storage)."""
    return Lab(sqlite_db, tmp_path / "store")
