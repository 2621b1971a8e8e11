"""Tests for genemill.formats.fasta: FASTA records and transcripts cut from a genome with a GTF.

No genome sequence is bundled, so ``_generated_genome`` builds one (labelled generated): the real
kallisto-test GTF with every coordinate shifted so its exons fit in a short sequence, and a genome
of ``N`` with each real transcript's sequence written back at its exons (reverse-complemented on
the ``-`` strand). Cutting the transcripts out again must give the real FASTA, base for base.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from genemill.config import Settings
from genemill.errors import FormatError
from genemill.formats.fasta import (
    extract_transcripts,
    fasta_names,
    read_exon_models,
    read_fasta,
    reverse_complement,
    write_fasta,
)
from genemill.pipeline.salmon_index import register_reference

KALLISTO = Path(__file__).parents[2] / "data" / "rnaseq-kallisto-test"


def _named(data: bytes, name: str) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


def _generated_genome(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A shifted copy of the real GTF and a generated genome holding the real transcripts."""
    lines = gzip.decompress((KALLISTO / "transcripts.gtf.gz").read_bytes()).splitlines(keepends=True)
    rows = [line.split(b"\t") for line in lines if not line.startswith(b"#")]
    offsets = {}
    for fields in rows:
        offsets[fields[0]] = min(offsets.get(fields[0], 10**12), int(fields[3]) - 101)
    shifted = []
    for fields in rows:
        fields[3] = b"%d" % (int(fields[3]) - offsets[fields[0]])
        fields[4] = b"%d" % (int(fields[4]) - offsets[fields[0]])
        shifted.append(b"\t".join(fields))
    gtf = tmp_path / "shifted.gtf"
    gtf.write_bytes(b"".join(shifted))
    with gtf.open("rb") as fh:
        models = read_exon_models(fh)
    with (KALLISTO / "transcripts.fasta.gz").open("rb") as fh:
        real = dict(read_fasta(fh))
    sizes: dict[str, int] = {}
    for fields in rows:
        sizes[fields[0].decode()] = max(sizes.get(fields[0].decode(), 0), int(fields[4]) + 100)
    chromosomes = {name: bytearray(b"N" * size) for name, size in sizes.items()}
    for name, sequence in real.items():
        model = models[name.split(".")[0]]  # FASTA ids are versioned, GTF ids not
        forward = sequence if model.strand == "+" else reverse_complement(sequence)
        position = 0
        for start, end in model.exons:
            chromosomes[model.seqname][start - 1 : end] = forward[position : position + end - start + 1]
            position += end - start + 1
    genome = tmp_path / "genome.fa"
    with genome.open("wb") as out:
        write_fasta(((name, bytes(seq)) for name, seq in chromosomes.items()), out, width=70)
    return genome, gtf, real


def test_transcripts_cut_from_the_genome_equal_the_real_fasta(tmp_path: Path) -> None:
    genome, gtf, real = _generated_genome(tmp_path)
    with gtf.open("rb") as fh:
        models = read_exon_models(fh)
    assert len(models) == 27 and len(real) == 14
    with genome.open("rb") as fh:
        cut = dict(extract_transcripts(fh, models))
    assert set(cut) == set(models)
    for name, sequence in real.items():
        assert cut[name.split(".")[0]] == sequence, name
    assert {models[n.split(".")[0]].strand for n in real} == {"+", "-"}  # both strands exercised


def test_register_reference_from_genome_and_gtf(tmp_path: Path) -> None:
    genome, gtf, real = _generated_genome(tmp_path)
    settings = Settings(home=tmp_path / "home")
    reference = register_reference(
        settings, genome=genome, gtf=gtf, organism="Homo sapiens", assembly="GRCh38"
    )
    assert reference.n_transcripts == 27 and reference.transcripts is not None
    with reference.transcripts.open("rb") as fh:
        cut = dict(read_fasta(fh))
    assert all(cut[name.split(".")[0]] == sequence for name, sequence in real.items())
    tx2gene = reference.tx2gene.read_text().splitlines()
    assert tx2gene[0] == "transcript_id\tgene_id\tgene_name" and len(tx2gene) == 28
    again = register_reference(settings, genome=genome, gtf=gtf, organism="Homo sapiens", assembly="GRCh38")
    assert again.key == reference.key and again.path == reference.path  # same inputs: one reference


