"""Datasets from really processed real examples: GSE781 (submitter tables), HG-Focus (RMA from CEL),
zebrafish SRP095529 (tximport of Salmon quant.sf), in every aggregation, every format."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

from genemill.config import Settings
from genemill.datasets import DatasetSpec, OutputFormat, build_dataset
from genemill.errors import GenemillWarning
from genemill.pipeline.private import create_cel_experiment
from genemill.pipeline.process import process_experiment
from genemill.pipeline.rnaseq_private import create_quant_experiment
from genemill.pipeline.survey import import_metadata
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression
from genemill.store.results import current_values

DATA = Path(__file__).resolve().parents[2] / "data"
FOCUS = DATA / "affy-hg-focus"
ZEBRAFISH = DATA / "rnaseq-refinebio-SRP095529"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home)
    db = Database(settings.resolved_database_url)
    db.migrate()
    import_metadata(settings, db, DATA / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz")
    process_experiment(settings, db, "GSE781")
    focus = create_cel_experiment(
        settings,
        db,
        sorted(FOCUS.glob("*.calvin.CEL.gz")),
        title="HG-Focus",
        cdf=FOCUS / "HG-Focus.CDF.gz",
        organism="Homo sapiens",
    )
    process_experiment(settings, db, focus)
    fish = create_quant_experiment(
        settings,
        db,
        sorted(ZEBRAFISH.glob("*.quant.sf.gz")),
        title="zebrafish",
        tx2gene=ZEBRAFISH / "genes_to_transcripts.txt.gz",
        organism="Danio rerio",
    )
    process_experiment(settings, db, fish)
    yield settings, db, {"gse781": "GSE781", "focus": focus, "fish": fish}
    db.dispose()


def _build(db: Database, spec: dict, out: Path):
    spec = DatasetSpec.from_dict(spec)
    outputs = {
        OutputFormat.TSV_ZIP: out / "d.zip",
        OutputFormat.PARQUET: out / "d.parquet",
        OutputFormat.H5AD: out / "d.h5ad",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenemillWarning)  # KS warnings are checked in the metadata
        with db.session() as session:
            return build_dataset(session, spec, outputs=outputs)


def _stored(db: Database, sample: str) -> pd.Series:
    with db.session() as session:
        values = current_values(queries.get_sample(session, sample))
        assert values is not None
        return read_expression(values.path, samples=[sample])[sample]


@pytest.mark.parametrize("aggregate", ["EXPERIMENT", "SPECIES", "ALL"])
def test_every_aggregation_on_real_processed_samples(catalog, tmp_path, aggregate) -> None:
    _, db, acc = catalog
    data = {acc["gse781"]: ["ALL"], acc["focus"]: ["ALL"], acc["fish"]: ["ALL"]}
    outcome = _build(db, {"data": data, "aggregate_by": aggregate, "quantile_normalize": False}, tmp_path)
    keys = sorted(m.key for m in outcome.built.matrices)
    expected = {
        "EXPERIMENT": sorted(acc.values()),
        "SPECIES": ["DANIO_RERIO", "HOMO_SAPIENS"],
        "ALL": ["ALL"],
    }[aggregate]
    assert keys == expected
    n_samples = 34 + 2 + 6
    if aggregate == "ALL":  # human and zebrafish genes share nothing: the fish samples leave the join
        n_samples = 34 + 2
        sentences = {e.sample: e.sentence for e in outcome.built.exclusions}
        assert sorted(sentences) == sorted(f"{acc['fish']}-SRR51256{i}" for i in range(21, 27))
        assert all("none of its genes are among the genes the join kept" in v for v in sentences.values())
    with zipfile.ZipFile(tmp_path / "d.zip") as zf:
        names = set(zf.namelist())
        metadata = json.loads(zf.read("aggregated_metadata.json"))
    assert {"README.md", "LICENSE.TXT", "aggregated_metadata.json"} <= names
    for key in keys:
        assert {f"{key}/{key}.tsv", f"{key}/metadata_{key}.tsv"} <= names
    assert metadata["aggregate_by"] == aggregate
    assert metadata["num_samples"] == n_samples
    sample = metadata["samples"]["GSM11805"]
    assert sample["refinebio_accession_code"] == "GSM11805"
    adata = anndata.read_h5ad(tmp_path / "d.h5ad")
    assert adata.n_obs >= 2


def test_values_equal_stored_gene_values_without_qn(catalog, tmp_path) -> None:
    _, db, acc = catalog
    outcome = _build(
        db,
        {
            "data": {"GSE781": ["GSM11805", "GSM11814"]},
            "aggregate_by": "EXPERIMENT",
            "quantile_normalize": False,
        },
        tmp_path,
    )
    (matrix,) = outcome.built.matrices
    frame = pd.DataFrame(matrix.values, index=list(matrix.genes), columns=list(matrix.samples))
    stored = _stored(db, "GSM11805").dropna()
    common = frame.index.intersection(stored.index)
    assert len(common) > 10000
    assert np.allclose(frame.loc[common, "GSM11805"].to_numpy(), stored.loc[common].to_numpy(), rtol=1e-6)
    with zipfile.ZipFile(tmp_path / "d.zip") as zf:
        tsv = pd.read_csv(zf.open("GSE781/GSE781.tsv"), sep="\t", index_col=0)
    assert tsv.index.name == "Gene"
    assert np.allclose(tsv.loc[common, "GSM11805"].to_numpy(), stored.loc[common].to_numpy(), rtol=1e-5)


def test_submitter_samples_can_be_excluded_with_reasons(catalog, tmp_path) -> None:
    _, db, acc = catalog
    outcome = _build(
        db,
        {
            "data": {"GSE781": ["ALL"], acc["focus"]: ["ALL"]},
            "aggregate_by": "SPECIES",
            "include_submitter": False,
        },
        tmp_path,
    )
    (matrix,) = outcome.built.matrices
    assert len(matrix.samples) == 2
    excluded = {e.sample: e.sentence for e in outcome.built.exclusions}
    assert len(excluded) == 34
    assert "submitter" in excluded["GSM11805"]
    with zipfile.ZipFile(tmp_path / "d.zip") as zf:
        assert "filtered_samples_metadata.tsv" in zf.namelist()


def test_species_targets_are_never_crossed(catalog, tmp_path) -> None:
    _, db, acc = catalog
    outcome = _build(
        db, {"data": {acc["focus"]: ["ALL"], acc["fish"]: ["ALL"]}, "aggregate_by": "SPECIES"}, tmp_path
    )
    by_key = {m.key: m for m in outcome.built.matrices}
    assert set(by_key) == {"HOMO_SAPIENS", "DANIO_RERIO"}
    for key, matrix in by_key.items():
        qn = matrix.quantile_normalization
        assert list(qn) == [key]
        assert qn[key]["organism"] == key
        assert qn[key]["n_samples"] == len(matrix.samples)
