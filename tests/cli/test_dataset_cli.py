"""`genemill dataset build | create | start | status | download` through Typer's CliRunner.

The database holds one experiment with three CONSTRUCTED processed samples (exact small values) and
one unprocessable sample, stored through the real ingest and result-recording paths.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from genemill.cli import dataset as dataset_cli
from genemill.config import Settings
from genemill.formats.records import ExperimentMetadata, PlatformRecord, SampleRecord, SeriesRecord
from genemill.pipeline.ingest import store_experiment
from genemill.store.db import Database
from genemill.store.expression import write_expression
from genemill.store.results import mark_unprocessable, record_result

runner = CliRunner()


def _app(settings: Settings) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def configure(ctx: typer.Context) -> None:
        ctx.obj = settings

    app.add_typer(dataset_cli.app, name="dataset")
    return app


@pytest.fixture
def stocked(sqlite_settings: Settings, tmp_path: Path) -> Settings:
    db = Database(sqlite_settings.resolved_database_url)
    db.migrate()
    names = ["GSM1", "GSM2", "GSM3", "GSM4"]
    records = [
        SampleRecord(accession=n, title=n, organism=["Homo sapiens"], taxon_ids=[9606], platform="GPL96")
        for n in names
    ]
    metadata = ExperimentMetadata(
        source="GEO",
        series=SeriesRecord(accession="GSE100", title="constructed"),
        platforms=[PlatformRecord(accession="GPL96", title="HG-U133A", technology="in situ oligonucleotide")],
        samples=records,
    )
    values = pd.DataFrame(
        {"GSM1": [1.0, 2.0, 3.0], "GSM2": [3.0, 1.0, 2.0], "GSM3": [2.0, 3.0, np.nan]},
        index=["ENSG1", "ENSG2", "ENSG3"],
    )
    path = tmp_path / "GSE100.parquet"
    write_expression(path, values, metadata={"value_type": "log2"})
    with db.session() as session:
        experiment = store_experiment(session, metadata)
        samples = {s.accession: s for s in experiment.samples}
        mark_unprocessable(samples["GSM4"], "CEL file is truncated")
        record_result(
            session,
            [samples[n] for n in names[:3]],
            experiment=experiment,
            processor="constructed",
            version="1",
            mode="raw",
            parameters={},
            input_sha256=[],
            files=[("expression", path)],
            annotations={"value_type": "log2"},
        )
    db.dispose()
    return sqlite_settings


def test_build_writes_a_zip_and_reports_exclusions(stocked: Settings, tmp_path: Path) -> None:
    out = tmp_path / "GSE100.zip"
    result = runner.invoke(
        _app(stocked),
        [
            "dataset",
            "build",
            "-e",
            "GSE100",
            "--no-qn",
            "--transform",
            "minmax",
            "--format",
            "zip",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "GSM4 (GSE100) is missing because it could not be processed: CEL file is truncated." in result.output
    )
    assert f"wrote {out}" in result.output.replace("\n", "")
    text = zipfile.ZipFile(out).read("GSE100/GSE100.tsv").decode().splitlines()
    assert text == ["Gene\tGSM1\tGSM2\tGSM3", "ENSG1\t0\t1\t0.5", "ENSG2\t0.5\t0\t1"]


def test_build_samples_several_formats_and_spec_errors(stocked: Settings, tmp_path: Path) -> None:
    app = _app(stocked)
    out = tmp_path / "d.zip"
    result = runner.invoke(
        app,
        [
            "dataset",
            "build",
            "-e",
            "GSE100",
            "-s",
            "GSM1,GSM2",
            "--join",
            "outer",
            "-f",
            "zip",
            "-f",
            "parquet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "d.parquet").is_file()
    bad = runner.invoke(
        app, ["dataset", "build", "-e", "GSE1", "-e", "GSE2", "-s", "GSM1", "--out", str(out)]
    )
    assert bad.exit_code != 0
    assert "--samples given 1 times for 2 experiments" in str(bad.exception)


def test_create_start_status_download(stocked: Settings, tmp_path: Path) -> None:
    app = _app(stocked)
    created = runner.invoke(app, ["dataset", "create", "-e", "GSE100", "-f", "parquet"])
    assert created.exit_code == 0, created.output
    dataset_id = created.output.strip()
    status = runner.invoke(app, ["dataset", "status", dataset_id, "--json"])
    assert json.loads(status.output)["state"] == "CREATED"
    started = runner.invoke(app, ["dataset", "start", dataset_id])
    assert started.exit_code == 0, started.output
    data = json.loads(runner.invoke(app, ["dataset", "status", dataset_id, "--json"]).output)
    assert data["state"] == "SUCCEEDED"
    assert data["summary"]["matrices"]["GSE100"]["samples"] == 3
    assert data["files"][0]["path"].endswith(f"datasets/{dataset_id}/dataset.parquet")
    target = tmp_path / "copy.parquet"
    downloaded = runner.invoke(app, ["dataset", "download", dataset_id, str(target)])
    assert downloaded.exit_code == 0, downloaded.output
    assert pd.read_parquet(target).shape == (2, 6)  # inner join: 2 genes; Gene, symbol, entrez_id + 3 samples
    missing = runner.invoke(app, ["dataset", "status", "no-such-id"])
    assert "no dataset 'no-such-id'" in str(missing.exception)


def test_build_from_a_spec_file(stocked: Settings, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"data": {"GSE100": ["GSM1", "GSM3"]}, "quantile_normalize": False, "join": "OUTER"})
    )
    out = tmp_path / "x.zip"
    result = runner.invoke(_app(stocked), ["dataset", "build", "--spec", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = zipfile.ZipFile(out).read("GSE100/GSE100.tsv").decode().splitlines()
    assert lines == ["Gene\tGSM1\tGSM3", "ENSG1\t1\t2", "ENSG2\t2\t3", "ENSG3\t3\t"]


def test_cli_spellings_map_onto_every_spec_value() -> None:
    """The CLI choices are derived from the spec enums, keep their historic spellings, and map back."""
    from genemill.cli import dataset as cli
    from genemill.datasets import spec

    pairs = {
        cli.Aggregate: (spec.AggregateBy, {"experiment", "species", "all"}),
        cli.TransformChoice: (spec.Transform, {"none", "minmax", "zscore", "robust"}),
        cli.JoinChoice: (spec.JoinKind, {"inner", "min-fraction", "outer"}),
        cli.CollapseChoice: (spec.CollapseRule, {"mean", "median", "max", "first"}),
        cli.FormatChoice: (spec.OutputFormat, {"zip", "parquet", "h5ad"}),
        cli.ValueChoice: (spec.RnaseqValue, {"lengthScaledTPM", "tpm", "counts"}),
        cli.MissingChoice: (spec.MissingTarget, {"compute", "exclude"}),
    }
    for choices, (spec_enum, spellings) in pairs.items():
        assert {c.value for c in choices} == spellings
        assert {cli._to_spec(c, spec_enum) for c in choices} == {m.value for m in spec_enum}
    assert cli._to_spec(cli.JoinChoice("min-fraction"), spec.JoinKind) == "MIN_FRACTION"
    assert cli._to_spec(cli.FormatChoice("zip"), spec.OutputFormat) == "tsv_zip"
