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


def _reference_summary(data: bytes) -> tuple[int, int, list[bytes]]:
    """Reads, bases and fragment names counted line by line, the slow obvious way."""
    lines = data.decode().splitlines()
    headers, sequences = lines[0::4], lines[1::4]
    names = [h[1:].split()[0].removesuffix("/1").removesuffix("/2").encode() for h in headers]
    return len(headers), sum(map(len, sequences)), names


def test_real_pair_agrees_with_a_line_by_line_count() -> None:
    data1 = gzip.decompress((ERR127302 / "ERR127302_1_subset.fastq.gz").read_bytes())
    data2 = gzip.decompress((ERR127302 / "ERR127302_2_subset.fastq.gz").read_bytes())
    (n1, bases1, names1), (n2, bases2, names2) = _reference_summary(data1), _reference_summary(data2)
    assert names1 == names2 and n1 == n2
    summary = check_fastq_pair(_named(data1, "a.fq"), _named(data2, "b.fq"))
    assert (summary.n_reads, summary.n_bases) == (n1, bases1 + bases2)
    # chunks far smaller than a record's worth of text still give the same answer
    assert check_fastq(_named(data1, "a.fq")).n_bases == bases1


def test_casava_names_with_crlf_and_tabs_are_mates() -> None:
    mate1 = b"@M1:7:A:1:1101:15589:1331 1:N:0:1\r\nACGT\r\n+\r\nIIII\r\n@M1:7:A:1:1101:15590:1332\t1:N:0\r\nAC\r\n+\r\nII\r\n"
    mate2 = mate1.replace(b" 1:N:0", b" 2:N:0").replace(b"\t1:N:0", b"\t2:N:0")
    summary = check_fastq_pair(_named(mate1, "a.fq"), _named(mate2, "b.fq"))
    assert (summary.n_reads, summary.n_bases) == (2, 12)
    other = mate2.replace(b"15590:1332", b"15590:1333")
    with pytest.raises(
        FormatError, match=r"at read 2: a\.fq names fragment 'M1:7:A:1:1101:15590:1332', b\.fq"
    ):
        check_fastq_pair(_named(mate1, "a.fq"), _named(other, "b.fq"))


def test_a_name_that_only_starts_like_its_mate_is_not_its_mate() -> None:
    mate1 = b"@frag1/1\nACGT\n+\nIIII\n"
    with pytest.raises(FormatError, match=r"'frag1', b\.fq names 'frag10'"):
        check_fastq_pair(_named(mate1, "a.fq"), _named(b"@frag10/2\nACGT\n+\nIIII\n", "b.fq"))
    with pytest.raises(FormatError, match=r"'frag1', b\.fq names 'frag1/3'"):  # only /1 and /2 are mate marks
        check_fastq_pair(_named(mate1, "a.fq"), _named(b"@frag1/3\nACGT\n+\nIIII\n", "b.fq"))


RECORD = b"@frag%d/1\nACGTACGTAC\n+\nIIIIIIIIII\n"


@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (
            (b"@frag120001/1\nACGTACGTAC\n+", b"@frag120001/1\nACGTACGTAC\n-"),
            r"line 480007: read 120002: expected a separator",
        ),
        (
            (b"@frag120001/1\nACGTACGTAC\n+\nIIIIIIIIII", b"@frag120001/1\nACGTACGTAC\n+\nIIIIIIIII"),
            r"line 480008: read 120002: 9 quality",
        ),
        ((b"\n@frag120001/1\n", b"\nfrag120001/1\n"), r"line 480005: read 120002: expected a header line"),
    ],
    ids=["separator", "quality", "header"],
)
def test_errors_deep_in_a_large_file_name_the_right_read_and_line(
    damage: tuple[bytes, bytes], pattern: str
) -> None:
    # > 4 MiB: the damaged record is in the second chunk, so read and line numbers carry over
    data = b"".join(RECORD % i for i in range(150_000)).replace(*damage)
    with pytest.raises(FormatError, match=rf"^big\.fq, {pattern}"):
        check_fastq(_named(data, "big.fq"))
    with pytest.raises(FormatError, match=rf"^big\.fq, {pattern}"):
        check_fastq(_named(gzip.compress(data, compresslevel=1), "big.fq"))


def test_large_gzip_cut_short_or_ending_mid_record() -> None:
    data = b"".join(RECORD % i for i in range(150_000))
    packed = gzip.compress(data, compresslevel=1)
    with pytest.raises(FormatError, match=r"^big\.fq: truncated gzip stream"):
        check_fastq(_named(packed[: len(packed) // 2], "big.fq"))
    with pytest.raises(
        FormatError, match=r"^big\.fq, line 599997: truncated file: the last record \(read 150000\)"
    ):
        check_fastq(_named(gzip.compress(data[:-12], compresslevel=1), "big.fq"))
    assert check_fastq(_named(packed, "big.fq")).n_reads == 150_000
