"""``GET /v1/dataset/{id}/?details=true``: the experiments and samples behind a request.

refine.bio (ANCHOR.md §4) adds ``experiments``, ``organism_samples`` and ``worker_version`` so the
download page can show what a dataset holds without a request per experiment. Here:

* ``experiments``: per requested experiment its anchor fields (title, PubMed id, technology,
  organisms, platforms, sample metadata fields, counts) and the requested samples (all of them for
  ``["ALL"]``) with organism, platform, technology and processing state;
* ``organism_samples``: refine.bio organism code (``HOMO_SAPIENS``) → requested sample accessions;
* ``worker_version``: the genemill version that built the files (None before the first build).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genemill.datasets.models import Dataset
from genemill.datasets.spec import ALL_SAMPLES
from genemill.store import catalog
from genemill.store.models import Organism, Sample

__all__ = ["dataset_details"]

_EXPERIMENT_FIELDS = (
    "accession_code",
    "title",
    "pubmed_id",
    "technology",
    "organism_names",
    "platform_accession_codes",
    "platform_names",
    "sample_metadata",
    "num_total_samples",
    "num_processed_samples",
    "num_downloadable_samples",
)


def _organism_code(name: str | None) -> str:
    return "_".join(name.upper().split()) if name else "UNKNOWN"


def _organisms(session: Session, accessions: list[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for start in range(0, len(accessions), 500):  # bounded IN lists on both backends
        chunk = accessions[start : start + 500]
        rows = session.execute(
            select(Sample.accession, Organism.name)
            .outerjoin(Organism, Organism.id == Sample.organism_id)
            .where(Sample.accession.in_(chunk))
        )
        found.update((accession, name) for accession, name in rows)
    return found


def dataset_details(session: Session, dataset: Dataset) -> dict[str, Any]:
    """The ``details=true`` fields of a dataset (experiments with samples, samples per organism)."""
    experiments = []
    for accession, wanted in dataset.spec.get("data", {}).items():
        detail = catalog.experiment_detail(session, accession)
        chosen = None if wanted == [ALL_SAMPLES] else set(wanted)
        samples = [s for s in detail["samples"] if chosen is None or s["accession_code"] in chosen]
        experiment = {name: detail[name] for name in _EXPERIMENT_FIELDS}
        experiment["samples"] = samples
        experiments.append(experiment)
    requested = sorted({s["accession_code"] for e in experiments for s in e["samples"]})
    organisms = _organisms(session, requested)
    organism_samples: dict[str, list[str]] = {}
    for experiment in experiments:
        for sample in experiment["samples"]:
            sample["organism"] = organisms.get(sample["accession_code"])
    for accession in requested:
        organism_samples.setdefault(_organism_code(organisms.get(accession)), []).append(accession)
    return {
        "experiments": experiments,
        "organism_samples": dict(sorted(organism_samples.items())),
        "worker_version": dataset.summary.get("worker_version"),
    }
