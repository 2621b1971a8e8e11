"""FASTA sequences, and transcript sequences cut from a genome FASTA with a GTF's exon records.

FASTA (plain or gzip, detected by the magic bytes ``1f 8b``): records start with a ``>`` line; the
record's *name* is the text after ``>`` up to the first whitespace (what Salmon, RSEM and samtools
call the sequence), the rest is a free description. Sequence lines follow, of any width; blank
lines are ignored. A sequence line before the first ``>`` and an empty name are errors.

Transcript extraction (what ``rsem-prepare-reference --gtf`` and ``gffread -w`` do): a GTF
(Ensembl/GENCODE GTF2.2, nine tab-separated columns, 1-based inclusive ``start``/``end``) gives
each ``transcript_id`` its ``exon`` rows. A transcript's sequence is the genome slice of every exon,
exons joined in ascending coordinate order; on the ``-`` strand the joined sequence is
reverse-complemented (IUPAC codes complemented, case kept). All exons of a transcript must lie on
one sequence and one strand, inside the sequence. ``drop_pseudogenes`` skips every GTF line that
contains the word ``pseudogene`` anywhere, as refine.bio does before building its indexes.

Memory: the genome is streamed one sequence (chromosome) at a time, so the peak is the largest
chromosome (about 250 MB for human chr1) plus the transcripts cut from it.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from genemill.errors import FormatError

__all__ = [
    "ExonModel",
    "extract_transcripts",
    "fasta_names",
    "read_exon_models",
    "read_fasta",
    "reverse_complement",
    "write_fasta",
]

_GZIP_MAGIC = b"\x1f\x8b"
_COMPLEMENT = bytes.maketrans(b"ACGTUNRYSWKMBDHVacgtunryswkmbdhv", b"TGCAANYRSWMKVHDBtgcaanyrswmkvhdb")
_ATTRIBUTE = {
    key: re.compile(rb"(?:^|;)\s*" + key + rb'\s+"?([^";]*)"?\s*(?:;|$)')
    for key in (b"transcript_id", b"gene_id")
}


@dataclass(frozen=True)
class ExonModel:
    """A transcript's exons: 1-based inclusive ``(start, end)`` pairs in ascending order."""

    transcript_id: str
    gene_id: str
    seqname: str
    strand: str
    exons: tuple[tuple[int, int], ...]

    @property
    def length(self) -> int:
        """Transcript length in bases."""
        return sum(end - start + 1 for start, end in self.exons)


