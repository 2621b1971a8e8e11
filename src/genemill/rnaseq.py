"""Import Salmon / kallisto / RSEM transcript quantifications as gene-level tables (tximport).

``tximport(paths, tx2gene)`` reads one quantification file per sample, checks that all samples
quantified the same transcripts, and summarises them to genes with
:func:`genemill.numerics.tximport.summarize_to_genes`, giving the numbers Bioconductor's
``tximport(files, type=..., tx2gene=..., countsFromAbundance=...)`` gives (tested to a relative
1e-9 on real Salmon output).

Sample names: the parent directory for the canonical file names (``<sample>/quant.sf[.gz]``,
``<sample>/abundance.tsv[.gz]``), otherwise the file name without ``.gz`` and its format suffix
(``SRR5125621.quant.sf.gz`` → ``SRR5125621``, ``Sample_1.sf`` → ``Sample_1``); pass
``sample_names=`` to choose them.

Start-up cost: ``import genemill.rnaseq`` loads NumPy and returns. pandas and pyarrow (~0.3–0.6 s
to import; the result's DataFrames and the tx2gene readers need them) load in a background thread
started by the import, which also runs both parsers once on a one-row input (Arrow and pandas set
themselves up on first use). ``tximport`` reads the quantification files meanwhile (Arrow's CSV
parser and zlib run without the GIL) and waits for that thread only when it needs tx2gene, so a
fresh process pays for the two side by side rather than one after the other, and a later first
call pays for neither.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from genemill.errors import InputError, SalmonFormatError
from genemill.formats.salmon import TranscriptQuant, read_quant, read_salmon_meta_info
from genemill.numerics.tximport import (
    CountsFromAbundance,
    MissingPolicy,
    TranscriptEstimates,
    map_transcripts,
    summarize_to_genes,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "QuantType",
    "TximportResult",
    "read_transcript_estimates",
    "sample_name",
    "tximport",
    "wait_for_readers",
]

QuantType = Literal["salmon", "kallisto", "rsem"]
PathLike = str | os.PathLike[str]

_CANONICAL_NAMES = ("quant.sf", "abundance.tsv")
_SUFFIXES = (".quant.sf", ".isoforms.results", ".sf", ".tsv", ".results")


@dataclass(frozen=True)
class TximportResult:
    """Gene × sample tables (index: gene ids in code-point order; columns: sample names).

    ``counts`` are estimated fragments (or generated from abundance, see
    ``counts_from_abundance``), ``abundance`` TPM, ``length`` the abundance-weighted effective
    gene length in bases. ``dropped_transcripts`` lists quantified transcripts that were not in
    tx2gene (only non-empty with ``missing="drop"``).
    """

    counts: pd.DataFrame
    abundance: pd.DataFrame
    length: pd.DataFrame
    counts_from_abundance: CountsFromAbundance
    dropped_transcripts: tuple[str, ...]


def tximport(
    paths: Sequence[PathLike],
    tx2gene: pd.DataFrame | PathLike,
    *,
    type: QuantType = "salmon",
    counts_from_abundance: CountsFromAbundance = "no",
    ignore_tx_version: bool = False,
    ignore_after_bar: bool = False,
    missing: MissingPolicy = "error",
    sample_names: Sequence[str] | None = None,
    tx2gene_order: Literal["transcript_gene", "gene_transcript"] = "transcript_gene",
) -> TximportResult:
    """Summarise transcript quantifications to genes as Bioconductor ``tximport`` does.

    Parameters
    ----------
    paths
        One quantification file per sample (plain or gzip).
    tx2gene
        A DataFrame with ``transcript_id`` and ``gene_id`` columns (otherwise its first two
        columns, transcript then gene, as tximport reads it), or the path of a GTF
        (``.gtf``/``.gtf.gz``) or of a two-column table read with ``tx2gene_order``.
    type
        ``"salmon"``, ``"kallisto"`` or ``"rsem"`` (``*.isoforms.results``).
    counts_from_abundance
        ``"no"``, ``"scaledTPM"`` or ``"lengthScaledTPM"``.
    ignore_tx_version, ignore_after_bar
        Cut transcript ids at the first ``.`` / ``|`` before matching (both sides).
    missing
        ``"error"`` (default) when a quantified transcript is not in tx2gene, or ``"drop"`` it
        as tximport does.

    Raises
    ------
    SalmonFormatError
        A malformed quantification file.
    InputError
        Samples with different transcripts, duplicate sample names, or transcripts missing from
        tx2gene.
    """
    files = [Path(path) for path in paths]
    names = _sample_names(files, sample_names)
    estimates = read_transcript_estimates(files, type=type)
    wait_for_readers()
    import pandas as pd

    table = _tx2gene_frame(tx2gene, tx2gene_order)
    mapping = map_transcripts(
        estimates.transcript_ids,
        table.iloc[:, 0].to_numpy(dtype=object),
        table.iloc[:, 1].to_numpy(dtype=object),
        ignore_tx_version=ignore_tx_version,
        ignore_after_bar=ignore_after_bar,
        missing=missing,
        source=_describe(files),
    )
    genes = summarize_to_genes(estimates, mapping, counts_from_abundance=counts_from_abundance)
    index = pd.Index(genes.gene_ids, name="gene_id", dtype=object)
    columns = pd.Index(names, name="sample", dtype=object)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=index, columns=columns, copy=False)

    return TximportResult(
        counts=frame(genes.counts),
        abundance=frame(genes.abundance),
        length=frame(genes.length),
        counts_from_abundance=genes.counts_from_abundance,
        dropped_transcripts=tuple(str(name) for name in genes.dropped_transcripts),
    )


def read_transcript_estimates(
    paths: Sequence[PathLike], *, type: QuantType = "salmon"
) -> TranscriptEstimates:
    """Read one file per sample into transcript × sample matrices (rows in the first file's order).

    Files may list the same transcripts in a different order (they are aligned by name); a file
    with a different set of transcripts is an error. RSEM lengths below 1 are raised to 1, as
    tximport does.
    """
    files = [Path(path) for path in paths]
    if not files:
        msg = "no quantification files given"
        raise InputError(msg)
    absent = [str(path) for path in files if not path.is_file()]
    if absent:
        msg = f"{len(absent)} quantification file(s) not found: {', '.join(absent[:5])}"
        raise FileNotFoundError(msg)
    # One file at a time into preallocated matrices: peak memory is the matrices plus one file.
    first = _read_one(files[0], type)
    reference = first.names
    shape = (len(reference), len(files))
    abundance, counts, length = np.empty(shape), np.empty(shape), np.empty(shape)
    for column, path in enumerate(files):
        quant = first if column == 0 else _align(_read_one(path, type), reference, path, files[0])
        abundance[:, column] = quant.tpm
        counts[:, column] = quant.num_reads
        length[:, column] = quant.effective_length
        del quant
    if type == "rsem":
        length[length < 1] = 1.0
    return TranscriptEstimates(transcript_ids=reference, abundance=abundance, counts=counts, length=length)


def _load_table_readers() -> None:
    """Import the tx2gene readers (pandas, pyarrow) and run both parsers once on a one-row input.

    Arrow's CSV reader and pandas set themselves up on first use (~3-5 ms): done here, in the
    background, that set-up does not land on the first ``tximport`` call. Any error is left for
    the call itself to raise, in the caller's thread.
    """
    try:
        from genemill.formats.gtf import read_tx2gene_table

        read_quant(
            io.BytesIO(b"Name\tLength\tEffectiveLength\tTPM\tNumReads\nt\t2\t1\t1\t1\n"),
            source_format="salmon",
        )
        read_tx2gene_table(io.BytesIO(b"t\tg\n"))
    except Exception:  # noqa: BLE001 - the call raises it again, where it can be handled
        return


def _in_background(work: Callable[[], None], name: str) -> Callable[[], None]:
    """Start ``work`` in a daemon thread; return a function that waits for it to end."""
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread.join


def _read_one(path: Path, source_format: QuantType) -> TranscriptQuant:
    with path.open("rb") as fh:
        quant = read_quant(fh, source_format=source_format)
    meta_path = path.parent / "aux_info" / "meta_info.json"
    if source_format == "salmon" and _base_name(path) == "quant.sf" and meta_path.is_file():
        # A quant.sf cut at a line boundary still parses; Salmon's own row count catches it.
        with meta_path.open("rb") as fh:
            expected = read_salmon_meta_info(fh).num_targets
        if expected is not None and expected != len(quant):
            msg = f"truncated file: {len(quant)} transcript rows, but {meta_path} reports {expected} targets"
            raise SalmonFormatError(msg, path=str(path))
    return quant


def _align(quant: TranscriptQuant, reference: np.ndarray, path: Path, first: Path) -> TranscriptQuant:
    """Return ``quant`` with rows in ``reference`` order, or raise if the transcripts differ."""
    if len(quant) == len(reference) and np.array_equal(quant.names, reference):
        return quant
    import pandas as pd

    position = pd.Index(quant.names).get_indexer(reference)
    if len(quant) != len(reference) or (position < 0).any():
        absent = reference[position < 0][:3].tolist()
        msg = (
            f"{path} quantifies {len(quant)} transcripts and {first} {len(reference)}; all samples "
            f"must use the same transcriptome index (e.g. not in {path.name}: {absent})"
        )
        raise InputError(msg)
    return TranscriptQuant(
        names=reference,
        length=quant.length[position],
        effective_length=quant.effective_length[position],
        tpm=quant.tpm[position],
        num_reads=quant.num_reads[position],
        source_format=quant.source_format,
    )


def _base_name(path: Path) -> str:
    return path.name[:-3] if path.name.endswith(".gz") else path.name


def sample_name(path: PathLike) -> str:
    """Return the sample name genemill gives a quantification file (see the module docstring)."""
    file = Path(path)
    base = _base_name(file)
    if base in _CANONICAL_NAMES and file.parent.name:
        return file.parent.name
    for suffix in _SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base


def _sample_names(files: Sequence[Path], given: Sequence[str] | None) -> list[str]:
    names = [sample_name(path) for path in files] if given is None else [str(name) for name in given]
    if len(names) != len(files):
        msg = f"{len(names)} sample names for {len(files)} files"
        raise InputError(msg)
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        msg = f"duplicate sample names {duplicated}; pass sample_names= to name the files uniquely"
        raise InputError(msg)
    return names


def _tx2gene_frame(
    tx2gene: pd.DataFrame | PathLike, order: Literal["transcript_gene", "gene_transcript"]
) -> pd.DataFrame:
    import pandas as pd

    from genemill.formats.gtf import read_tx2gene_gtf, read_tx2gene_table

    if isinstance(tx2gene, pd.DataFrame):
        if {"transcript_id", "gene_id"} <= set(tx2gene.columns):
            return tx2gene[["transcript_id", "gene_id"]]
        if tx2gene.shape[1] < 2:
            msg = f"tx2gene needs two columns (transcript, gene), found {list(tx2gene.columns)}"
            raise InputError(msg)
        return tx2gene.iloc[:, :2].astype(str)
    path = Path(tx2gene)
    with path.open("rb") as fh:
        if _base_name(path).endswith(".gtf"):
            return read_tx2gene_gtf(fh)
        return read_tx2gene_table(fh, order=order)


def _describe(files: Sequence[Path]) -> str:
    if len(files) == 1:
        return str(files[0])
    return f"{files[0]} (and the other {len(files) - 1} samples, same transcripts)"


# pandas (for the result) and the tx2gene readers (pandas, pyarrow) load in the background from
# import on, while the caller goes on and while the first call reads its quantification files.
_readers_loaded = _in_background(_load_table_readers, "genemill-load-table-readers")


def wait_for_readers() -> None:
    """Return once the background loading started by ``import genemill.rnaseq`` has finished.

    ``tximport`` waits for it by itself; call this only to keep that loading off a measurement
    of a first call (as a session that imported the module earlier would have it).
    """
    _readers_loaded()