def test_read_fasta_and_names() -> None:
    data = b">a desc\nAC\nGT\n\n>b\nTTT\n"
    assert list(read_fasta(_named(data, "x.fa"))) == [("a", b"ACGT"), ("b", b"TTT")]
    assert fasta_names(_named(gzip.compress(data), "x.fa.gz")) == ["a", "b"]
    out = io.BytesIO()
    assert write_fasta([("a", b"ACGTA")], out, width=2) == 1
    assert out.getvalue() == b">a\nAC\nGT\nA\n"
    assert reverse_complement(b"ACGTNacgtRY") == b"RYacgtNACGT"


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"ACGT\n>a\nAC\n", r"^x\.fa, line 1: expected a '>' header line first, found 'ACGT'$"),
        (b">\nACGT\n", r"^x\.fa, line 1: empty sequence name after '>'$"),
        (b"", r"^x\.fa: no FASTA records"),
    ],
    ids=["no-header", "empty-name", "empty"],
)
def test_bad_fasta(data: bytes, pattern: str) -> None:
    with pytest.raises(FormatError, match=pattern):
        list(read_fasta(_named(data, "x.fa")))


EXON = 'chr1\tt\texon\t{start}\t{end}\t.\t{strand}\t.\tgene_id "G1"; transcript_id "T1";\n'


@pytest.mark.parametrize(
    ("gtf", "genome", "pattern"),
    [
        (
            EXON.format(start=5, end=20, strand="+"),
            b">chr1\nACGT\n",
            r"exon ends at chr1:20, beyond the sequence's length 4",
        ),
        (
            EXON.format(start=1, end=2, strand="+"),
            b">chr2\nACGT\n",
            r"places 1 transcripts on 1 sequences the genome FASTA does not have \(e\.g\. \['chr1'\]\)",
        ),
    ],
    ids=["beyond-end", "missing-sequence"],
)
def test_extraction_errors(gtf: str, genome: bytes, pattern: str) -> None:
    models = read_exon_models(_named(gtf.encode(), "a.gtf"))
    with pytest.raises(FormatError, match=pattern):
        list(extract_transcripts(_named(genome, "g.fa"), models))


@pytest.mark.parametrize(
    ("gtf", "pattern"),
    [
        (EXON.format(start=9, end=3, strand="+"), r"^a\.gtf, line 1: end 3 is before start 9$"),
        (
            EXON.format(start=1, end=3, strand="."),
            r"^a\.gtf, line 1: strand must be '\+' or '-' for an exon, found '\.'$",
        ),
        (
            EXON.format(start=1, end=3, strand="+") + EXON.format(start=5, end=9, strand="-"),
            r"^a\.gtf, line 2: transcript 'T1' has exons on chr1 \(\+\) and here on chr1 \(-\)$",
        ),
        (
            'chr1\tt\texon\t1\t3\t.\t+\t.\tgene_id "G1";\n',
            r"^a\.gtf, line 1: exon row without 'transcript_id'",
        ),
        ('chr1\tt\tgene\t1\t3\t.\t+\t.\tgene_id "G1";\n', r"^a\.gtf: no 'exon' rows"),
    ],
    ids=["reversed", "no-strand", "two-strands", "no-transcript-id", "no-exons"],
)
def test_bad_exon_rows(gtf: str, pattern: str) -> None:
    with pytest.raises(FormatError, match=pattern):
        read_exon_models(_named(gtf.encode(), "a.gtf"))


def test_pseudogene_lines_can_be_dropped() -> None:
    gtf = EXON.format(start=1, end=3, strand="+") + EXON.format(start=1, end=3, strand="+").replace(
        'transcript_id "T1";', 'transcript_id "T2"; transcript_biotype "processed_pseudogene";'
    )
    assert set(read_exon_models(_named(gtf.encode(), "a.gtf"))) == {"T1", "T2"}
    assert set(read_exon_models(_named(gtf.encode(), "a.gtf"), drop_pseudogenes=True)) == {"T1"}
