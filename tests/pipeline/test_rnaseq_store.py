"""Tests for the cached tx2gene layout of genemill.pipeline.rnaseq_store (constructed quant.sf files:
hand-written in the test, not real data)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill.config import Settings
from genemill.errors import InputError
from genemill.formats.records import ExperimentMetadata, SampleRecord, SeriesRecord
from genemill.pipeline import rnaseq_store
from genemill.pipeline.ingest import store_experiment
from genemill.pipeline.rnaseq_store import (
    QuantInput,
    ResultSpec,
    gene_layout,
    prepare_gene_layout,
    store_gene_tables,
    summarize_runs,
)
from genemill.store.db import Database
from genemill.store.expression import read_expression

NAMES = ["tx1", "tx2", "tx3", "tx4"]


def _quant(path: Path, names: list[str], reads: list[float]) -> Path:
    rows = [
        f"{name}\t{1000 + 100 * i}\t{900.0 + 100 * i}\t{r * 10.0}\t{r}"
        for i, (name, r) in enumerate(zip(names, reads, strict=True))
    ]
    path.write_text("Name\tLength\tEffectiveLength\tTPM\tNumReads\n" + "\n".join(rows) + "\n")
    return path


def _tx2gene(names: list[str] = NAMES) -> pd.DataFrame:
    genes = {"tx1": "g1", "tx2": "g1", "tx3": "g2", "tx4": "g3"}
    return pd.DataFrame(
        {
            "transcript_id": names,
            "gene_id": [genes[n] for n in names],
            "gene_name": [genes[n].upper() for n in names],
        }
    )


def _runs(tmp_path: Path, names: list[str] = NAMES) -> list[QuantInput]:
    return [
        QuantInput("S1", _quant(tmp_path / "a.sf", names, [10.0, 5.0, 0.0, 2.0])),
        QuantInput("S2", _quant(tmp_path / "b.sf", names, [1.0, 2.0, 3.0, 4.0])),
    ]


def _metadata(accession: str) -> ExperimentMetadata:
    """An experiment with samples S1 and S2 (constructed here, not real data)."""
    samples = [SampleRecord(accession=name, title=name) for name in ("S1", "S2")]
    return ExperimentMetadata(
        source="GEO", series=SeriesRecord(accession=accession, title="t"), samples=samples
    )


def test_a_prepared_layout_is_used_and_gives_the_same_tables(tmp_path: Path, monkeypatch) -> None:
    fresh = summarize_runs(_runs(tmp_path), _tx2gene(), source="t2g")
    table = _tx2gene()
    prepare_gene_layout(table, source="t2g")
    mapped: list[int] = []
    real = rnaseq_store.map_transcripts
    monkeypatch.setattr(rnaseq_store, "map_transcripts", lambda *a, **k: mapped.append(1) or real(*a, **k))
    cached = summarize_runs(_runs(tmp_path), table, source="t2g")
    assert mapped == []  # the layout prepared above was used
    summarize_runs(_runs(tmp_path), _tx2gene(), source="t2g")
    assert mapped == [1]  # another frame: computed
    for name in ("counts", "tpm", "length_scaled_tpm"):
        pd.testing.assert_frame_equal(getattr(cached, name), getattr(fresh, name))
    assert cached.symbols is not None and fresh.symbols is not None
    pd.testing.assert_series_equal(cached.symbols, fresh.symbols)
    assert cached.symbols.to_dict() == {"g1": "G1", "g2": "G2", "g3": "G3"}
    assert cached.counts.loc["g1", "S1"] == pytest.approx(15.0)


def test_another_order_or_table_is_not_taken_from_the_cache(tmp_path: Path) -> None:
    table = _tx2gene()
    prepare_gene_layout(table, source="t2g")
    reordered = np.array(NAMES[::-1], dtype=object)
    layout = gene_layout(table, reordered, source="t2g")
    assert list(layout.names) == NAMES[::-1]
    assert [layout.mapping.gene_ids[i] for i in layout.mapping.gene_index] == ["g3", "g2", "g1", "g1"]
    other = gene_layout(_tx2gene(), reordered, source="t2g")  # an equal but distinct frame
    assert other is not layout


def test_a_gap_in_tx2gene_is_still_reported_after_preparing(tmp_path: Path) -> None:
    table = _tx2gene(["tx1", "tx2", "tx3"])  # tx4 missing
    prepare_gene_layout(table, source="t2g.tsv")  # the table's own order: fine
    with pytest.raises(InputError, match=r"tx4.*t2g\.tsv|t2g\.tsv.*tx4"):
        summarize_runs(_runs(tmp_path), table, source="t2g.tsv")


def test_files_written_with_the_layouts_columns_equal_those_built_afresh(
    tmp_path: Path, settings: Settings, db: Database
) -> None:
    tables = summarize_runs(_runs(tmp_path), _tx2gene(), source="t2g")
    assert tables.layout is not None and tables.counts.index is tables.layout.index
    afresh = dataclasses.replace(tables, layout=None)
    spec = ResultSpec("constructed", "1", "raw", {}, ["0" * 64], {})
    written = {}
    for name, given in (("layout", tables), ("afresh", afresh)):
        with db.session() as session:
            experiment = store_experiment(session, _metadata(f"GSE{len(written) + 1}"))
            samples = list(experiment.samples)
            result = store_gene_tables(
                settings, session, experiment, samples=samples, tables=given, spec=spec
            )
            written[name] = {f.kind: Path(f.path).read_bytes() for f in result.files}
    assert written["layout"] == written["afresh"]
    (counts,) = (settings.home / "expression" / "GSE1").glob("*.counts.parquet")
    frame = read_expression(counts, with_annotation=True)
    assert frame["symbol"].to_dict() == {"g1": "G1", "g2": "G2", "g3": "G3"}
