"""Writers: refine.bio's zip layout and metadata, Parquet, h5ad; atomic (no partial file on failure).

Values: the REAL HG-Focus RMA arrays (8,746 probe sets, so the TSV is streamed in many chunks) and
CONSTRUCTED frames with gene annotation.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dataset_lab import MOUSE, Lab, constructed

from genemill.datasets import writers
from genemill.datasets.build import BuiltDataset, build_matrices
from genemill.datasets.job import build_dataset
from genemill.datasets.plan import plan_dataset
from genemill.datasets.spec import DatasetSpec, OutputFormat

REFINEBIO_KEYS = {
    "num_experiments",
    "quant_sf_only",
    "aggregate_by",
    "scale_by",
    "quantile_normalized",
    "ks_statistic",
    "ks_pvalue",
    "ks_warning",
    "samples",
    "num_samples",
    "experiments",
    "created_at",
}
EXPERIMENT_KEYS = {
    "title",
    "accession_code",
    "organisms",
    "sample_accession_codes",
    "description",
    "protocol_description",
    "technology",
    "submitter_institution",
    "has_publication",
    "publication_title",
    "publication_doi",
    "pubmed_id",
    "source_first_published",
    "source_last_modified",
}


@pytest.fixture
def stocked(sqlite_lab: Lab, hg_focus_rma: pd.DataFrame) -> Lab:
    sqlite_lab.add("GSE1", hg_focus_rma, unprocessed={"GSM_X": "scan unreadable"})
    annotation = pd.DataFrame(
        {"symbol": ["Actb", None, "Gapdh"], "entrez_id": ["11461", "12", None]},
        index=["ENSMUSG1", "ENSMUSG2", "ENSMUSG3"],
    )
    mouse = constructed({"GSM_M1": [3, 1, 2], "GSM_M2": [1, np.nan, 5]}, ["ENSMUSG1", "ENSMUSG2", "ENSMUSG3"])
    sqlite_lab.add("GSE2", mouse, organism=MOUSE, platform="GPL1261", annotation=annotation)
    return sqlite_lab


def _built(lab: Lab, **spec: object) -> BuiltDataset:
    with lab.db.session() as session:
        return build_matrices(plan_dataset(session, DatasetSpec.from_dict(spec)))


def test_zip_layout_and_contents(stocked: Lab, tmp_path: Path, hg_focus_rma: pd.DataFrame) -> None:
    built = _built(stocked, data={"GSE1": ["ALL"], "GSE2": ["ALL"]}, join="OUTER", quantile_normalize=False)
    path = tmp_path / "out" / "dataset.zip"
    writers.write_tsv_zip(built, path)
    archive = zipfile.ZipFile(path)
    assert archive.namelist() == [
        "README.md",
        "LICENSE.TXT",
        "aggregated_metadata.json",
        "filtered_samples_metadata.json",
        "filtered_samples_metadata.tsv",
        "GSE1/GSE1.tsv",
        "GSE1/genes_GSE1.tsv",
        "GSE1/metadata_GSE1.tsv",
        "GSE2/GSE2.tsv",
        "GSE2/genes_GSE2.tsv",
        "GSE2/metadata_GSE2.tsv",
    ]
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
    table = pd.read_csv(io.BytesIO(archive.read("GSE1/GSE1.tsv")), sep="\t", index_col=0, dtype={"Gene": str})
    assert table.index.name == "Gene" and table.columns.tolist() == ["GSM_HGF1", "GSM_HGF2"]
    assert table.shape == (8746, 2)
    assert np.array_equal(table.to_numpy(dtype=np.float32), hg_focus_rma.loc[table.index].to_numpy())
    mouse_text = archive.read("GSE2/GSE2.tsv").decode()
    assert mouse_text.splitlines()[:3] == ["Gene\tGSM_M1\tGSM_M2", "ENSMUSG1\t3\t1", "ENSMUSG2\t1\t"]
    genes = archive.read("GSE2/genes_GSE2.tsv").decode().splitlines()
    assert genes == [
        "Gene\tsymbol\tentrez_id",
        "ENSMUSG1\tActb\t11461",
        "ENSMUSG2\t\t12",
        "ENSMUSG3\tGapdh\t",
    ]
    assert "CC BY 4.0" in archive.read("LICENSE.TXT").decode()
    assert (
        "GSM_X (GSE1) is missing because it could not be processed: scan unreadable."
        in archive.read("README.md").decode()
    )


def test_aggregated_and_sample_metadata(stocked: Lab, tmp_path: Path) -> None:
    built = _built(stocked, data={"GSE1": ["ALL"], "GSE2": ["GSM_M1", "GSM_NOPE"]})
    path = tmp_path / "dataset.zip"
    writers.write_tsv_zip(built, path)
    archive = zipfile.ZipFile(path)
    meta = json.loads(archive.read("aggregated_metadata.json"))
    assert set(meta) >= REFINEBIO_KEYS
    assert meta["num_samples"] == 3 and meta["num_experiments"] == 2 and meta["quantile_normalized"] is True
    assert set(meta["experiments"]["GSE2"]) >= EXPERIMENT_KEYS
    assert meta["experiments"]["GSE2"]["sample_accession_codes"] == ["GSM_M1"]
    sample = meta["samples"]["GSM_HGF1"]
    assert sample["refinebio_organism"] == "HOMO_SAPIENS"
    assert sample["refinebio_processor_name"] == "test-processor"
    assert sample["genemill_processing"]["processor_version"] == "1.0"
    assert sample["genemill_processing"]["file_sha256"] is not None
    assert sample["genemill_processing"]["parameters"] == {"made_by": "tests/datasets/conftest.py"}
    excluded = {(e["accession_code"], e["reason"]) for e in meta["excluded_samples"]}
    assert excluded == {("GSM_X", "UNPROCESSABLE"), ("GSM_NOPE", "NOT_FOUND")}
    assert (
        meta["genemill"]["matrices"]["GSE1"]["quantile_normalization"]["HOMO_SAPIENS"]["source"] == "computed"
    )
    filtered = json.loads(archive.read("filtered_samples_metadata.json"))
    assert filtered["GSM_X"]["reason_code"] == "UNPROCESSABLE"
    assert filtered["GSM_X"]["refinebio_title"] == "GSE1 sample GSM_X"
    rows = pd.read_csv(io.BytesIO(archive.read("filtered_samples_metadata.tsv")), sep="\t", dtype=str)
    assert rows.columns[:4].tolist() == [
        "refinebio_accession_code",
        "experiment_accession",
        "reason_code",
        "reason",
    ]
    metadata = pd.read_csv(io.BytesIO(archive.read("GSE1/metadata_GSE1.tsv")), sep="\t", dtype=str)
    columns = metadata.columns.tolist()
    assert columns[:2] == ["refinebio_accession_code", "experiment_accession"]
    refinebio = [c for c in columns if c.startswith("refinebio_")][1:]
    assert refinebio == sorted(refinebio) and "refinebio_annotations" not in columns
    assert columns[-2:] == ["characteristics_ch1_replicate", "characteristics_ch1_tissue"]
    assert metadata["characteristics_ch1_tissue"].tolist() == ["liver", "liver"]


def test_species_zip_has_species_json(stocked: Lab, tmp_path: Path) -> None:
    built = _built(stocked, data={"GSE1": ["ALL"], "GSE2": ["ALL"]}, aggregate_by="SPECIES")
    path = tmp_path / "d.zip"
    writers.write_tsv_zip(built, path)
    names = zipfile.ZipFile(path).namelist()
    assert "MUS_MUSCULUS/metadata_MUS_MUSCULUS.json" in names and "HOMO_SAPIENS/HOMO_SAPIENS.tsv" in names
    species = json.loads(zipfile.ZipFile(path).read("MUS_MUSCULUS/metadata_MUS_MUSCULUS.json"))
    assert species == {"species": "MUS_MUSCULUS", "samples": ["GSM_M1", "GSM_M2"]}


def test_parquet_and_h5ad(stocked: Lab, tmp_path: Path) -> None:
    import anndata

    one = _built(stocked, data={"GSE2": ["ALL"]}, join="OUTER", quantile_normalize=False)
    writers.write_parquet(one, tmp_path / "one.parquet")
    table = pq.read_table(tmp_path / "one.parquet")
    assert table.column_names == ["Gene", "symbol", "entrez_id", "GSM_M1", "GSM_M2"]
    assert table.column("symbol").to_pylist() == ["Actb", None, "Gapdh"]
    info = json.loads(table.schema.metadata[b"genemill"])
    assert info["format"] == "genemill-dataset" and info["matrices"] == {"GSE2": ["GSM_M1", "GSM_M2"]}
    two = _built(stocked, data={"GSE1": ["ALL"], "GSE2": ["ALL"]}, join="OUTER", quantile_normalize=False)
    writers.write_parquet(two, tmp_path / "two.parquet")
    both = pq.read_table(tmp_path / "two.parquet").to_pandas().set_index("Gene")
    assert both.shape == (8746 + 3, 2 + 4)
    assert np.isnan(both.loc["ENSMUSG1", "GSE1/GSM_HGF1"]) and both.loc["ENSMUSG1", "GSE2/GSM_M1"] == 3
    writers.write_h5ad(two, tmp_path / "two.h5ad")
    adata = anndata.read_h5ad(tmp_path / "two.h5ad")
    assert adata.shape == (4, 8749) and adata.X.dtype == np.float32
    assert adata.obs_names.tolist() == ["GSE1/GSM_HGF1", "GSE1/GSM_HGF2", "GSE2/GSM_M1", "GSE2/GSM_M2"]
    assert adata.obs["matrix"].tolist() == ["GSE1", "GSE1", "GSE2", "GSE2"]
    assert adata.var.loc["ENSMUSG3", "symbol"] == "Gapdh"
    assert json.loads(adata.uns["genemill_metadata_json"])["num_samples"] == 4
    assert adata[:, "ENSMUSG1"].X[2, 0] == 3


def test_failed_write_leaves_no_partial_file(
    stocked: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _built(stocked, data={"GSE1": ["ALL"]})
    calls = {"n": 0}
    original = writers._format_rows

    def failing(arrow, start):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full (simulated)")
        return original(arrow, start)

    monkeypatch.setattr(writers, "_format_rows", failing)
    fresh = tmp_path / "new" / "dataset.zip"
    with pytest.raises(OSError, match="disk full"):
        writers.write_tsv_zip(built, fresh)
    assert list(fresh.parent.iterdir()) == []
    existing = tmp_path / "old.zip"
    existing.write_bytes(b"previous build")
    calls["n"] = 0
    with pytest.raises(OSError, match="disk full"):
        writers.write_tsv_zip(built, existing)
    assert existing.read_bytes() == b"previous build"
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["old.zip"]


def test_build_dataset_writes_every_format(stocked: Lab, tmp_path: Path) -> None:
    spec = DatasetSpec.from_dict({"data": {"GSE2": ["ALL"]}, "formats": ["tsv_zip", "parquet", "h5ad"]})
    outputs = {
        fmt: tmp_path / f"d{suffix}"
        for fmt, suffix in [
            (OutputFormat.TSV_ZIP, ".zip"),
            (OutputFormat.PARQUET, ".parquet"),
            (OutputFormat.H5AD, ".h5ad"),
        ]
    }
    phases: list[str] = []
    with stocked.db.session() as session:
        outcome = build_dataset(session, spec, outputs=outputs, progress=lambda p, d, t: phases.append(p))
    assert [f.path for f in outcome.files] == list(outputs.values())
    assert all(f.size_in_bytes == f.path.stat().st_size and len(f.sha256) == 64 for f in outcome.files)
    assert phases[0] == "plan" and "write h5ad" in phases
    assert outcome.summary()["matrices"] == {
        "GSE2": {"samples": 2, "genes": 2, "value_scale": "quantile normalized (log2 before)"}
    }


def test_a_failed_format_removes_the_build_s_other_files(
    stocked: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genemill.datasets import job

    def broken(built, path, *, metadata):
        raise OSError("h5py exploded (simulated)")

    monkeypatch.setitem(job._WRITERS, OutputFormat.H5AD, broken)
    spec = DatasetSpec.from_dict({"data": {"GSE2": ["ALL"]}, "formats": ["tsv_zip", "h5ad"]})
    outputs = {OutputFormat.TSV_ZIP: tmp_path / "d.zip", OutputFormat.H5AD: tmp_path / "d.h5ad"}
    with stocked.db.session() as session, pytest.raises(OSError, match="h5py exploded"):
        build_dataset(session, spec, outputs=outputs)
    assert not (tmp_path / "d.zip").exists() and not (tmp_path / "d.h5ad").exists()


def test_a_sample_in_two_experiments_is_in_both_matrices(sqlite_lab: Lab, tmp_path: Path) -> None:
    """CONSTRUCTED: GSM2 belongs to GSE1 and to GSE2 (as GEO SuperSeries samples do)."""
    sqlite_lab.add("GSE1", constructed({"GSM1": [1, 2], "GSM2": [3, 4]}, ["ENSG1", "ENSG2"]))
    sqlite_lab.add("GSE2", constructed({"GSM3": [5, 6]}, ["ENSG1", "ENSG2"]))
    with sqlite_lab.db.session() as session:
        from genemill.store.models import Experiment, Sample

        gse2 = session.query(Experiment).filter_by(accession="GSE2").one()
        gse2.samples.append(session.query(Sample).filter_by(accession="GSM2").one())
    built = _built(sqlite_lab, data={"GSE1": ["ALL"], "GSE2": ["ALL"]}, quantile_normalize=False)
    assert [m.samples for m in built.matrices] == [("GSM1", "GSM2"), ("GSM2", "GSM3")]
    path = tmp_path / "d.zip"
    writers.write_tsv_zip(built, path)
    archive = zipfile.ZipFile(path)
    rows = pd.read_csv(io.BytesIO(archive.read("GSE2/metadata_GSE2.tsv")), sep="\t", dtype=str)
    assert rows[["refinebio_accession_code", "experiment_accession"]].values.tolist() == [
        ["GSM2", "GSE2"],
        ["GSM3", "GSE2"],
    ]
    meta = json.loads(archive.read("aggregated_metadata.json"))
    assert meta["samples"]["GSM2"]["genemill_matrices"] == ["GSE1", "GSE2"]
