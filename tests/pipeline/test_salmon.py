"""RNA-seq end to end with the real Salmon: FASTQ → index → quant → tximport → stored gene tables.

Data (see each folder's PROVENANCE.md): ``rnaseq-salmon-example`` (15 real RefSeq transcripts,
10,000 *simulated* 50 bp pairs), ``rnaseq-kallisto-test`` (14 real GENCODE transcripts + their GTF,
10,000 simulated pairs), ``rnaseq-fastq-ERR127302`` (real human reads with no matching transcriptome
here), ``rnaseq-refinebio-SRP095529`` (6 real zebrafish quant.sf + refine.bio's tx2gene). The
salmon example's RefSeq ids are mapped to Entrez genes with the org.Hs.eg.db table
``entrez_refseq.tsv.gz``. Bad inputs are real files damaged here (cut, reordered), never new reads.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import genemill.rnaseq
from genemill.cli import rnaseq as rnaseq_cli
from genemill.config import Settings
from genemill.errors import InputError, ProcessingError, ToolError
from genemill.formats.gtf import read_tx2gene_gtf
from genemill.pipeline.rnaseq_private import (
    FastqRun,
    ReferenceFiles,
    create_fastq_experiment,
    create_quant_experiment,
    pair_fastqs,
    process_rnaseq_experiment,
)
from genemill.pipeline.salmon import quant_arguments, run_salmon, salmon_executable
from genemill.pipeline.salmon_index import ensure_index, kmer_size, load_reference
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression, read_expression_info
from genemill.store.models import Organism, ProcessingState
from genemill.store.results import current_values

DATA = Path(__file__).resolve().parents[2] / "data"
SALMON_EXAMPLE = DATA / "rnaseq-salmon-example"
KALLISTO = DATA / "rnaseq-kallisto-test"
ERR127302 = DATA / "rnaseq-fastq-ERR127302"
SRP095529 = DATA / "rnaseq-refinebio-SRP095529"
REFSEQ = DATA / "annotation-org-hs-eg-db" / "entrez_refseq.tsv.gz"
KINDS = {"expression": "lengthScaledTPM", "expression:counts": "counts", "expression:tpm": "tpm"}

requires_salmon = pytest.mark.skipif(shutil.which("salmon") is None, reason="salmon is not installed")


def _env(root: Path) -> tuple[Settings, Database]:
    settings = Settings(home=root / "home")
    db = Database(settings.resolved_database_url)
    db.migrate()
    return settings, db


def _refseq_tx2gene(path: Path) -> Path:
    """RefSeq transcript → Entrez gene id for the salmon example's 15 transcripts (org.Hs.eg.db)."""
    names = [
        line[1:].split()[0]
        for line in (SALMON_EXAMPLE / "transcripts.fasta").read_text().splitlines()
        if line.startswith(">")
    ]
    table = pd.read_csv(REFSEQ, sep="\t", dtype=str)
    table = table[table["refseq_accession"].isin(names)].drop_duplicates("refseq_accession")
    assert sorted(table["refseq_accession"]) == sorted(names)
    table[["refseq_accession", "entrez_id"]].to_csv(
        path, sep="\t", index=False, header=["transcript_id", "gene_id"]
    )
    return path


def _samples(db: Database, accession: str) -> dict[str, dict]:
    with db.session() as session:
        experiment = queries.get_experiment(session, accession)
        return {
            s.title: {
                "accession": s.accession,
                "state": s.processing_state,
                "reason": s.unprocessable_reason,
                "qc": s.qc,
                "files": {
                    kind: current_values(s, kind=kind).path
                    for kind in KINDS
                    if current_values(s, kind=kind) is not None
                },
            }
            for s in experiment.samples
        }


