"""FASTQ read files: structure checks, read counts and mean read length, single or paired.

Format (the four-line form written by Illumina's bcl2fastq, SRA ``fastq-dump`` and ENA; plain or
gzip, detected by the magic bytes ``1f 8b``): each record is exactly four lines ::

    @<read name>[ <comment>]
    <sequence>
    +[<read name again>]
    <qualities, one character per base>

Multi-line (wrapped) FASTQ, allowed by the original Sanger description but not written by any
sequencer or archive genemill reads from, is rejected as malformed. Line endings may be ``\\n`` or
``\\r\\n``.

Mates of a paired run are two files with the same number of records in the same order. Record ``i``
of each file must name the same fragment: the first whitespace-separated token of the header line,
without a trailing ``/1`` or ``/2``, must be equal (``@SRR1.7 7 length=50`` / ``@SRR1.7 7
length=50`` from fastq-dump, ``@HWI-…#0/1`` / ``@HWI-…#0/2`` from older Illumina pipelines,
``@M00123:… 1:N:0`` / ``@M00123:… 2:N:0`` from Casava 1.8+).

Salmon itself reads a truncated file, a gzip stream without its trailer, or mates of different
length without complaint (it quantifies what it could read), so these checks are genemill's.
Records are checked in batches of whole lines with list operations, not one Python call per base.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from genemill.errors import FormatError

__all__ = [
    "FastqSummary",
    "ReadLengthSample",
    "check_fastq",
    "check_fastq_pair",
    "sample_read_length",
]

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 22  # 4 MiB of decompressed text per batch
_MATE_SUFFIXES = (b"/1", b"/2")


@dataclass(frozen=True)
class FastqSummary:
    """What a full pass over a FASTQ file or a mate pair found.

    ``n_reads`` counts records of one file (for a pair: fragments, i.e. records per mate file);
    ``n_bases`` counts bases over all files; ``n_files`` is 1 or 2.
    """

    n_reads: int
    n_bases: int
    n_files: int = 1

    @property
    def mean_length(self) -> float:
        """Mean bases per read (for a pair: per mate)."""
        return self.n_bases / (self.n_reads * self.n_files) if self.n_reads else 0.0


@dataclass(frozen=True)
class ReadLengthSample:
    """Mean read length over the first ``n_reads`` records (fewer when the file is shorter)."""

    n_reads: int
    mean_length: float


@dataclass
class _Batch:
    """Whole records of one chunk: header, sequence, plus and quality lines; first line number."""

    headers: list[bytes]
    sequences: list[bytes]
    pluses: list[bytes]
    qualities: list[bytes]
    first_line: int


def _name_of(fh: IO[Any]) -> str:
    name = getattr(fh, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _open_stream(fh: IO[Any]) -> IO[bytes] | gzip.GzipFile:
    """Return a binary stream of decompressed text (gzip detected by magic bytes)."""
    if hasattr(fh, "peek"):
        magic = fh.peek(2)[:2]
    else:
        start = fh.tell()
        magic = fh.read(2)
        fh.seek(start)
    if magic == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=fh, mode="rb")
    return fh


def _chunks(fh: IO[Any], path: str, size: int) -> Iterator[bytes]:
    stream = _open_stream(fh)
    try:
        while chunk := stream.read(size):
            yield chunk
    except EOFError as exc:
        msg = f"truncated gzip stream (no end-of-stream marker; the download or copy was cut short): {exc}"
        raise FormatError(msg, path=path) from exc
    except (OSError, zlib.error) as exc:
        msg = f"corrupt gzip stream: {exc}"
        raise FormatError(msg, path=path) from exc


def _batches(fh: IO[Any], *, chunk_size: int = _CHUNK) -> Iterator[_Batch]:
    """Yield whole records, checked for structure; raise on a malformed or truncated file."""
    path = _name_of(fh)
    pending: list[bytes] = []
    tail = b""
    line_no = 1
    for chunk in _chunks(fh, path, chunk_size):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        pending.extend(lines)
        whole = len(pending) - len(pending) % 4
        if whole:
            batch = _make_batch(pending[:whole], line_no, path)
            del pending[:whole]
            line_no += whole
            yield batch
    if tail:
        pending.append(tail)
    if len(pending) % 4:
        read = (line_no - 1) // 4 + 1 + len(pending) // 4
        msg = (
            f"truncated file: the last record (read {read}) has {len(pending) % 4} of 4 lines "
            f"(the file ends at line {line_no + len(pending) - 1})"
        )
        raise FormatError(msg, path=path, line=line_no + len(pending) - len(pending) % 4)
    if pending:
        yield _make_batch(pending, line_no, path)


def _make_batch(lines: list[bytes], first_line: int, path: str) -> _Batch:
    if lines[0].endswith(b"\r"):
        lines = [line.rstrip(b"\r") for line in lines]
    batch = _Batch(lines[0::4], lines[1::4], lines[2::4], lines[3::4], first_line)
    _check_marks(batch.headers, b"@", 0, batch, path)
    _check_marks(batch.pluses, b"+", 2, batch, path)
    seq_lengths = list(map(len, batch.sequences))
    if seq_lengths != list(map(len, batch.qualities)):
        index = next(
            i
            for i, (s, q) in enumerate(zip(batch.sequences, batch.qualities, strict=True))
            if len(s) != len(q)
        )
        msg = (
            f"read {_read_number(batch, index)}: {len(batch.qualities[index])} quality characters for "
            f"{len(batch.sequences[index])} bases (a truncated or wrapped record?)"
        )
        raise FormatError(msg, path=path, line=first_line + 4 * index + 3)
    if 0 in seq_lengths:
        index = seq_lengths.index(0)
        msg = f"read {_read_number(batch, index)}: empty sequence line"
        raise FormatError(msg, path=path, line=first_line + 4 * index + 1)
    return batch


def _check_marks(lines: list[bytes], mark: bytes, offset: int, batch: _Batch, path: str) -> None:
    firsts = [line[:1] for line in lines]
    if firsts.count(mark) == len(firsts):
        return
    index = next(i for i, first in enumerate(firsts) if first != mark)
    what = "header" if mark == b"@" else "separator"
    found = lines[index][:40].decode("utf-8", errors="replace")
    msg = (
        f"read {_read_number(batch, index)}: expected a {what} line starting with "
        f"{mark.decode()!r}, found {found!r} (not a four-line FASTQ record)"
    )
    raise FormatError(msg, path=path, line=batch.first_line + 4 * index + offset)


def _read_number(batch: _Batch, index: int) -> int:
    return (batch.first_line - 1) // 4 + index + 1


def check_fastq(fh: IO[Any]) -> FastqSummary:
    """Read a whole FASTQ file (plain or gzip), checking every record; count reads and bases.

    Raises
    ------
    FormatError
        A record that is not four lines (header ``@``, separator ``+``, as many quality characters
        as bases), a file that ends inside a record or inside its gzip stream, or no reads at all.
        The message names the file, the read number and the line.
    """
    n_reads = n_bases = 0
    for batch in _batches(fh):
        n_reads += len(batch.headers)
        n_bases += sum(map(len, batch.sequences))
    if not n_reads:
        msg = "no reads: an empty FASTQ file"
        raise FormatError(msg, path=_name_of(fh))
    return FastqSummary(n_reads=n_reads, n_bases=n_bases)


def sample_read_length(fh: IO[Any], *, max_reads: int = 10_000) -> ReadLengthSample:
    """Mean read length over the first ``max_reads`` records (reads only as much as it needs)."""
    lengths: list[int] = []
    for batch in _batches(fh, chunk_size=1 << 16):
        lengths.extend(map(len, batch.sequences))
        if len(lengths) >= max_reads:
            break
    lengths = lengths[:max_reads]
    if not lengths:
        msg = "no reads: an empty FASTQ file"
        raise FormatError(msg, path=_name_of(fh))
    return ReadLengthSample(n_reads=len(lengths), mean_length=sum(lengths) / len(lengths))


def _fragment_names(headers: list[bytes]) -> list[bytes]:
    names = [header[1:].split(None, 1)[0] if len(header) > 1 else b"" for header in headers]
    return [name[:-2] if name.endswith(_MATE_SUFFIXES) else name for name in names]


def check_fastq_pair(fh1: IO[Any], fh2: IO[Any]) -> FastqSummary:
    """Check two mate files in lockstep: both valid, same read count, same fragment names.

    Returns the summary of the pair: ``n_reads`` fragments, ``n_bases`` over both mates.

    Raises
    ------
    FormatError
        Either file malformed or truncated (see :func:`check_fastq`), or the mates disagree: a
        different number of reads, or record ``i`` naming a different fragment in each file (the
        message names both files, the read number and both names).
    """
    path1, path2 = _name_of(fh1), _name_of(fh2)
    first, second = _batches(fh1), _batches(fh2)
    left: list[bytes] = []
    right: list[bytes] = []
    checked = n_bases = 0
    done1 = done2 = False
    while not (done1 and done2):
        if not done1 and len(left) <= len(right):
            batch = next(first, None)
            done1 = batch is None
            if batch is not None:
                left.extend(batch.headers)
                n_bases += sum(map(len, batch.sequences))
        elif not done2:
            batch = next(second, None)
            done2 = batch is None
            if batch is not None:
                right.extend(batch.headers)
                n_bases += sum(map(len, batch.sequences))
        else:
            done1 = True
        common = min(len(left), len(right))
        if common:
            _compare_mates(left[:common], right[:common], checked, (path1, path2))
            del left[:common], right[:common]
            checked += common
    if left or right:
        n1, n2 = checked + len(left), checked + len(right)
        msg = (
            f"mate files differ in length: {path1} has {n1} reads, {path2} has {n2} "
            "(one of them is truncated, or they are not mates)"
        )
        raise FormatError(msg, path=path1 if n1 < n2 else path2)
    if not checked:
        msg = "no reads: an empty FASTQ pair"
        raise FormatError(msg, path=path1)
    return FastqSummary(n_reads=checked, n_bases=n_bases, n_files=2)


def _compare_mates(left: list[bytes], right: list[bytes], offset: int, paths: tuple[str, str]) -> None:
    if left == right:
        return
    names1, names2 = _fragment_names(left), _fragment_names(right)
    if names1 == names2:
        return
    index = next(i for i, (a, b) in enumerate(zip(names1, names2, strict=True)) if a != b)
    read = offset + index + 1
    msg = (
        f"mates out of step at read {read}: {paths[0]} names fragment "
        f"{names1[index].decode(errors='replace')!r}, {paths[1]} names "
        f"{names2[index].decode(errors='replace')!r} (the files are not mates of one run, or one "
        "lost reads)"
    )
    raise FormatError(msg, path=paths[1], line=4 * (read - 1) + 1)
