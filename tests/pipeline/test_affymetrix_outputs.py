"""Shared rows and files under parallel sample runs: the platform row race, output file names."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from genemill.config import Settings
from genemill.pipeline.affy_reference import platform_accession
from genemill.pipeline.affymetrix import _platform_row, process_affymetrix
from genemill.pipeline.private import create_cel_experiment
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.models import Platform, Technology
from genemill.store.results import current_values

DATA = Path(__file__).resolve().parents[2] / "data"
FOCUS = DATA / "affy-hg-focus"
CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]


def test_platform_row_race_lost_to_a_concurrent_insert(settings: Settings) -> None:
    """Both backends: the loser's insert fails on the unique key in its savepoint and re-selects."""
    db = Database(settings.resolved_database_url)
    db.migrate()
    found: dict[str, object] = {}
    rolled_back: list[str] = []  # proves the loser took the savepoint path (not a late select)
    event.listen(db.engine, "rollback_savepoint", lambda _conn, name, _ctx: rolled_back.append(name))
    try:
        with Session(db.engine) as first:
            accession = platform_accession("HG-Focus")
            first.add(
                Platform(accession=accession, internal_name="hgfocus", technology=Technology.MICROARRAY)
            )
            first.flush()  # holds the unique key (and on SQLite the write lock), not committed yet

            def loser() -> None:
                with Session(db.engine) as second:
                    try:
                        row = _platform_row(second, "HG-Focus")
                        second.commit()
                        found["id"] = row.id
                    except Exception as exc:  # reported to the main thread  # noqa: BLE001
                        found["error"] = exc

            thread = threading.Thread(target=loser)
            thread.start()
            time.sleep(0.5)  # the loser has selected nothing and now waits on its insert
            first.commit()
            winner_id = first.scalar(select(Platform.id).where(Platform.accession == accession))
            thread.join(timeout=30)
        assert "error" not in found, found.get("error")
        assert found["id"] == winner_id
        assert len(rolled_back) == 1
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(Platform)) == 1
    finally:
        db.dispose()


def test_per_sample_outputs_never_share_a_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    db = Database(settings.resolved_database_url)
    db.migrate()
    try:
        accession = create_cel_experiment(settings, db, CELS, title="pair", cdf=FOCUS / "HG-Focus.CDF.gz")
        paths = {}
        with db.session() as session:
            experiment = queries.get_experiment(session, accession)
            for sample in experiment.samples:  # one run per sample, as sample jobs do
                outcome = process_affymetrix(settings, session, experiment, [sample], method="mas5")
                assert outcome.processed == [sample.accession]
            together = process_affymetrix(
                settings, session, experiment, list(experiment.samples), method="mas5"
            )
            assert len(together.processed) == 2
        with db.session() as session:
            experiment = queries.get_experiment(session, accession)
            for sample in experiment.samples:
                paths[sample.accession] = {
                    f.path for r in sample.results for f in r.files if f.kind == "expression:probeset"
                }
                current = current_values(sample, kind="expression:probeset")
                assert current is not None
                assert current.path.is_file()
        all_paths = set().union(*paths.values())
        assert len(all_paths) == 3  # sample 1 alone, sample 2 alone, the pair: three names
        assert all(Path(p).is_file() for p in all_paths)  # no run overwrote or moved another's file
        assert all(Path(p).name.startswith("affy-mas5-hgfocus-") for p in all_paths)
    finally:
        db.dispose()
