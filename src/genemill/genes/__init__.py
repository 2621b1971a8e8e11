"""Pure: platform probe ids and submitter tables → one gene space. No network, database or settings.

Every gene-level vector genemill produces is indexed by unversioned Ensembl gene id (``gene_id``,
``ENSG…``) with the official symbol and NCBI Entrez Gene id beside it, and names the annotation
release it was computed with. The path from a platform and a table of probe values:

1. ``load_gene_annotation`` (or ``load_org_hs_eg_db``) → ``GeneAnnotation`` (``annotation``);
2. ``probe_map_from_platform_table`` → ``ProbeMap`` with mapping statistics (``probes``);
3. submitter tables only: ``parse_numeric_column``, ``detect_id_column``, ``detect_value_scale``,
   ``to_log2`` (``submitter``);
4. ``map_to_genes`` → ``GeneMatrix`` (genes × samples, gene table, ``MappingReport``) under a
   ``MultiGenePolicy`` (default ``DROP``) and a ``CollapseRule`` (default ``MEAN``); the reasons
   for the defaults are in ``genemill.genes.collapse``.
"""

from __future__ import annotations

from genemill.genes.annotation import GeneAnnotation, load_gene_annotation, load_org_hs_eg_db
from genemill.genes.collapse import (
    DEFAULT_COLLAPSE,
    DEFAULT_MULTI_GENE,
    CollapseRule,
    GeneMatrix,
    MappingReport,
    MultiGenePolicy,
    map_to_genes,
)
from genemill.genes.probes import CONTROL_PREFIX, ProbeMap, ProbeMapStats, probe_map_from_platform_table
from genemill.genes.submitter import (
    BadCell,
    IdColumnMatch,
    Log2Values,
    NumericColumn,
    ValueScale,
    detect_id_column,
    detect_value_scale,
    parse_numeric_column,
    to_log2,
)

__all__ = [
    "CONTROL_PREFIX",
    "DEFAULT_COLLAPSE",
    "DEFAULT_MULTI_GENE",
    "BadCell",
    "CollapseRule",
    "GeneAnnotation",
    "GeneMatrix",
    "IdColumnMatch",
    "Log2Values",
    "MappingReport",
    "MultiGenePolicy",
    "NumericColumn",
    "ProbeMap",
    "ProbeMapStats",
    "ValueScale",
    "detect_id_column",
    "detect_value_scale",
    "load_gene_annotation",
    "load_org_hs_eg_db",
    "map_to_genes",
    "parse_numeric_column",
    "probe_map_from_platform_table",
    "to_log2",
]
