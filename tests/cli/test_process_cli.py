"""`genemill process` through Typer's CliRunner on real HG-Focus CELs (data/affy-hg-focus).

The truncated CEL is GENERATED (first 5000 bytes of a real CEL) to stand for a bad upload.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from genemill.cli.process import process_command
from genemill.config import Settings
from genemill.pipeline.private import create_cel_experiment
from genemill.store.db import Database
from genemill.store.models import Job

FOCUS = Path(__file__).resolve().parents[2] / "data" / "affy-hg-focus"
CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]
runner = CliRunner()


def _app(settings: Settings) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def configure(ctx: typer.Context) -> None:
        ctx.obj = settings

    app.command("process")(process_command)
    return app


def test_process_mas5_runs_per_sample_jobs_and_reports_each_sample(
    sqlite_settings: Settings, sqlite_db: Database, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.CEL"
    truncated.write_bytes(CELS[0].read_bytes()[:5000])
    accession = create_cel_experiment(
        sqlite_settings, sqlite_db, [*CELS, truncated], title="cli", cdf=FOCUS / "HG-Focus.CDF.gz"
    )
    result = runner.invoke(_app(sqlite_settings), ["process", accession, "--method", "mas5"])
    assert result.exit_code == 0, result.output
    assert f"processed {accession} (per sample): 2 processed, 1 unprocessable" in result.output
    assert f"unprocessable {accession}-truncated: truncated.CEL" in result.output
    assert "3/3" in result.output  # the progress bar counts sample jobs
    with sqlite_db.session() as session:
        kinds = {(j.kind, j.target) for j in session.scalars(select(Job))}
    assert kinds == {
        ("process-sample", f"{accession}-{n}")
        for n in ("HG-Focus-1-121502.calvin", "HG-Focus-2-121502.calvin", "truncated")
    }


def test_process_rma_runs_one_experiment_job(sqlite_settings: Settings, sqlite_db: Database) -> None:
    accession = create_cel_experiment(
        sqlite_settings, sqlite_db, CELS, title="cli", cdf=FOCUS / "HG-Focus.CDF.gz"
    )
    app = _app(sqlite_settings)
    result = runner.invoke(app, ["process", accession])
    assert result.exit_code == 0, result.output
    assert f"processed {accession}\n" in result.output and "1/1" in result.output
    again = runner.invoke(app, ["process", accession])
    assert f"already processed {accession} (use --force to redo)" in again.output


@pytest.mark.slow
def test_process_mas5_fans_out_over_a_dask_cluster(sqlite_settings: Settings, sqlite_db: Database) -> None:
    distributed = pytest.importorskip("distributed")
    accession = create_cel_experiment(
        sqlite_settings, sqlite_db, CELS, title="cli", cdf=FOCUS / "HG-Focus.CDF.gz"
    )
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        result = runner.invoke(
            _app(sqlite_settings),
            ["process", accession, "--method", "mas5", "--scheduler", cluster.scheduler_address],
        )
        with distributed.Client(cluster) as client:
            workers_used = {
                str(event.get("worker"))
                for _, event in client.get_events("genemill-task-started")
                if isinstance(event, dict)
            }
    assert result.exit_code == 0, result.output
    assert f"processed {accession} (per sample): 2 processed, 0 unprocessable" in result.output
    assert "2/2" in result.output
    assert len(workers_used) == 2  # one sample job on each worker