def _name_of(fh: IO[Any]) -> str:
    name = getattr(fh, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _lines(fh: IO[Any]) -> Iterator[bytes]:
    """Yield the lines of a binary handle, gunzipping when it starts with the gzip magic."""
    if isinstance(fh, io.TextIOBase):
        yield from (line.encode() for line in fh)
        return
    if hasattr(fh, "peek"):
        magic = fh.peek(2)[:2]
    else:
        start = fh.tell()
        magic = fh.read(2)
        fh.seek(start)
    stream = gzip.GzipFile(fileobj=fh, mode="rb") if magic == _GZIP_MAGIC else fh
    try:
        yield from stream
    except EOFError as exc:
        msg = f"truncated gzip stream: {exc}"
        raise FormatError(msg, path=_name_of(fh)) from exc
    except (OSError, zlib.error) as exc:
        msg = f"corrupt gzip stream: {exc}"
        raise FormatError(msg, path=_name_of(fh)) from exc


def read_fasta(fh: IO[Any]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, sequence)`` for each record of a FASTA file (sequence as ASCII bytes).

    Raises
    ------
    FormatError
        Sequence before the first header, an empty name, or no records at all.
    """
    path = _name_of(fh)
    name: str | None = None
    parts: list[bytes] = []
    seen = False
    for line_no, line in enumerate(_lines(fh), start=1):
        if line.startswith(b">"):
            if name is not None:
                yield name, b"".join(parts)
            fields = line[1:].split(None, 1)
            if not fields:
                msg = "empty sequence name after '>'"
                raise FormatError(msg, path=path, line=line_no)
            name, parts, seen = fields[0].decode(errors="replace"), [], True
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if name is None:
            msg = f"expected a '>' header line first, found {stripped[:40].decode(errors='replace')!r}"
            raise FormatError(msg, path=path, line=line_no)
        parts.append(stripped)
    if name is not None:
        yield name, b"".join(parts)
    if not seen:
        msg = "no FASTA records (no '>' header line)"
        raise FormatError(msg, path=path)


def fasta_names(fh: IO[Any]) -> list[str]:
    """Names of a FASTA file's records, in order (sequence lines are skipped, not joined)."""
    path = _name_of(fh)
    names = [
        line[1:].split(None, 1)[0].decode(errors="replace") if line[1:].strip() else ""
        for line in _lines(fh)
        if line.startswith(b">")
    ]
    if not names:
        msg = "no FASTA records (no '>' header line)"
        raise FormatError(msg, path=path)
    if "" in names:
        msg = f"record {names.index('') + 1}: empty sequence name after '>'"
        raise FormatError(msg, path=path)
    return names


def write_fasta(records: Iterable[tuple[str, bytes]], fh: IO[bytes], *, width: int = 60) -> int:
    """Write ``(name, sequence)`` records with lines of ``width`` bases; return the record count."""
    count = 0
    for name, sequence in records:
        fh.write(b">" + name.encode() + b"\n")
        for start in range(0, len(sequence), width):
            fh.write(sequence[start : start + width] + b"\n")
        count += 1
    return count


def reverse_complement(sequence: bytes) -> bytes:
    """Reverse complement of an IUPAC nucleotide sequence (case kept)."""
    return sequence.translate(_COMPLEMENT)[::-1]


def read_exon_models(fh: IO[Any], *, drop_pseudogenes: bool = False) -> dict[str, ExonModel]:
    """Collect every transcript's exons from a GTF's ``exon`` rows (file order of transcripts).

    Raises
    ------
    FormatError
        An exon row without nine columns, ``transcript_id`` or ``gene_id``; bad coordinates; a
        transcript with exons on two sequences or strands; or no exon rows at all.
    """
    path = _name_of(fh)
    found: dict[str, tuple[str, str, str, list[tuple[int, int]]]] = {}
    for line_no, line in enumerate(_lines(fh), start=1):
        if b"\texon\t" not in line or line.startswith(b"#"):
            continue
        if drop_pseudogenes and b"pseudogene" in line:
            continue
        fields = line.rstrip(b"\r\n").split(b"\t", 8)
        if len(fields) != 9:
            msg = f"expected 9 tab-separated columns, found {len(fields)}"
            raise FormatError(msg, path=path, line=line_no)
        if fields[2] != b"exon":
            continue
        transcript, gene = (_attribute(fields[8], key, path, line_no) for key in _ATTRIBUTE)
        start, end = _coordinates(fields, path, line_no)
        seqname, strand = fields[0].decode(), fields[6].decode()
        entry = found.setdefault(transcript, (gene, seqname, strand, []))
        if entry[1:3] != (seqname, strand):
            msg = (
                f"transcript {transcript!r} has exons on {entry[1]} ({entry[2]}) and here on "
                f"{seqname} ({strand})"
            )
            raise FormatError(msg, path=path, line=line_no)
        entry[3].append((start, end))
    if not found:
        msg = "no 'exon' rows: cannot cut transcripts from the genome with this GTF"
        raise FormatError(msg, path=path)
    return {
        transcript: ExonModel(transcript, gene, seqname, strand, tuple(sorted(exons)))
        for transcript, (gene, seqname, strand, exons) in found.items()
    }


def _attribute(attributes: bytes, key: bytes, path: str, line_no: int) -> str:
    match = _ATTRIBUTE[key].search(attributes)
    if match is None or not match.group(1):
        msg = f"exon row without {key.decode()!r}: {attributes[:100].decode(errors='replace')!r}"
        raise FormatError(msg, path=path, line=line_no)
    return match.group(1).decode()


def _coordinates(fields: list[bytes], path: str, line_no: int) -> tuple[int, int]:
    start_text, end_text, strand = fields[3], fields[4], fields[6]
    if not (start_text.isdigit() and end_text.isdigit()) or int(start_text) < 1:
        msg = f"start/end must be positive integers, found {start_text!r}/{end_text!r}"
        raise FormatError(msg, path=path, line=line_no)
    if int(end_text) < int(start_text):
        msg = f"end {int(end_text)} is before start {int(start_text)}"
        raise FormatError(msg, path=path, line=line_no)
    if strand not in (b"+", b"-"):
        msg = f"strand must be '+' or '-' for an exon, found {strand.decode(errors='replace')!r}"
        raise FormatError(msg, path=path, line=line_no)
    return int(start_text), int(end_text)


def extract_transcripts(genome_fh: IO[Any], models: Mapping[str, ExonModel]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(transcript_id, sequence)`` cut from the genome, chromosome by chromosome.

    Transcripts come out in genome-sequence order, then in ``models`` order within a sequence.

    Raises
    ------
    FormatError
        An exon beyond the end of its sequence, or sequences named in the GTF that the genome
        FASTA does not hold (raised after the last genome record, naming them).
    """
    path = _name_of(genome_fh)
    by_sequence: dict[str, list[ExonModel]] = defaultdict(list)
    for model in models.values():
        by_sequence[model.seqname].append(model)
    for name, chromosome in read_fasta(genome_fh):
        for model in by_sequence.pop(name, []):
            yield model.transcript_id, _cut(chromosome, model, path)
    if by_sequence:
        missing = sorted(by_sequence)
        affected = sum(len(group) for group in by_sequence.values())
        msg = (
            f"the GTF places {affected} transcripts on {len(missing)} sequences the genome FASTA "
            f"does not have (e.g. {missing[:5]}): wrong genome assembly or GTF?"
        )
        raise FormatError(msg, path=path)


def _cut(chromosome: bytes, model: ExonModel, path: str) -> bytes:
    last = model.exons[-1][1]
    if last > len(chromosome):
        msg = (
            f"transcript {model.transcript_id!r}: exon ends at {model.seqname}:{last}, beyond the "
            f"sequence's length {len(chromosome)} (GTF and genome from different assemblies?)"
        )
        raise FormatError(msg, path=path)
    joined = b"".join(chromosome[start - 1 : end] for start, end in model.exons)
    return reverse_complement(joined) if model.strand == "-" else joined
