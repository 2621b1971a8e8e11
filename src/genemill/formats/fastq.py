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
Records are checked in 4 MiB batches with NumPy over the decompressed bytes (line ends found once,
then header, separator and length checks on arrays), not one Python call per line; gzip is inflated
by ISA-L (:mod:`genemill.formats.stream`). This check runs beside Salmon on the same cores, so its
cost is Salmon's loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

import numpy as np

from genemill.errors import FormatError
from genemill.formats.stream import Inflating

__all__ = [
    "FastqSummary",
    "ReadLengthSample",
    "check_fastq",
    "check_fastq_pair",
    "sample_read_length",
]

_CHUNK = 1 << 22  # 4 MiB of decompressed text per batch
_NL, _CR, _AT, _PLUS, _SLASH, _SPACE, _TAB = 10, 13, 64, 43, 47, 32, 9


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
class _Names:
    """Fragment names of consecutive records, each followed by ``\\n`` in ``text``; ``ends`` are
    the positions of those terminators."""

    text: bytes
    ends: np.ndarray

    def extend(self, more: _Names) -> None:
        self.ends = np.concatenate([self.ends, more.ends + len(self.text)])
        self.text += more.text

    def take(self, n: int) -> bytes:
        """Remove the first ``n`` names and return them as one ``\\n``-terminated string."""
        cut = int(self.ends[n - 1]) + 1
        taken, self.text = self.text[:cut], self.text[cut:]
        self.ends = self.ends[n:] - cut
        return taken


def _no_names() -> _Names:
    return _Names(b"", np.zeros(0, dtype=np.int64))


@dataclass
class _Batch:
    """Whole, checked records of one chunk: read lengths, fragment names (pairs only), first line."""

    lengths: np.ndarray
    names: _Names
    first_line: int

    @property
    def n_reads(self) -> int:
        return len(self.lengths)


def _name_of(fh: IO[Any]) -> str:
    name = getattr(fh, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _chunks(fh: IO[Any], path: str, size: int) -> Iterator[bytes]:
    """Decompressed text (ISA-L inflate when gzip, see :mod:`genemill.formats.stream`)."""
    stream = Inflating(cast(BinaryIO, fh), name=path, error=FormatError)
    while True:
        try:
            chunk = stream.read(size)
        except FormatError as exc:
            if not str(exc).startswith(f"{path}: truncated gzip stream"):
                raise
            msg = "truncated gzip stream (no end-of-stream marker; the download or copy was cut short)"
            raise FormatError(msg, path=path) from exc
        if not chunk:
            return
        yield chunk


def _batches(fh: IO[Any], *, chunk_size: int = _CHUNK, names: bool = False) -> Iterator[_Batch]:
    """Yield whole records, checked for structure; raise on a malformed or truncated file.

    Each chunk is scanned with NumPy (line ends found once, then header, separator and length
    checks on arrays of line starts), so no Python code runs per line.
    """
    path = _name_of(fh)
    tail = b""
    line_no = 1
    for chunk in _chunks(fh, path, chunk_size):
        data = tail + chunk if tail else chunk
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == _NL)
        whole = len(ends) - len(ends) % 4
        if not whole:
            tail = data
            continue
        cut = int(ends[whole - 1]) + 1
        yield _scan(data, ends[:whole], line_no, path, names=names)
        line_no += whole
        tail = data[cut:]
    if not tail:
        return
    n_lines = tail.count(b"\n") + (not tail.endswith(b"\n"))
    if n_lines % 4:
        read = (line_no - 1) // 4 + 1 + n_lines // 4
        msg = (
            f"truncated file: the last record (read {read}) has {n_lines % 4} of 4 lines "
            f"(the file ends at line {line_no + n_lines - 1})"
        )
        raise FormatError(msg, path=path, line=line_no + n_lines - n_lines % 4)
    data = tail if tail.endswith(b"\n") else tail + b"\n"  # last line without its line end
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == _NL)
    yield _scan(data, ends, line_no, path, names=names)


def _scan(data: bytes, ends: np.ndarray, first_line: int, path: str, *, names: bool) -> _Batch:
    """Check the records whose line ends are ``ends`` (a multiple of 4) at the start of ``data``."""
    text = np.frombuffer(data, np.uint8)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    if lengths[0] and text[ends[0] - 1] == _CR:  # \r\n line ends: as in the first line
        lengths -= (lengths > 0) & (text[np.maximum(ends - 1, 0)] == _CR)
    _check_marks(text, starts[0::4], _AT, 0, data, first_line, path)
    _check_marks(text, starts[2::4], _PLUS, 2, data, first_line, path)
    seq_lengths, qual_lengths = lengths[1::4], lengths[3::4]
    if not np.array_equal(seq_lengths, qual_lengths):
        index = int(np.flatnonzero(seq_lengths != qual_lengths)[0])
        msg = (
            f"read {_read_number(first_line, index)}: {qual_lengths[index]} quality characters for "
            f"{seq_lengths[index]} bases (a truncated or wrapped record?)"
        )
        raise FormatError(msg, path=path, line=first_line + 4 * index + 3)
    if not seq_lengths.all():
        index = int(np.flatnonzero(seq_lengths == 0)[0])
        msg = f"read {_read_number(first_line, index)}: empty sequence line"
        raise FormatError(msg, path=path, line=first_line + 4 * index + 1)
    fragments = (
        _fragment_names(text, starts[0::4] + 1, starts[0::4] + lengths[0::4]) if names else _no_names()
    )
    return _Batch(lengths=seq_lengths, names=fragments, first_line=first_line)


