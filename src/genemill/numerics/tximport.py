"""Gene-level summaries of transcript estimates, computed exactly as Bioconductor tximport does.

Reference: Soneson, Love & Robinson (2015) F1000Research 4:1521; the algorithm below is
``tximport::summarizeToGene`` (list method), ``tximport:::makeCountsFromAbundance`` and
``tximport:::replaceMissingLength`` of tximport 1.26, for ``txIn = TRUE, txOut = FALSE``.

For a gene ``g`` with transcripts ``T(g)`` and sample ``j`` (TPM ``a``, counts ``c``, effective
length ``l``):

* abundance ``A[g,j] = Σ_{t∈T(g)} a[t,j]`` and counts ``C[g,j] = Σ c[t,j]``;
* length ``L[g,j] = Σ a[t,j]·l[t,j] / A[g,j]`` (abundance-weighted mean effective length). Where
  ``A[g,j] = 0`` this is 0/0: if the gene has TPM 0 in *every* sample its row becomes the mean over
  its transcripts of each transcript's mean length across samples; otherwise the missing cells
  become the geometric mean of the gene's defined lengths in the other samples;
* ``countsFromAbundance``: ``"no"`` keeps ``C``; ``"scaledTPM"`` is ``A`` rescaled per sample to
  the column sum of ``C``; ``"lengthScaledTPM"`` is ``A[g,j]·mean_j(L[g,·])`` rescaled the same way.
  (``"dtuScaledTPM"`` applies only to transcript-level output and is not offered here.)

Genes come out sorted by code point — the order of R's ``rowsum`` over a factor whose levels R
sorts with the collation of ``LC_COLLATE``; under a C / C.UTF-8 collation (and for Ensembl-style ids
in any locale) that is the same order.

Where genemill differs from tximport on purpose: a transcript missing from ``tx2gene`` is an error
unless ``missing="drop"`` (tximport drops it with only a message), and ``ignore_tx_version`` /
``ignore_after_bar`` are applied to the ``tx2gene`` transcript ids as well as to the quantified ones
(tximport trims only the latter, so a versioned ``tx2gene`` matched nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from genemill.errors import InputError

__all__ = [
    "CountsFromAbundance",
    "GeneEstimates",
    "GeneMapping",
    "MissingPolicy",
    "TranscriptEstimates",
    "map_transcripts",
    "replace_missing_length",
    "scale_counts_from_abundance",
    "summarize_to_genes",
]

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]
CountsFromAbundance = Literal["no", "scaledTPM", "lengthScaledTPM"]
MissingPolicy = Literal["error", "drop"]

_AFTER_DOT = re.compile(r"\..*", re.DOTALL)
_AFTER_BAR = re.compile(r"\|.*", re.DOTALL)


@dataclass(frozen=True)
class TranscriptEstimates:
    """Transcript × sample matrices, rows in ``transcript_ids`` order.

    ``abundance`` is TPM, ``counts`` estimated fragments, ``length`` effective length in bases;
    each float64 of shape ``(t, s)``.
    """

    transcript_ids: ObjectArray
    abundance: FloatArray
    counts: FloatArray
    length: FloatArray

    def __post_init__(self) -> None:
        shape = (len(self.transcript_ids), self.abundance.shape[1] if self.abundance.ndim == 2 else -1)
        for name in ("abundance", "counts", "length"):
            found = getattr(self, name).shape
            if found != shape:
                msg = f"{name} must have shape {shape} (transcripts × samples), found {found}"
                raise ValueError(msg)


@dataclass(frozen=True)
class GeneMapping:
    """Which gene each quantified transcript belongs to.

    ``kept`` (shape ``(t,)``) marks transcripts found in tx2gene; ``gene_index`` (one per kept
    transcript) indexes ``gene_ids`` (sorted, unique); ``missing`` lists the transcripts dropped.
    """

    gene_ids: ObjectArray
    gene_index: npt.NDArray[np.intp]
    kept: npt.NDArray[np.bool_]
    missing: ObjectArray


@dataclass(frozen=True)
class GeneEstimates:
    """Gene × sample matrices (float64, shape ``(g, s)``), rows in ``gene_ids`` order."""

    gene_ids: ObjectArray
    abundance: FloatArray
    counts: FloatArray
    length: FloatArray
    counts_from_abundance: CountsFromAbundance
    dropped_transcripts: ObjectArray


def map_transcripts(
    transcript_ids: npt.ArrayLike,
    tx2gene_transcripts: npt.ArrayLike,
    tx2gene_genes: npt.ArrayLike,
    *,
    ignore_tx_version: bool = False,
    ignore_after_bar: bool = False,
    missing: MissingPolicy = "error",
    source: str | None = None,
) -> GeneMapping:
    """Assign each quantified transcript to its gene (tximport ``cleanTx2Gene`` + matching).

    Duplicated tx2gene transcripts keep their first row. ``ignore_tx_version`` cuts every id at
    its first ``.``, ``ignore_after_bar`` at its first ``|`` (version wins if both are set, as in
    tximport). ``source`` names the quantification files in error messages.

    Raises
    ------
    InputError
        No transcript matches tx2gene, or some do not and ``missing="error"``.
    """
    if missing not in ("error", "drop"):
        msg = f"missing must be 'error' or 'drop', found {missing!r}"
        raise ValueError(msg)
    trim = {"ignore_tx_version": ignore_tx_version, "ignore_after_bar": ignore_after_bar}
    ids = _trim(np.asarray(transcript_ids, dtype=object), **trim)
    table_tx = _trim(np.asarray(tx2gene_transcripts, dtype=object), **trim)
    table_gene = np.asarray(tx2gene_genes, dtype=object)
    import pandas as pd  # here, not at module level: `import genemill.rnaseq` stays light

    # get_indexer needs unique keys; duplicated() keeps the first row, like cleanTx2Gene. One hash
    # table when the tx2gene transcripts are already unique (the usual case).
    table_index = pd.Index(table_tx)
    first: slice | npt.NDArray[np.bool_] = slice(None)
    if not table_index.is_unique:
        first = ~table_index.duplicated(keep="first")
        table_index = pd.Index(table_tx[first])
    position = table_index.get_indexer(ids)
    kept = position >= 0
    if not kept.any():
        _raise_no_match(ids, table_tx, source)
    missing_ids = np.asarray(transcript_ids, dtype=object)[~kept]
    if missing_ids.size and missing == "error":
        _raise_missing(missing_ids, len(ids), table_tx, source)
    genes = table_gene[first][position[kept]].astype(str)
    gene_ids, gene_index = np.unique(genes, return_inverse=True)
    return GeneMapping(
        gene_ids=gene_ids.astype(object),
        gene_index=gene_index.astype(np.intp).reshape(-1),
        kept=kept,
        missing=missing_ids,
    )


def _trim(ids: ObjectArray, *, ignore_tx_version: bool, ignore_after_bar: bool = False) -> ObjectArray:
    pattern = _AFTER_DOT if ignore_tx_version else _AFTER_BAR if ignore_after_bar else None
    if pattern is None:
        return ids
    return np.asarray([pattern.sub("", str(identifier)) for identifier in ids], dtype=object)


def _raise_no_match(ids: ObjectArray, table_tx: ObjectArray, source: str | None) -> None:
    msg = (
        f"none of the {len(ids)} transcripts in {source or 'the quantification files'} is in "
        f"tx2gene: file ids look like {_examples(ids)}, tx2gene ids like {_examples(table_tx)}; "
        "check that both come from the same annotation (ignore_tx_version=True or "
        "ignore_after_bar=True may help)"
    )
    raise InputError(msg)


def _raise_missing(missing_ids: ObjectArray, total: int, table_tx: ObjectArray, source: str | None) -> None:
    trimmed_table = set(_trim(table_tx, ignore_tx_version=True).tolist())
    trimmed_missing = _trim(missing_ids, ignore_tx_version=True).tolist()
    fixable = sum(identifier in trimmed_table for identifier in trimmed_missing)
    hint = f"; ignore_tx_version=True would match {fixable} of them" if fixable else ""
    msg = (
        f"{len(missing_ids)} of {total} transcripts in {source or 'the quantification files'} "
        f"are missing from tx2gene (e.g. {_examples(missing_ids)}); pass missing='drop' to drop "
        f"them as tximport does{hint}"
    )
    raise InputError(msg)


def _examples(ids: ObjectArray, count: int = 3) -> str:
    shown = ", ".join(repr(str(identifier)) for identifier in ids[:count])
    return f"[{shown}{', …' if len(ids) > count else ''}]"


def summarize_to_genes(
    estimates: TranscriptEstimates,
    mapping: GeneMapping,
    *,
    counts_from_abundance: CountsFromAbundance = "no",
) -> GeneEstimates:
    """Sum transcript estimates to genes as ``tximport(..., txOut = FALSE)`` does.

    Parameters
    ----------
    estimates
        Transcript × sample TPM, counts and effective lengths.
    mapping
        From :func:`map_transcripts` on ``estimates.transcript_ids``.
    counts_from_abundance
        ``"no"``, ``"scaledTPM"`` or ``"lengthScaledTPM"`` (see the module docstring).

    Returns
    -------
    GeneEstimates with ``(g, s)`` abundance (TPM), counts and length (bases).
    """
    if counts_from_abundance not in ("no", "scaledTPM", "lengthScaledTPM"):
        msg = (
            "counts_from_abundance must be 'no', 'scaledTPM' or 'lengthScaledTPM', "
            f"found {counts_from_abundance!r}"
        )
        raise ValueError(msg)
    if mapping.kept.shape != (len(estimates.transcript_ids),):
        msg = f"mapping covers {mapping.kept.shape[0]} transcripts, estimates {len(estimates.transcript_ids)}"
        raise ValueError(msg)
    # Sort the kept rows by gene once; every gene then is one contiguous block for reduceat.
    order = np.argsort(mapping.gene_index, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(mapping.gene_index[order]) != 0])
    rows = np.flatnonzero(mapping.kept)[order]
    abundance_tx = estimates.abundance[rows]
    length_tx = estimates.length[rows]
    abundance = np.add.reduceat(abundance_tx, starts, axis=0)
    counts = np.add.reduceat(estimates.counts[rows], starts, axis=0)
    weighted = np.add.reduceat(abundance_tx * length_tx, starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        length = weighted / abundance
    n_transcripts = np.diff(np.r_[starts, len(rows)])
    average_length = np.add.reduceat(length_tx.mean(axis=1), starts) / n_transcripts
    length = replace_missing_length(length, average_length)
    if counts_from_abundance != "no":
        counts = scale_counts_from_abundance(counts, abundance, length, method=counts_from_abundance)
    return GeneEstimates(
        gene_ids=mapping.gene_ids,
        abundance=abundance,
        counts=counts,
        length=length,
        counts_from_abundance=counts_from_abundance,
        dropped_transcripts=mapping.missing,
    )


def replace_missing_length(length: FloatArray, average_length: FloatArray) -> FloatArray:
    """Fill NaN gene lengths as ``tximport:::replaceMissingLength`` does.

    ``length`` is ``(g, s)``; ``average_length`` ``(g,)`` is each gene's mean over transcripts of
    the per-transcript mean length across samples. Rows that are NaN in every sample take
    ``average_length``; other NaN cells take the geometric mean of the row's defined cells.
    """
    result = np.array(length, dtype=np.float64, copy=True)
    missing = np.isnan(result)
    all_missing = missing.all(axis=1)
    result[all_missing] = average_length[all_missing, np.newaxis]
    partial = missing.any(axis=1) & ~all_missing
    if partial.any():
        block = result[partial]
        holes = np.isnan(block)
        with np.errstate(divide="ignore"):
            logs = np.where(holes, 0.0, np.log(np.where(holes, 1.0, block)))
        geometric = np.exp(logs.sum(axis=1) / (~holes).sum(axis=1))
        result[partial] = np.where(holes, geometric[:, np.newaxis], block)
    return result


def scale_counts_from_abundance(
    counts: FloatArray,
    abundance: FloatArray,
    length: FloatArray,
    *,
    method: Literal["scaledTPM", "lengthScaledTPM"],
) -> FloatArray:
    """Counts generated from abundance (``tximport:::makeCountsFromAbundance``), shape ``(n, s)``.

    ``scaledTPM``: ``abundance`` scaled so each column sums to ``counts``' column sum.
    ``lengthScaledTPM``: ``abundance × rowmean(length)``, scaled the same way.
    """
    if method == "lengthScaledTPM":
        generated = abundance * length.mean(axis=1)[:, np.newaxis]
    elif method == "scaledTPM":
        generated = abundance
    else:
        msg = f"method must be 'scaledTPM' or 'lengthScaledTPM', found {method!r}"
        raise ValueError(msg)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled: FloatArray = generated * (counts.sum(axis=0) / generated.sum(axis=0))
    return scaled
