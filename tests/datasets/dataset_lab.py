"""Helpers for dataset tests: a database with processed samples and their expression files.

Values used (and what is real):

* ``hg_focus_rma`` — REAL: the RMA log2 expression of two real HG-Focus arrays computed by
  Bioconductor ``affy::rma`` (``data/affy-hg-focus/reference/HG-Focus_affy_rma_log2.tsv``), indexed
  by probe-set id. The tests store them as if the probe-set ids were gene ids (the builder treats
  ids opaquely; ``AFFX-`` controls are dropped as refine.bio does).
* ``zebrafish_genes`` — REAL Salmon quantifications of six zebrafish runs (refine.bio's SRP095529
  fixtures, ``data/rnaseq-refinebio-SRP095529``) summarized to genes by ``genemill.rnaseq.tximport``
  (equal to R tximport): counts, TPM and lengthScaledTPM.
* anything built with ``constructed(...)`` — CONSTRUCTED in the test (small, exact numbers).

``Lab`` stores experiments through the real ingest path (``store_experiment`` with metadata
records), writes the values with ``genemill.store.expression.write_expression`` and records the
result with ``genemill.store.results.record_result`` — the contract processors follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genemill.formats.records import ExperimentMetadata, PlatformRecord, SampleRecord, SeriesRecord
from genemill.pipeline.ingest import store_experiment
from genemill.store.db import Database
from genemill.store.expression import write_expression
from genemill.store.models import ProcessingState, Sample
from genemill.store.results import mark_unprocessable, record_result

REPO = Path(__file__).resolve().parents[2]
HG_FOCUS_RMA = REPO / "data" / "affy-hg-focus" / "reference" / "HG-Focus_affy_rma_log2.tsv"
ZEBRAFISH = REPO / "data" / "rnaseq-refinebio-SRP095529"

HUMAN = ("Homo sapiens", 9606)
MOUSE = ("Mus musculus", 10090)
ZEBRAFISH_ORG = ("Danio rerio", 7955)
ARRAY = "in situ oligonucleotide"
SEQUENCING = "high-throughput sequencing"


def constructed(values: dict[str, list[float]], genes: list[str]) -> pd.DataFrame:
    """A CONSTRUCTED genes × samples frame (float32)."""
    return pd.DataFrame(values, index=pd.Index(genes, name="feature_id"), dtype=np.float32)


@dataclass
class Lab:
    """Puts experiments with processed samples into a database (see the module docstring)."""

    db: Database
    root: Path

    def add(
        self,
        accession: str,
        values: pd.DataFrame | None,
        *,
        organism: tuple[str, int] = HUMAN,
        platform: str = "GPL201",
        technology: str = ARRAY,
        value_type: str = "log2",
        extra: dict[str, tuple[pd.DataFrame, str]] | None = None,
        annotation: pd.DataFrame | None = None,
        unprocessed: dict[str, str] | None = None,
        submitter: bool = False,
        has_raw: bool = True,
        source: str = "GEO",
    ) -> Path | None:
        """Store ``accession`` with one sample per column of ``values`` (processed) and ``unprocessed``
        samples (accession → ``"NEW"`` or an unprocessable reason). Returns the expression file."""
        processed = [] if values is None else [str(c) for c in values.columns]
        waiting = unprocessed or {}
        records = [
            SampleRecord(
                accession=name,
                title=f"{accession} sample {name}",
                organism=[organism[0]],
                taxon_ids=[organism[1]],
                platform=platform,
                characteristics=[("tissue", "liver"), ("replicate", str(i))],
                fields={"Sample_source_name_ch1": ["liver"]},
            )
            for i, name in enumerate([*processed, *waiting])
        ]
        metadata = ExperimentMetadata(
            source=source,
            series=SeriesRecord(
                accession=accession,
                title=f"Experiment {accession}",
                sample_accessions=[r.accession for r in records],
                platform_accessions=[platform],
            ),
            platforms=[
                PlatformRecord(accession=platform, title=f"platform {platform}", technology=technology)
            ],
            samples=records,
        )
        path = self.root / f"{accession}.parquet" if values is not None else None
        with self.db.session() as session:
            experiment = store_experiment(session, metadata)
            samples = {s.accession: s for s in experiment.samples}
            for name, reason in waiting.items():
                if reason != "NEW":
                    mark_unprocessable(samples[name], reason)
            for sample in samples.values():
                sample.has_raw = has_raw
            if values is None or path is None:
                return None
            write_expression(path, values, metadata={"value_type": value_type}, annotation=annotation)
            files = [("expression", path)]
            for kind, (frame, extra_type) in (extra or {}).items():
                extra_path = self.root / f"{accession}.{kind.replace(':', '_')}.parquet"
                write_expression(extra_path, frame, metadata={"value_type": extra_type})
                files.append((kind, extra_path))
            record_result(
                session,
                [samples[n] for n in processed],
                experiment=experiment,
                processor="test-processor",
                version="1.0",
                mode="submitter" if submitter else "raw",
                parameters={"made_by": "tests/datasets/conftest.py"},
                input_sha256=["0" * 64],
                files=files,
                annotations={"value_type": value_type},
            )
        return path

    def state(self, accession: str) -> ProcessingState:
        with self.db.session() as session:
            sample = session.query(Sample).filter_by(accession=accession).one()
            return sample.processing_state
