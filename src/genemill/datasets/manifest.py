"""The dataset's self-description: ``aggregated_metadata.json``, README and license notice.

``aggregated_metadata(built)`` has refine.bio's keys — ``num_experiments``, ``quant_sf_only``,
``aggregate_by``, ``scale_by``, ``quantile_normalized``, ``ks_statistic``, ``ks_pvalue``,
``ks_warning``, ``samples``, ``num_samples``, ``experiments``, ``created_at`` — and genemill's:
``excluded_samples`` (every requested sample left out, with reason code, detail and the sentence),
``num_excluded_samples``, and ``genemill`` (version, the spec, and per matrix its samples, gene
counts, value scale, QN target used and KS result). Each sample dict carries
``genemill_processing``: result id, processor, version, parameters, input and file sha256, value
type, and whether it is a submitter table. ``ks_*`` at the top are the worst over all matrices.
"""

from __future__ import annotations

from typing import Any

from genemill import __version__ as genemill_version
from genemill.datasets.build import BuiltDataset, GroupMatrix
from genemill.datasets.exclusions import Exclusion

__all__ = ["LICENSE_TEXT", "aggregated_metadata", "excluded_rows", "readme_text"]

LICENSE_TEXT = """\
This dataset is distributed under the Creative Commons Attribution 4.0 International license
(CC BY 4.0). The full legal code is at https://creativecommons.org/licenses/by/4.0/legalcode
and a summary at https://creativecommons.org/licenses/by/4.0/ .

You may share and adapt it for any purpose, provided you give appropriate credit: cite the
original studies (their accessions and publications are listed in aggregated_metadata.json under
"experiments") and indicate if you changed the data. No warranties are given.
"""


def _matrix_summary(matrix: GroupMatrix) -> dict[str, Any]:
    ks = matrix.ks
    return {
        "num_samples": len(matrix.samples),
        "samples": list(matrix.samples),
        "num_genes": int(matrix.genes.shape[0]),
        "num_genes_read": matrix.n_genes_read,
        "organisms": matrix.organisms,
        "value_scale": matrix.value_scale,
        "quantile_normalization": matrix.quantile_normalization,
        "ks": None
        if ks is None
        else {"statistic": ks.statistic, "pvalue": ks.pvalue, "pairs": ks.n_pairs, "warning": ks.warning},
    }


def _worst_ks(built: BuiltDataset) -> tuple[float | None, float | None, bool | None]:
    checks = [m.ks for m in built.matrices if m.ks is not None and m.ks.statistic is not None]
    if not checks:
        return None, None, None
    statistic = max(c.statistic for c in checks if c.statistic is not None)
    pvalue = min(c.pvalue for c in checks if c.pvalue is not None)
    return statistic, pvalue, any(c.warning for c in checks)


def _samples(built: BuiltDataset) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for matrix in built.matrices:
        for accession in matrix.samples:
            planned = built.planned(accession)
            if planned is None:
                continue
            entry = out.setdefault(accession, {**planned.metadata, "genemill_matrices": []})
            entry["genemill_processing"] = planned.provenance
            entry["genemill_matrices"].append(matrix.key)
    return out


def aggregated_metadata(built: BuiltDataset) -> dict[str, Any]:
    """The contents of ``aggregated_metadata.json`` (see the module docstring)."""
    spec = built.plan.spec
    statistic, pvalue, warning = _worst_ks(built)
    samples = _samples(built)
    return {
        "num_experiments": len(built.plan.experiments),
        "quant_sf_only": False,
        "aggregate_by": spec.aggregate_by.value,
        "scale_by": spec.transform.value,
        "quantile_normalized": spec.quantile_normalize,
        "ks_statistic": statistic,
        "ks_pvalue": pvalue,
        "ks_warning": warning,
        "samples": samples,
        "num_samples": len(samples),
        "experiments": built.plan.experiments,
        "created_at": built.created_at.isoformat(),
        "excluded_samples": [e.to_dict() for e in built.exclusions],
        "num_excluded_samples": len({e.sample for e in built.exclusions}),
        "genemill": {
            "version": genemill_version,
            "spec": spec.to_dict(),
            "matrices": {m.key: _matrix_summary(m) for m in built.matrices},
        },
    }


