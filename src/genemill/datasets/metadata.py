"""Sample and experiment metadata in refine.bio's dataset vocabulary, plus genemill's provenance.

* ``sample_metadata(sample)``: refine.bio's ``Sample.to_metadata_dict`` keys (``refinebio_title`` …
  ``refinebio_processor_version``, ``refinebio_organism`` as upper snake case, ``refinebio_platform``
  as ``"<title> (<code>)"``, ``refinebio_processed`` = has raw data, ``refinebio_annotations`` = the
  raw source records) plus ``genemill_*`` keys (age value and unit, technology, platform accession).
* ``submitter_fields(sample)``: the flattened submitter annotations of the metadata TSV —
  ``characteristics_ch1_<key>`` for GEO, ``characteristic_<key>`` for ArrayExpress and SRA,
  ``variable_<name>`` for ArrayExpress ``Factor Value[<name>]``; repeated keys joined with ``"; "``.
* ``experiment_metadata(experiment, samples)``: refine.bio's experiment keys.
* ``metadata_tsv_columns(rows)``: ``refinebio_accession_code``, ``experiment_accession``, the other
  ``refinebio_*`` fields sorted (without ``refinebio_annotations``), then the submitter fields sorted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from genemill.store.models import HARMONIZED_FIELDS, Experiment, Sample

__all__ = [
    "experiment_metadata",
    "metadata_tsv_columns",
    "sample_metadata",
    "submitter_fields",
]

_FACTOR = re.compile(r"^factor\s*value\s*\[(.+)\]$", re.IGNORECASE)


def sample_metadata(sample: Sample, *, processor: dict[str, Any] | None = None) -> dict[str, Any]:
    """refine.bio's sample metadata dict (``processor``: id, name, version of the result used)."""
    platform = sample.platform
    platform_text = None
    if platform is not None:
        code = platform.internal_name or platform.accession
        platform_text = f"{platform.title or platform.accession} ({code})"
    out: dict[str, Any] = {
        "refinebio_accession_code": sample.accession,
        "refinebio_title": sample.title,
        "refinebio_organism": sample.organism.code if sample.organism else None,
        "refinebio_source_database": sample.source_database,
        "refinebio_source_archive_url": sample.source_archive_url,
        "refinebio_platform": platform_text,
        "refinebio_processed": sample.has_raw,
        "refinebio_annotations": [sample.annotations] if sample.annotations else [],
        "refinebio_processor_id": (processor or {}).get("id"),
        "refinebio_processor_name": (processor or {}).get("name"),
        "refinebio_processor_version": (processor or {}).get("version"),
        "genemill_age_value": sample.age_value,
        "genemill_age_unit": sample.age_unit,
        "genemill_technology": sample.technology.value,
        "genemill_platform_accession": platform.accession if platform else None,
    }
    for name in HARMONIZED_FIELDS:
        out[f"refinebio_{name}"] = getattr(sample, name)
    return out


def _field_prefix(source_database: str) -> str:
    return "characteristics_ch1_" if source_database.upper() == "GEO" else "characteristic_"


def submitter_fields(sample: Sample) -> dict[str, str]:
    """The submitter's own annotations, flattened to one text column per key."""
    collected: dict[str, list[str]] = {}
    prefix = _field_prefix(sample.source_database or "")
    for pair in sample.annotations.get("characteristics", []):
        if len(pair) == 2 and str(pair[0]).strip():
            collected.setdefault(prefix + str(pair[0]).strip(), []).append(str(pair[1]))
    for key, values in (sample.annotations.get("fields") or {}).items():
        match = _FACTOR.match(str(key).strip())
        if match:
            items = values if isinstance(values, list) else [values]
            collected.setdefault(f"variable_{match.group(1).strip()}", []).extend(str(v) for v in items)
    return {key: "; ".join(dict.fromkeys(values)) for key, values in collected.items()}


def experiment_metadata(experiment: Experiment, samples: Iterable[str]) -> dict[str, Any]:
    """refine.bio's experiment dict for the dataset, listing the samples the dataset used."""
    organisms = sorted({s.organism.code for s in experiment.samples if s.organism})
    return {
        "accession_code": experiment.accession,
        "title": experiment.title,
        "organisms": organisms,
        "sample_accession_codes": list(samples),
        "description": experiment.description,
        "protocol_description": experiment.protocol_description,
        "technology": experiment.technology,
        "submitter_institution": experiment.submitter_institution,
        "has_publication": experiment.has_publication,
        "publication_title": experiment.publication_title,
        "publication_doi": experiment.publication_doi,
        "pubmed_id": experiment.pubmed_id or "",
        "source_first_published": _iso(experiment.source_first_published),
        "source_last_modified": _iso(experiment.source_last_modified),
        "source_database": experiment.source_database,
        "source_url": experiment.source_url,
        "alternate_accession_codes": experiment.alternate_accessions,
    }


def metadata_tsv_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Column order of a metadata TSV for these rows (see the module docstring)."""
    keys: set[str] = set()
    for row in rows:
        keys.update(row)
    fixed = ["refinebio_accession_code", "experiment_accession"]
    refinebio = sorted(k for k in keys if k.startswith("refinebio_") and k not in fixed)
    refinebio = [k for k in refinebio if k != "refinebio_annotations"]
    genemill = sorted(k for k in keys if k.startswith("genemill_"))
    submitter = sorted(k for k in keys if k not in fixed and not k.startswith(("refinebio_", "genemill_")))
    return [*fixed, *refinebio, *genemill, *submitter]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
