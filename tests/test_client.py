"""genemill.client.load_dataset: zip / Parquet / h5ad back to genes × samples, pandas only for zips.

The dataset here is CONSTRUCTED in memory (two matrices, exact float32 values, one missing cell) and
written with genemill's own writers; no database is needed.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill.client import load_dataset, load_metadata
from genemill.datasets.build import BuiltDataset, GroupMatrix
from genemill.datasets.plan import DatasetPlan, PlannedGroup, PlannedSample
from genemill.datasets.spec import DatasetSpec
from genemill.datasets.writers import write_h5ad, write_parquet, write_tsv_zip
from genemill.errors import FormatError, InputError, NotFoundError
from genemill.store.models import Technology

VALUES = {
    "GSE1": (["ENSG1", "ENSG2", "ENSG3"], {"GSM1": [1.5, 2.25, np.nan], "GSM2": [0.1, 7.0, 3.0]}),
    "GSE2": (["ENSG2", "ENSG4"], {"GSM3": [9.0, 1e-3]}),
}


def _sample(accession: str, experiment: str) -> PlannedSample:
    return PlannedSample(
        accession=accession,
        experiment=experiment,
        organism="Homo sapiens",
        organism_code="HOMO_SAPIENS",
        technology=Technology.MICROARRAY,
        path=Path(f"/nonexistent/{experiment}.parquet"),
        kind="expression",
        value_type="log2",
        metadata={"refinebio_accession_code": accession, "refinebio_title": f"title {accession}"},
        submitter_fields={"characteristics_ch1_tissue": "liver"},
    )


def _built(keys: list[str]) -> BuiltDataset:
    groups, matrices = [], []
    for key in keys:
        genes, columns = VALUES[key]
        groups.append(PlannedGroup(key, tuple(_sample(s, key) for s in columns)))
        values = np.asfortranarray(np.array(list(columns.values()), dtype=np.float32).T)
        matrices.append(
            GroupMatrix(
                key=key,
                genes=np.array(genes, dtype=object),
                symbols=np.array([f"SYM{g[-1]}" for g in genes], dtype=object),
                entrez_ids=np.array([None] * len(genes), dtype=object),
                samples=tuple(columns),
                values=values,
                organisms={"HOMO_SAPIENS": list(columns)},
                value_scale="log2",
            )
        )
    spec = DatasetSpec.from_dict({"data": {k: ["ALL"] for k in keys}, "quantile_normalize": False})
    plan = DatasetPlan(spec=spec, groups=tuple(groups), exclusions=(), experiments={}, targets={})
    return BuiltDataset(
        plan=plan, matrices=tuple(matrices), exclusions=(), created_at=dt.datetime.now(dt.UTC)
    )


def _expected(key: str) -> pd.DataFrame:
    genes, columns = VALUES[key]
    return pd.DataFrame(columns, index=pd.Index(genes, name="Gene"), dtype=np.float32)


@pytest.fixture(params=[".zip", ".parquet", ".h5ad"])
def written(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    writer = {".zip": write_tsv_zip, ".parquet": write_parquet, ".h5ad": write_h5ad}[request.param]
    one, two = tmp_path / f"one{request.param}", tmp_path / f"two{request.param}"
    writer(_built(["GSE1"]), one)
    writer(_built(["GSE1", "GSE2"]), two)
    return one, two


def test_one_matrix_round_trips_exactly(written: tuple[Path, Path]) -> None:
    frame = load_dataset(written[0])
    pd.testing.assert_frame_equal(frame, _expected("GSE1"), check_names=False)
    assert frame.index.name == "Gene"
    assert load_metadata(written[0])["num_samples"] == 2


def test_several_matrices_come_back_side_by_side(written: tuple[Path, Path]) -> None:
    frame = load_dataset(written[1])
    assert frame.columns.tolist() == [("GSE1", "GSM1"), ("GSE1", "GSM2"), ("GSE2", "GSM3")]
    assert frame.index.tolist() == ["ENSG1", "ENSG2", "ENSG3", "ENSG4"]
    assert frame.loc["ENSG4", ("GSE2", "GSM3")] == np.float32(1e-3)
    assert np.isnan(frame.loc["ENSG4", ("GSE1", "GSM1")])
    only = load_dataset(written[1], key="GSE2")
    pd.testing.assert_frame_equal(only, _expected("GSE2"), check_names=False)
    with pytest.raises(NotFoundError, match=r"no matrix 'GSE9' \(it has: GSE1, GSE2\)"):
        load_dataset(written[1], key="GSE9")


def test_as_anndata(written: tuple[Path, Path]) -> None:
    adata = load_dataset(written[0], as_anndata=True)
    assert adata.shape == (2, 3)
    assert adata.obs_names.tolist() == ["GSM1", "GSM2"]
    assert adata.var.loc["ENSG2", "symbol"] == "SYM2"
    assert adata.X[1, 1] == np.float32(7.0)


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"expected a \.zip, \.parquet or \.h5ad .* found suffix '\.csv'"):
        load_dataset(tmp_path / "x.csv")
    bogus = tmp_path / "other.zip"
    with zipfile.ZipFile(bogus, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(FormatError, match=r"other\.zip: expected <KEY>/<KEY>\.tsv matrices"):
        load_dataset(bogus)


def test_zip_loads_with_pandas_only(tmp_path: Path) -> None:
    path = tmp_path / "one.zip"
    write_tsv_zip(_built(["GSE1", "GSE2"]), path)
    script = (
        "import sys\n"
        "for name in ('pyarrow', 'anndata', 'scipy', 'sqlalchemy', 'h5py'):\n"
        "    sys.modules[name] = None\n"
        "from genemill.client import load_dataset\n"
        f"frame = load_dataset({str(path)!r}, key='GSE1')\n"
        "print(frame.shape, float(frame.loc['ENSG2', 'GSM1']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert done.stdout.strip() == "(3, 2) 2.25"