def excluded_rows(built: BuiltDataset) -> dict[str, dict[str, Any]]:
    """``filtered_samples_metadata.json``: per excluded sample its metadata, reason and sentence."""
    out: dict[str, dict[str, Any]] = {}
    for exclusion in built.exclusions:
        known = built.plan.excluded_metadata.get(exclusion.sample)
        if known is None:
            planned = built.planned(exclusion.sample)
            known = {**planned.metadata, **planned.submitter_fields} if planned else {}
        entry = out.setdefault(
            exclusion.sample, {"refinebio_accession_code": exclusion.sample, **known, "exclusions": []}
        )
        entry["exclusions"].append(exclusion.to_dict())
        entry["experiment_accession"] = entry["exclusions"][0]["experiment_accession"]
        entry["reason_code"] = "; ".join(dict.fromkeys(e["reason"] for e in entry["exclusions"]))
        entry["reason"] = " ".join(e["sentence"] for e in entry["exclusions"])
    return out


def _exclusion_lines(exclusions: tuple[Exclusion, ...]) -> list[str]:
    lines = [f"* {e.sentence}" for e in exclusions[:50]]
    if len(exclusions) > 50:
        lines.append(f"* … and {len(exclusions) - 50} more (see filtered_samples_metadata.tsv)")
    return lines


def readme_text(built: BuiltDataset) -> str:
    """README.md of the zip: what each file is, how values were made, what was left out."""
    spec = built.plan.spec
    lines = [
        "# genemill dataset",
        "",
        f"Built {built.created_at:%Y-%m-%d %H:%M} UTC by genemill {genemill_version}.",
        f"Aggregation: {spec.aggregate_by.value}; join: {spec.join.value}"
        + (f" (>= {spec.min_fraction:.0%} of samples)" if spec.join.value == "MIN_FRACTION" else "")
        + f"; duplicate genes: {spec.collapse.value}; quantile normalized: {spec.quantile_normalize}; "
        f"per-gene transform: {spec.transform.value}.",
        "",
        "## Files",
        "",
        "* `aggregated_metadata.json` — experiments, samples (with how each was processed), options,",
        "  quality checks and every excluded sample with the reason.",
        "* `<KEY>/<KEY>.tsv` — genes (rows, Ensembl ids, header `Gene`) × samples (columns, accessions);",
        "  tab-separated, empty cell = not measured.",
        "* `<KEY>/genes_<KEY>.tsv` — the same genes with gene symbol and NCBI Entrez Gene id.",
        "* `<KEY>/metadata_<KEY>.tsv` — one row per sample: `refinebio_*` harmonized fields, `genemill_*`",
        "  fields and the submitters' own annotations.",
        "* `filtered_samples_metadata.json` / `.tsv` — present when samples were left out, with why.",
        "",
        "## Matrices",
        "",
    ]
    for matrix in built.matrices:
        lines.append(
            f"* `{matrix.key}`: {len(matrix.samples)} samples × {matrix.genes.shape[0]} genes; "
            f"values: {matrix.value_scale}."
        )
    if built.exclusions:
        lines += ["", "## Samples left out", "", *_exclusion_lines(built.exclusions)]
    lines += [
        "",
        "## Reading it",
        "",
        "Python: `genemill.client.load_dataset(path)` (needs only pandas). R:",
        "`read.delim(unz(path, 'KEY/KEY.tsv'), row.names = 1, check.names = FALSE)`.",
        "",
        "License: CC BY 4.0 (LICENSE.TXT). Please cite the original studies.",
        "",
    ]
    return "\n".join(lines)
