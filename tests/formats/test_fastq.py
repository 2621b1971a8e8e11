"""Tests for genemill.formats.fastq: full checks, mate pairs, read-length sampling."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from genemill.errors import FormatError
from genemill.formats.fastq import check_fastq, check_fastq_pair, sample_read_length

DATA = Path(__file__).parents[2] / "data"
SALMON = DATA / "rnaseq-salmon-example"
ERR127302 = DATA / "rnaseq-fastq-ERR127302"


def _named(data: bytes, name: str) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


def test_real_pairs() -> None:
    with (
        (ERR127302 / "ERR127302_1_subset.fastq.gz").open("rb") as a,
        (ERR127302 / "ERR127302_2_subset.fastq.gz").open("rb") as b,
    ):
        summary = check_fastq_pair(a, b)  # names end in /1 and /2: same fragments
    assert (summary.n_reads, summary.n_files, summary.mean_length) == (20_000, 2, 72.0)
    with (SALMON / "reads_1.fastq.gz").open("rb") as a, (SALMON / "reads_2.fastq.gz").open("rb") as b:
        summary = check_fastq_pair(a, b)
    assert (summary.n_reads, summary.n_bases, summary.mean_length) == (10_000, 1_000_000, 50.0)


def test_single_file_plain_and_gzip_agree() -> None:
    data = gzip.decompress((SALMON / "reads_1.fastq.gz").read_bytes())
    plain = check_fastq(_named(data, "r.fastq"))
    with (SALMON / "reads_1.fastq.gz").open("rb") as fh:
        assert check_fastq(fh) == plain
    assert plain.n_reads == 10_000 and plain.mean_length == 50.0
    crlf = data.replace(b"\n", b"\r\n")
    assert check_fastq(_named(crlf, "crlf.fastq")) == plain


def test_sample_read_length_reads_only_the_first_reads() -> None:
    with (ERR127302 / "ERR127302_1_subset.fastq.gz").open("rb") as fh:
        sampled = sample_read_length(fh, max_reads=500)
    assert (sampled.n_reads, sampled.mean_length) == (500, 72.0)
    short = b"@a\nACGT\n+\nIIII\n@b\nACGTAC\n+\nIIIIII\n"
    assert sample_read_length(_named(short, "s.fq"), max_reads=10).mean_length == 5.0


GOOD = b"@r1 x\nACGT\n+\nIIII\n@r2 x\nACG\n+r2\nIII\n"


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"", r"^t\.fq: no reads: an empty FASTQ file$"),
        (
            GOOD[:-5],
            r"^t\.fq, line 5: truncated file: the last record \(read 2\) has 3 of 4 lines \(the file ends at line 7\)$",
        ),
        (GOOD[:-2], r"^t\.fq, line 8: read 2: 2 quality characters for 3 bases"),
        (
            b">r1\nACGT\n+\nIIII\n",
            r"^t\.fq, line 1: read 1: expected a header line starting with '@', found '>r1'",
        ),
        (
            b"@r1\nACGT\n-\nIIII\n",
            r"^t\.fq, line 3: read 1: expected a separator line starting with '\+', found '-'",
        ),
        (b"@r1\nAC\nGT\n+\nIIII\n", r"^t\.fq, line 3: read 1: expected a separator line"),  # wrapped
        (b"@r1\n\n+\n\n", r"^t\.fq, line 2: read 1: empty sequence line$"),
        (gzip.compress(GOOD)[:-12], r"^t\.fq: truncated gzip stream \(no end-of-stream marker"),
    ],
    ids=["empty", "cut-record", "cut-line", "fasta", "bad-plus", "wrapped", "empty-seq", "cut-gzip"],
)
def test_bad_fastq_messages(data: bytes, pattern: str) -> None:
    with pytest.raises(FormatError, match=pattern):
        check_fastq(_named(data, "t.fq"))


@pytest.mark.parametrize(
    ("mate2", "pattern"),
    [
        (
            b"@r1/2\nAAAA\n+\nIIII\n",
            r"^b\.fq: mate files differ in length: a\.fq has 2 reads, b\.fq has 1 \(one of them",
        ),
        (
            b"@r2\nAAAA\n+\nIIII\n@r1\nAAA\n+\nIII\n",
            r"^b\.fq, line 1: mates out of step at read 1: a\.fq names fragment 'r1', b\.fq names 'r2'",
        ),
    ],
    ids=["count", "names"],
)
def test_mismatched_mates(mate2: bytes, pattern: str) -> None:
    mate1 = b"@r1/1\nACGT\n+\nIIII\n@r2/1\nACG\n+\nIII\n"
    with pytest.raises(FormatError, match=pattern):
        check_fastq_pair(_named(mate1, "a.fq"), _named(mate2, "b.fq"))


def test_mates_compared_across_batches() -> None:
    # > 4 MiB per file: each is read in two chunks of 4 MiB, cut at different records.
    records1 = b"".join(b"@frag%d/1\nACGTACGTAC\n+\nIIIIIIIIII\n" % i for i in range(150_000))
    records2 = b"".join(b"@frag%d/2 2:N:0\nACGTAC\n+\nIIIIII\n" % i for i in range(150_000))
    summary = check_fastq_pair(_named(records1, "a.fq"), _named(records2, "b.fq"))
    assert (summary.n_reads, summary.n_bases) == (150_000, 150_000 * 16)
    broken = records2.replace(b"@frag149999/2", b"@frag3/2")
    with pytest.raises(FormatError, match=r"mates out of step at read 150000: .*'frag149999', .*'frag3'"):
        check_fastq_pair(_named(records1, "a.fq"), _named(broken, "b.fq"))