def _check_marks(
    text: np.ndarray, starts: np.ndarray, mark: int, offset: int, data: bytes, first_line: int, path: str
) -> None:
    wrong = text[starts] != mark
    if not wrong.any():
        return
    index = int(np.flatnonzero(wrong)[0])
    what = "header" if mark == _AT else "separator"
    begin = int(starts[index])
    line = data[begin : data.find(b"\n", begin)].rstrip(b"\r")
    found = line[:40].decode("utf-8", errors="replace")
    msg = (
        f"read {_read_number(first_line, index)}: expected a {what} line starting with "
        f"{chr(mark)!r}, found {found!r} (not a four-line FASTQ record)"
    )
    raise FormatError(msg, path=path, line=first_line + 4 * index + offset)


def _read_number(first_line: int, index: int) -> int:
    return (first_line - 1) // 4 + index + 1


def _gather(text: np.ndarray, begins: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bytes ``begins[i]:stops[i]`` of ``text`` joined, each followed by ``\\n``; with the positions
    of those terminators. One fancy-indexing copy instead of a Python slice per line."""
    sizes = stops - begins + 1
    out_starts = np.zeros_like(sizes)
    np.cumsum(sizes[:-1], out=out_starts[1:])
    index = np.arange(int(sizes.sum()), dtype=np.int64) + np.repeat(begins - out_starts, sizes)
    joined = text[index]  # the byte after each piece (its terminator slot) is overwritten next
    terminators = out_starts + sizes - 1
    joined[terminators] = _NL
    return joined, terminators


def _fragment_names(text: np.ndarray, begins: np.ndarray, ends: np.ndarray) -> _Names:
    """Fragment name of each header (``begins``/``ends``: after ``@``, before the line end): the
    first space- or tab-separated token without a trailing ``/1`` or ``/2``."""
    headers, header_ends = _gather(text, begins, ends)
    starts = np.zeros_like(header_ends)
    starts[1:] = header_ends[:-1] + 1
    gaps = np.flatnonzero((headers == _SPACE) | (headers == _TAB) | (headers == _NL))
    stops = gaps[np.searchsorted(gaps, starts)]  # every header has its \n terminator at least
    last = headers[np.maximum(stops - 1, 0)]
    mate = (
        (stops - starts >= 2) & (headers[np.maximum(stops - 2, 0)] == _SLASH) & ((last == 49) | (last == 50))
    )
    names, name_ends = _gather(headers, starts, stops - 2 * mate)
    return _Names(names.tobytes(), name_ends)


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
        n_reads += batch.n_reads
        n_bases += int(batch.lengths.sum())
    if not n_reads:
        msg = "no reads: an empty FASTQ file"
        raise FormatError(msg, path=_name_of(fh))
    return FastqSummary(n_reads=n_reads, n_bases=n_bases)


def sample_read_length(fh: IO[Any], *, max_reads: int = 10_000) -> ReadLengthSample:
    """Mean read length over the first ``max_reads`` records (reads only as much as it needs)."""
    lengths: list[int] = []
    for batch in _batches(fh, chunk_size=1 << 16):
        lengths.extend(batch.lengths[: max_reads - len(lengths)].tolist())
        if len(lengths) >= max_reads:
            break
    lengths = lengths[:max_reads]
    if not lengths:
        msg = "no reads: an empty FASTQ file"
        raise FormatError(msg, path=_name_of(fh))
    return ReadLengthSample(n_reads=len(lengths), mean_length=sum(lengths) / len(lengths))


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
    first, second = _batches(fh1, names=True), _batches(fh2, names=True)
    left, right = _no_names(), _no_names()
    checked = n_bases = 0
    done1 = done2 = False
    while not (done1 and done2):
        if not done1 and len(left.ends) <= len(right.ends):
            batch = next(first, None)
            done1 = batch is None
            if batch is not None:
                left.extend(batch.names)
                n_bases += int(batch.lengths.sum())
        elif not done2:
            batch = next(second, None)
            done2 = batch is None
            if batch is not None:
                right.extend(batch.names)
                n_bases += int(batch.lengths.sum())
        else:
            done1 = True
        common = min(len(left.ends), len(right.ends))
        if common:
            _compare_mates(left.take(common), right.take(common), checked, (path1, path2))
            checked += common
    if len(left.ends) or len(right.ends):
        n1, n2 = checked + len(left.ends), checked + len(right.ends)
        msg = (
            f"mate files differ in length: {path1} has {n1} reads, {path2} has {n2} "
            "(one of them is truncated, or they are not mates)"
        )
        raise FormatError(msg, path=path1 if n1 < n2 else path2)
    if not checked:
        msg = "no reads: an empty FASTQ pair"
        raise FormatError(msg, path=path1)
    return FastqSummary(n_reads=checked, n_bases=n_bases, n_files=2)


def _compare_mates(left: bytes, right: bytes, offset: int, paths: tuple[str, str]) -> None:
    """Compare ``\\n``-terminated fragment names of the same records; name the first difference."""
    if left == right:
        return
    names1, names2 = left.split(b"\n"), right.split(b"\n")
    index = next(i for i, (a, b) in enumerate(zip(names1, names2, strict=True)) if a != b)
    read = offset + index + 1
    msg = (
        f"mates out of step at read {read}: {paths[0]} names fragment "
        f"{names1[index].decode(errors='replace')!r}, {paths[1]} names "
        f"{names2[index].decode(errors='replace')!r} (the files are not mates of one run, or one "
        "lost reads)"
    )
    raise FormatError(msg, path=paths[1], line=4 * (read - 1) + 1)