@pytest.fixture(scope="module")
def salmon_example(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("salmon-example")
    settings, db = _env(root)
    reference = ReferenceFiles(
        transcripts=SALMON_EXAMPLE / "transcripts.fasta",
        tx2gene=_refseq_tx2gene(root / "refseq_tx2gene.tsv"),
        source="RefSeq (salmon example)",
    )
    runs = pair_fastqs([SALMON_EXAMPLE / "reads_1.fastq.gz", SALMON_EXAMPLE / "reads_2.fastq.gz"])
    accession = create_fastq_experiment(
        settings, db, runs, title="salmon example", reference=reference, organism="Homo sapiens"
    )
    outcome = process_rnaseq_experiment(settings, db, accession, threads=2)
    yield settings, db, accession, outcome
    db.dispose()


@pytest.fixture(scope="module")
def kallisto_test(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("kallisto-test")
    settings, db = _env(root)
    reference = ReferenceFiles(
        transcripts=KALLISTO / "transcripts.fasta.gz", gtf=KALLISTO / "transcripts.gtf.gz", assembly="GRCh38"
    )
    runs = pair_fastqs([KALLISTO / "reads_1.fastq.gz", KALLISTO / "reads_2.fastq.gz"], paired=True)
    accession = create_fastq_experiment(
        settings, db, runs, title="kallisto test", reference=reference, organism="Homo sapiens"
    )
    outcome = process_rnaseq_experiment(settings, db, accession, threads=2)
    yield settings, db, accession, outcome
    db.dispose()


def _check_against_tximport(
    files: dict[str, Path],
    quant_sf: Path,
    tx2gene: pd.DataFrame,
    column: str,
    *,
    ignore_tx_version: bool = False,
) -> None:
    """The stored gene tables equal genemill.rnaseq.tximport of the quant.sf Salmon wrote."""
    options = {"ignore_tx_version": ignore_tx_version}
    plain = genemill.rnaseq.tximport([quant_sf], tx2gene, **options)
    scaled = genemill.rnaseq.tximport([quant_sf], tx2gene, counts_from_abundance="lengthScaledTPM", **options)
    expected = {
        "expression:counts": plain.counts.iloc[:, 0],
        "expression:tpm": plain.abundance.iloc[:, 0],
        "expression": scaled.counts.iloc[:, 0],
    }
    for kind, path in files.items():
        stored = read_expression(path, samples=[column])[column]
        np.testing.assert_allclose(
            stored.to_numpy(np.float64), expected[kind].reindex(stored.index), rtol=1e-6
        )
        assert read_expression_info(path).metadata["value_type"] == KINDS[kind]


@pytest.mark.salmon
@requires_salmon
def test_salmon_example_end_to_end(salmon_example) -> None:
    settings, db, accession, outcome = salmon_example
    assert outcome.refused == {}
    (sample,) = _samples(db, accession).values()
    assert sample["state"] == ProcessingState.PROCESSED
    salmon = sample["qc"]["salmon"]
    assert salmon["mapping_rate"] > 0.99  # simulated from these transcripts: ~100 %
    assert salmon["num_processed"] == 10_000 and salmon["library_type"] == "IU"
    assert salmon["k"] == 23 == kmer_size(sample["qc"]["fastq"]["mean_read_length"])  # 50 bp reads
    assert sample["qc"]["fastq"] == sample["qc"]["fastq"] | {
        "files": 2,
        "n_reads": 10_000,
        "n_bases": 1_000_000,
    }
    assert set(sample["files"]) == set(KINDS)
    quant_sf = next((settings.home / "quant" / accession).rglob("quant.sf"))
    quant = pd.read_csv(quant_sf, sep="\t")
    counts = read_expression(sample["files"]["expression:counts"])[sample["accession"]]
    assert len(counts) == 10  # 15 RefSeq transcripts of 10 Entrez genes (UGT3A2, HOXC4-HOXC13)
    assert counts.sum() == pytest.approx(quant["NumReads"].sum(), rel=1e-6)
    reference = load_reference(
        settings, json.loads(next((settings.home / "references").glob("*/reference.json")).read_text())["key"]
    )
    tx2gene = pd.read_csv(reference.tx2gene, sep="\t", dtype=str)
    _check_against_tximport(sample["files"], quant_sf, tx2gene, sample["accession"])


@pytest.mark.salmon
@requires_salmon
def test_kallisto_test_end_to_end_with_gtf(kallisto_test) -> None:
    settings, db, accession, outcome = kallisto_test
    (sample,) = _samples(db, accession).values()
    assert outcome.processed == [sample["accession"]]
    assert sample["qc"]["salmon"]["mapping_rate"] == pytest.approx(0.93, abs=0.01)  # PROVENANCE: 93.1 %
    assert sample["qc"]["low_mapping"] is False and sample["qc"]["min_mapping_rate"] == 0.30
    tpm = read_expression(sample["files"]["expression:tpm"], with_annotation=True)
    assert tpm.index.str.startswith("ENSG").all() and "HOXC8" in set(
        tpm["symbol"]
    )  # gene ids + names from the GTF
    quant_sf = next((settings.home / "quant" / accession).rglob("quant.sf"))
    quant = pd.read_csv(quant_sf, sep="\t")
    counts = read_expression(sample["files"]["expression:counts"])[sample["accession"]]
    assert counts.sum() == pytest.approx(quant["NumReads"].sum(), rel=1e-6)
    with gzip.open(KALLISTO / "transcripts.gtf.gz", "rb") as fh:
        tx2gene = read_tx2gene_gtf(fh)  # unversioned Ensembl ids; quant.sf has ENST….N
    _check_against_tximport(sample["files"], quant_sf, tx2gene, sample["accession"], ignore_tx_version=True)
    # The index records what it is; the result records salmon's version, the index and the FASTQs.
    (index_json,) = (settings.home / "indexes").glob("*-k23/genemill_index.json")
    index = json.loads(index_json.read_text())
    assert index["k"] == 23 and index["salmon_version"] == "1.10.1"
    assert index["reference"]["organism"] == "Homo sapiens" and index["reference"]["assembly"] == "GRCh38"
    with db.session() as session:
        result = current_values(queries.get_sample(session, sample["accession"])).result
        assert result.processor == "salmon-tximport" and result.processor_version.endswith("+salmon1.10.1")
        assert len(result.input_sha256) == 3  # two FASTQs and the index
        assert result.parameters["k"] == [23] and result.annotations["value_type"] == "lengthScaledTPM"


@pytest.mark.salmon
@requires_salmon
def test_index_is_cached_and_built_atomically(kallisto_test) -> None:
    settings, _db, accession, _ = kallisto_test
    reference = load_reference(
        settings, json.loads(next((settings.home / "references").glob("*/reference.json")).read_text())["key"]
    )
    index = ensure_index(settings, reference, k=23)
    assert index.cached and index.path.name.endswith("-k23")
    assert not list((settings.home / "indexes").glob(".build-*"))


@pytest.mark.salmon
@requires_salmon
def test_low_mapping_is_refused_unless_allowed(kallisto_test) -> None:
    settings, db, accession, _ = kallisto_test
    # 93 % is fine at the default 30 %; at a 95 % minimum the (cached) run is refused with the figure.
    outcome = process_rnaseq_experiment(settings, db, accession, min_mapping_rate=0.95)
    (reason,) = outcome.refused.values()
    assert reason.endswith("use --allow-low-mapping to keep it")
    assert "Salmon mapped 93.0% of 10000 fragments, below genemill's minimum mapping rate of 95%" in reason
    (sample,) = _samples(db, accession).values()
    assert sample["state"] == ProcessingState.UNPROCESSABLE and sample["qc"]["low_mapping"] is True
    outcome = process_rnaseq_experiment(
        settings, db, accession, min_mapping_rate=0.95, allow_low_mapping=True
    )
    (sample,) = _samples(db, accession).values()
    assert outcome.refused == {} and sample["qc"]["low_mapping_allowed"] is True
    process_rnaseq_experiment(settings, db, accession)  # back to the default for the other tests


def _cut_gzip(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) * 6 // 10])
    return target


def _fastq_lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as fh:
        return fh.read().splitlines(keepends=True)


@pytest.mark.salmon
@requires_salmon
def test_bad_fastqs_are_refused_and_the_good_run_goes_on(tmp_path: Path) -> None:
    settings, db = _env(tmp_path)
    mate1, mate2 = SALMON_EXAMPLE / "reads_1.fastq.gz", SALMON_EXAMPLE / "reads_2.fastq.gz"
    lines1, lines2 = _fastq_lines(mate1), _fastq_lines(mate2)
    files = {
        "cutgz_1.fastq.gz": _cut_gzip(mate1, tmp_path / "cutgz_1.fastq.gz").read_bytes(),
        "cutline_1.fastq": b"".join(lines1[:-3]) + lines1[-3][:20],  # ends inside read 10,000's bases
        "shorter_2.fastq": b"".join(lines2[:-400]),  # mate 2 lost its last 100 reads
        "swapped_2.fastq": b"".join(lines2[4:8] + lines2[:4] + lines2[8:]),  # reads 1 and 2 swapped
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    shutil.copy(mate2, tmp_path / "cutgz_2.fastq.gz")
    shutil.copy(mate2, tmp_path / "cutline_2.fastq.gz")
    shutil.copy(mate1, tmp_path / "shorter_1.fastq.gz")
    shutil.copy(mate1, tmp_path / "swapped_1.fastq.gz")
    shutil.copy(mate1, tmp_path / "good_1.fastq.gz")
    shutil.copy(mate2, tmp_path / "good_2.fastq.gz")
    runs = pair_fastqs(sorted(tmp_path.glob("*.fastq*")), paired=True)
    assert [run.name for run in runs] == ["cutgz", "cutline", "good", "shorter", "swapped"]
    reference = ReferenceFiles(
        transcripts=SALMON_EXAMPLE / "transcripts.fasta", tx2gene=_refseq_tx2gene(tmp_path / "t2g.tsv")
    )
    accession = create_fastq_experiment(
        settings, db, runs, title="bad", reference=reference, organism="Homo sapiens"
    )
    outcome = process_rnaseq_experiment(settings, db, accession, threads=2)
    samples = _samples(db, accession)
    assert samples["good"]["state"] == ProcessingState.PROCESSED and set(samples["good"]["files"]) == set(
        KINDS
    )
    reasons = {name: sample["reason"] for name, sample in samples.items() if name != "good"}
    assert all(samples[name]["state"] == ProcessingState.UNPROCESSABLE for name in reasons)
    assert reasons == {name: outcome.refused[samples[name]["accession"]] for name in reasons}
    patterns = {
        "cutgz": r"^\S+/cutgz_1\.fastq\.gz: truncated gzip stream \(no end-of-stream marker",
        "cutline": r"^\S+/cutline_1\.fastq, line 39997: truncated file: the last record \(read 10000\) has 2 of 4 lines",
        "shorter": r"mate files differ in length: \S+/shorter_1\.fastq\.gz has 10000 reads, \S+/shorter_2\.fastq has 9900",
        "swapped": r"mates out of step at read 1: \S+/swapped_1\.fastq\.gz names fragment '1:NM_014620:16:182', \S+/swapped_2\.fastq names '2:NM_014620:1094:172'",
    }
    for name, pattern in patterns.items():
        assert re.search(pattern, reasons[name]), (name, reasons[name])
    read_counts = read_expression(samples["good"]["files"]["expression:counts"])
    assert list(read_counts.columns) == [samples["good"]["accession"]]


@pytest.mark.salmon
@requires_salmon
def test_salmon_failure_is_a_tool_error_with_its_reason(tmp_path: Path) -> None:
    # Real human reads against 15 HOXC/UGT3A2 transcripts: Salmon assigns ~1 fragment and exits 1.
    settings, db = _env(tmp_path)
    runs = pair_fastqs(sorted(ERR127302.glob("*.fastq.gz")))
    assert [len(run.reads) for run in runs] == [1, 1]  # _1_subset / _2_subset do not pair by name …
    runs = [FastqRun("ERR127302", tuple(sorted(ERR127302.glob("*.fastq.gz"))))]  # … so pair them by hand
    reference = ReferenceFiles(
        transcripts=SALMON_EXAMPLE / "transcripts.fasta", tx2gene=_refseq_tx2gene(tmp_path / "t2g.tsv")
    )
    accession = create_fastq_experiment(
        settings, db, runs, title="err", reference=reference, organism="Homo sapiens"
    )
    outcome = process_rnaseq_experiment(settings, db, accession, threads=2)
    (reason,) = outcome.refused.values()
    assert re.match(
        r"salmon quant \(\S+/ERR127302_1_subset\.fastq\.gz, \S+/ERR127302_2_subset\.fastq\.gz\) "
        r"exited with status 1: salmon was only able to assign 1 fragments",
        reason,
    )
    assert "salmon was only able to assign" in reason and "minAssignedFrags" in reason


@pytest.mark.salmon
@requires_salmon
def test_index_of_another_organism_is_refused(tmp_path: Path) -> None:
    settings, db = _env(tmp_path)
    runs = pair_fastqs([SALMON_EXAMPLE / "reads_1.fastq.gz", SALMON_EXAMPLE / "reads_2.fastq.gz"])
    reference = ReferenceFiles(
        transcripts=SALMON_EXAMPLE / "transcripts.fasta", tx2gene=_refseq_tx2gene(tmp_path / "t2g.tsv")
    )
    accession = create_fastq_experiment(
        settings, db, runs, title="mouse", reference=reference, organism="Mus musculus"
    )
    with db.session() as session:  # e.g. a sample whose metadata says otherwise
        human = Organism(name="Homo sapiens")
        for sample in queries.get_experiment(session, accession).samples:
            sample.organism = human
    outcome = process_rnaseq_experiment(settings, db, accession)
    (reason,) = outcome.refused.values()
    assert re.fullmatch(
        r"the transcriptome index \w+ was built for Mus musculus, but sample GM-\w+-reads is Homo sapiens: "
        r"refusing to quantify against another species' transcripts",
        reason,
    )
    assert not (settings.home / "indexes").exists()  # refused before building anything


def test_quant_arguments_use_gc_bias_for_paired_end_only() -> None:
    paired = quant_arguments([Path("a_1.fq"), Path("a_2.fq")], Path("idx"), Path("out"), threads=4)
    single = quant_arguments([Path("a.fq")], Path("idx"), Path("out"), threads=4)
    assert paired[:6] == ["--no-version-check", "quant", "-l", "A", "-i", "idx"]
    assert "--gcBias" in paired and "--seqBias" in paired and paired[6:10] == ["-1", "a_1.fq", "-2", "a_2.fq"]
    assert "--gcBias" not in single and "--seqBias" in single and single[6:8] == ["-r", "a.fq"]
    assert [kmer_size(length) for length in (36, 50, 75, 75.5, 100, 150)] == [23, 23, 23, 31, 31, 31]


@pytest.mark.parametrize(
    ("names", "paired", "expected"),
    [
        (["s1_1.fastq.gz", "s1_2.fastq.gz", "s2.fq"], None, {"s1": 2, "s2": 1}),
        (["x_R1_001.fastq.gz", "x_R2_001.fastq.gz"], True, {"x": 2}),
        (["x_R1.fq", "x_R2.fq", "y.1.fq", "y.2.fq"], None, {"x": 2, "y": 2}),
        (["s1_1.fastq.gz", "s1_2.fastq.gz"], False, {"s1_1": 1, "s1_2": 1}),
        (["lonely_1.fastq.gz"], None, {"lonely_1": 1}),
    ],
    ids=["underscore", "illumina", "dot-and-R", "single", "unpaired"],
)
def test_pair_fastqs(names: list[str], paired: bool | None, expected: dict[str, int]) -> None:
    runs = pair_fastqs([Path(name) for name in names], paired=paired)
    assert {run.name: len(run.reads) for run in runs} == expected
    for run in runs:
        if len(run.reads) == 2:
            assert run.reads[0].name < run.reads[1].name  # mate 1 first


def test_pair_fastqs_requires_mates_when_paired() -> None:
    with pytest.raises(InputError, match=r"lonely_1\.fastq\.gz: no mate file for it"):
        pair_fastqs([Path("lonely_1.fastq.gz")], paired=True)


# --------------------------------------------------------------------- import-quant (no Salmon needed)


def _cli_app(settings: Settings) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _configure(ctx: typer.Context) -> None:
        ctx.obj = settings

    app.command("import-fastq")(rnaseq_cli.import_fastq_command)
    app.command("import-quant")(rnaseq_cli.import_quant_command)
    return app


def test_import_quant_equals_tximport_on_the_same_files(tmp_path: Path) -> None:
    settings, db = _env(tmp_path)
    quants = sorted(SRP095529.glob("*.quant.sf.gz"))
    tx2gene = SRP095529 / "genes_to_transcripts.txt.gz"
    args = ["import-quant", "--title", "SRP095529", "--tx2gene", str(tx2gene), "--organism", "Danio rerio"]
    result = CliRunner().invoke(_cli_app(settings), [*args, *map(str, quants)])
    assert result.exit_code == 0, result.output
    assert "6 processed, 0 refused" in result.output
    with db.session() as session:
        (experiment,) = queries.list_experiments(session)[1]
        accession = experiment.accession
    samples = _samples(db, accession)
    plain = genemill.rnaseq.tximport(quants, tx2gene, tx2gene_order="gene_transcript")
    scaled = genemill.rnaseq.tximport(
        quants, tx2gene, tx2gene_order="gene_transcript", counts_from_abundance="lengthScaledTPM"
    )
    expected = {
        "expression:counts": plain.counts,
        "expression:tpm": plain.abundance,
        "expression": scaled.counts,
    }
    for kind, table in expected.items():
        (path,) = {sample["files"][kind] for sample in samples.values()}  # one file for the experiment
        stored = read_expression(path)
        stored.columns = [column.removeprefix(f"{accession}-") for column in stored.columns]
        assert stored.shape == table.shape
        np.testing.assert_allclose(
            stored[table.columns].to_numpy(np.float64), table.reindex(stored.index).to_numpy(), rtol=1e-6
        )
    with db.session() as session:
        result = current_values(queries.get_sample(session, samples["SRR5125621"]["accession"])).result
        assert result.processor == "tximport" and result.mode == "tximport-imported-quant"


def test_import_quant_refuses_a_run_with_transcripts_missing_from_tx2gene(tmp_path: Path) -> None:
    settings, db = _env(tmp_path)
    zebrafish = sorted(SRP095529.glob("*.quant.sf.gz"))[:2]
    human = tmp_path / "human" / "quant.sf"  # a Salmon run against another index: 15 RefSeq transcripts
    human.parent.mkdir()
    human.write_text(
        "Name\tLength\tEffectiveLength\tTPM\tNumReads\n"
        + "".join(f"{name}\t1000\t800\t1\t10\n" for name in ["NM_014620", "NM_153633"])
    )
    accession = create_quant_experiment(
        settings,
        db,
        [*zebrafish, human.parent],
        title="mixed",
        tx2gene=SRP095529 / "genes_to_transcripts.txt.gz",
    )
    outcome = process_rnaseq_experiment(settings, db, accession)
    samples = _samples(db, accession)
    assert samples["human"]["state"] == ProcessingState.UNPROCESSABLE
    assert re.search(
        r"/human/quant\.sf: 2 of 2 transcripts are not in the transcript → gene table \S+tx2gene\.tsv "
        r"\(e\.g\. \['NM_014620', 'NM_153633'\]\)",
        outcome.refused[samples["human"]["accession"]],
    )
    assert {samples[name]["state"] for name in ("SRR5125621", "SRR5125622")} == {ProcessingState.PROCESSED}


def test_import_quant_reports_a_truncated_quant_sf(tmp_path: Path) -> None:
    settings, db = _env(tmp_path)
    lines = gzip.decompress((SRP095529 / "SRR5125621.quant.sf.gz").read_bytes()).splitlines(keepends=True)
    cut = tmp_path / "SRR5125621_cut.quant.sf"
    cut.write_bytes(b"".join(lines[:-1]) + lines[-1][:10])
    accession = create_quant_experiment(
        settings,
        db,
        [cut, SRP095529 / "SRR5125622.quant.sf.gz"],
        title="cut",
        tx2gene=SRP095529 / "genes_to_transcripts.txt.gz",
    )
    outcome = process_rnaseq_experiment(settings, db, accession)
    (reason,) = outcome.refused.values()
    assert re.search(
        r"/SRR5125621_cut\.quant\.sf, line 59072: expected 5 tab-separated columns, found \d \(the file appears truncated\)",
        reason,
    )
    assert len(outcome.processed) == 1


def _generated_single_end_reads(path: Path) -> Path:
    """GENERATED single-end reads cut from the salmon example's real transcripts (not sequencing data).

    2,000 reads of 50 bases first, then 8,000 of 100 bases: the first reads say k = 23 (mean 50),
    the whole file says k = 31 (mean 90), so genemill must quantify again with the long index.
    """
    sequences = [
        "".join(block.splitlines()[1:])
        for block in (SALMON_EXAMPLE / "transcripts.fasta").read_text().split(">")[1:]
    ]
    records = []
    for number in range(10_000):
        sequence = sequences[number % len(sequences)]
        length = 50 if number < 2_000 else 100
        start = (number * 37) % (len(sequence) - length)
        records.append(f"@gen{number}\n{sequence[start : start + length]}\n+\n{'I' * length}\n")
    path.write_text("".join(records))
    return path


@pytest.mark.salmon
@requires_salmon
def test_long_single_end_reads_use_k31_and_no_gc_bias(tmp_path: Path) -> None:
    settings, db = _env(tmp_path)
    reads = _generated_single_end_reads(tmp_path / "generated.fastq")
    reference = ReferenceFiles(
        transcripts=SALMON_EXAMPLE / "transcripts.fasta", tx2gene=_refseq_tx2gene(tmp_path / "t2g.tsv")
    )
    runs = pair_fastqs([reads])
    accession = create_fastq_experiment(
        settings, db, runs, title="generated", reference=reference, organism="Homo sapiens"
    )
    outcome = process_rnaseq_experiment(settings, db, accession, threads=2)
    assert outcome.refused == {}
    (sample,) = _samples(db, accession).values()
    qc = sample["qc"]
    assert qc["fastq"]["mean_read_length_first_reads"] == 50.0 and qc["fastq"]["mean_read_length"] == 90.0
    assert qc["salmon"]["k"] == 31 and qc["salmon"]["mapping_rate"] > 0.95
    assert qc["salmon"]["library_type"] in {"SF", "SR", "U"}  # single-end library types
    assert sorted(p.name.split("-")[-1] for p in (settings.home / "indexes").iterdir()) == ["k23", "k31"]
    (marker,) = (settings.home / "quant").rglob("genemill_quant.json")
    assert marker.parent.name.endswith("-k31")
    assert json.loads(marker.read_text())["gc_bias"] is False  # --gcBias only for paired-end runs


@pytest.mark.salmon
@requires_salmon
def test_import_fastq_command(tmp_path: Path) -> None:
    settings, _db = _env(tmp_path)
    args = [
        "import-fastq", "--title", "kallisto test", "--transcripts", str(KALLISTO / "transcripts.fasta.gz"),
        "--gtf", str(KALLISTO / "transcripts.gtf.gz"), "--organism", "Homo sapiens", "--paired",
        "--threads", "2", str(KALLISTO / "reads_1.fastq.gz"), str(KALLISTO / "reads_2.fastq.gz"),
    ]  # fmt: skip
    result = CliRunner().invoke(_cli_app(settings), args)
    assert result.exit_code == 0, result.output
    assert "stored 1 run(s) as private experiment GM-" in result.output
    assert "1 processed, 0 refused" in result.output and "93.0%" in result.output


def test_fastq_files_orders_mates_and_leaves_out_unpaired_reads() -> None:
    from genemill.pipeline.salmon_run import fastq_runs
    from genemill.store.models import OriginalFile, Sample

    def fastq(name: str) -> OriginalFile:
        return OriginalFile(
            source_url=f"https://x/{name}",
            filename=name,
            kind="FASTQ",
            local_path=f"/s/{name}",
            is_downloaded=True,
        )

    ena = Sample(
        accession="S1", original_files=[fastq("R.fastq.gz"), fastq("R_2.fastq.gz"), fastq("R_1.fastq.gz")]
    )
    assert [f.filename for run in fastq_runs(ena) for f in run.files] == ["R_1.fastq.gz", "R_2.fastq.gz"]
    illumina = Sample(accession="S2", original_files=[fastq("x_R2_001.fq.gz"), fastq("x_R1_001.fq.gz")])
    assert [f.filename for run in fastq_runs(illumina) for f in run.files] == [
        "x_R1_001.fq.gz",
        "x_R2_001.fq.gz",
    ]


def test_reimporting_quantifications_updates_the_same_experiment(tmp_path: Path) -> None:
    settings, db = _env(tmp_path)
    quants = sorted(SRP095529.glob("*.quant.sf.gz"))[:2]
    tx2gene = SRP095529 / "genes_to_transcripts.txt.gz"
    first = create_quant_experiment(
        settings, db, quants, title="one", tx2gene=tx2gene, organism="Danio rerio"
    )
    again = create_quant_experiment(
        settings, db, quants, title="two", tx2gene=tx2gene, organism="Danio rerio"
    )
    assert first == again
    outcome = process_rnaseq_experiment(settings, db, again)
    assert sorted(outcome.processors.values()) == ["tximport", "tximport"]
    with db.session() as session:
        experiment = queries.get_experiment(session, again)
        assert experiment.title == "two" and [len(s.original_files) for s in experiment.samples] == [1, 1]


def test_fastq_experiment_needs_transcripts(tmp_path: Path) -> None:
    settings, db = _env(tmp_path)
    runs = pair_fastqs([KALLISTO / "reads_1.fastq.gz", KALLISTO / "reads_2.fastq.gz"])
    with pytest.raises(InputError, match=r"FASTQ runs need a transcriptome: give a transcript FASTA"):
        create_fastq_experiment(
            settings, db, runs, title="t", reference=ReferenceFiles(gtf=KALLISTO / "transcripts.gtf.gz")
        )


def test_run_salmon_does_the_meanwhile_work_while_the_tool_runs() -> None:
    # /bin/sh stands in for Salmon: what is checked is when ``meanwhile`` runs, not Salmon itself.
    start = time.perf_counter()
    called: list[float] = []
    run = run_salmon(
        ["-c", "sleep 0.5; echo done"],
        what="sleep",
        executable="/bin/sh",
        meanwhile=lambda: called.append(time.perf_counter() - start),
    )
    assert run.stdout == "done\n" and run.returncode == 0
    assert len(called) == 1 and called[0] < 0.4 <= run.seconds
    assert run.shadowed  # the tool outlasted the work done meanwhile


def test_run_salmon_output_never_stalls_the_tool_while_the_meanwhile_work_runs() -> None:
    # 200 kB on stderr (more than a pipe holds) and exit, while ``meanwhile`` takes 1 s: an
    # unread pipe would hold the tool until then, so it would still be running afterwards.
    script = "head -c 200000 /dev/zero | tr '\\0' x >&2; echo done"
    run = run_salmon(["-c", script], what="chatty", executable="/bin/sh", meanwhile=lambda: time.sleep(1.0))
    assert run.returncode == 0 and run.stdout == "done\n" and run.stderr == "x" * 200_000
    assert not run.shadowed  # it had exited: its time is an upper bound (it ran into meanwhile's)


def test_run_salmon_stops_the_tool_when_the_meanwhile_work_fails() -> None:
    def fail() -> None:
        msg = "prepared work failed"
        raise RuntimeError(msg)

    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="prepared work failed"):
        run_salmon(["-c", "sleep 30"], what="sleep", executable="/bin/sh", meanwhile=fail)
    assert time.perf_counter() - start < 10  # killed, not waited for


def test_run_salmon_failure_names_the_last_complaint_after_the_meanwhile_work() -> None:
    script = "echo '[2026-01-01] [jointLog] [error] no index here' >&2; exit 3"
    with pytest.raises(ToolError, match=r"^fake quant exited with status 3: no index here$"):
        run_salmon(["-c", script], what="fake quant", executable="/bin/sh", meanwhile=lambda: None)


def test_salmon_is_looked_up_on_path_and_forgotten_once_gone(tmp_path: Path, monkeypatch) -> None:
    """The remembered location is checked each time: a removed salmon is not used, an absent one is named."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    with pytest.raises(ProcessingError, match="salmon is not installed"):
        salmon_executable()
    fake = folder / "salmon"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert salmon_executable() == str(fake)
    assert salmon_executable() == str(fake)
    fake.unlink()
    with pytest.raises(ProcessingError, match="not on PATH"):
        salmon_executable()
