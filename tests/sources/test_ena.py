"""ENA filereport parsing and FASTQ downloads: a hand-written report (see tests/data/sources/PROVENANCE.md)
pointing at the real ERR127302 subset FASTQs, served at ENA-like paths and verified by MD5."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixture_server import Fault, FixtureServer, Reply

from genemill.errors import ChecksumError, NotFoundError, SourceError
from genemill.sources import ena

DATA = Path(__file__).parents[2] / "data" / "rnaseq-fastq-ERR127302"
REPORT = (
    Path(__file__).parents[1] / "data" / "sources" / "ena_filereport_read_run_ERP999999.tsv"
).read_text()
FOLDER = "/vol1/fastq/ERR127/ERR127302"
API = "/ena/portal/api/filereport"
MD5 = {1: "89ef13f147ff21f77dfc5c165ba2fdb5", 2: "6f1b647e61632891f5d852b5d2fd7b18"}  # data/.../MD5SUMS
HEADER = REPORT.splitlines()[0] + "\n"


@pytest.fixture
def ena_server(fixture_server: FixtureServer) -> FixtureServer:
    fixture_server.add_bytes(API, REPORT, content_type="text/plain", query={"accession": "ERP999999"})
    for mate in (1, 2):
        name = f"ERR127302_{mate}_subset.fastq.gz"
        fixture_server.add_file(f"{FOLDER}/{name}", DATA / name)
    return fixture_server


def test_parse_read_runs():
    (run,) = ena.parse_read_runs(REPORT, accession="ERP999999")
    assert (run.run_accession, run.study_accession, run.sample_accession) == (
        "ERR127302",
        "ERP999999",
        "ERS999999",
    )
    assert run.is_paired and run.library_strategy == "RNA-Seq" and run.library_source == "TRANSCRIPTOMIC"
    assert (run.instrument_platform, run.read_count, run.base_count) == ("ILLUMINA", 20000, 2880000)
    assert (run.scientific_name, run.tax_id) == ("Homo sapiens", "9606")
    assert [(f.url, f.md5, f.size, f.mate) for f in run.fastq] == [
        (f"https://ftp.sra.ebi.ac.uk{FOLDER}/ERR127302_1_subset.fastq.gz", MD5[1], 1408740, 1),
        (f"https://ftp.sra.ebi.ac.uk{FOLDER}/ERR127302_2_subset.fastq.gz", MD5[2], 1402841, 2),
    ]


def test_columns_are_found_by_name_and_single_end_has_no_mate():
    text = (
        "fastq_bytes\tfastq_md5\trun_accession\tfastq_ftp\tlibrary_layout\tread_count\n"
        f"1408740\t{MD5[1]}\tSRR1\tftp.sra.ebi.ac.uk/vol1/fastq/SRR000/SRR1/SRR1.fastq.gz\tSINGLE\t\n"
    )
    (run,) = ena.parse_read_runs(text, accession="SRR1")
    assert run.fastq == (
        ena.FastqFile(
            "https://ftp.sra.ebi.ac.uk/vol1/fastq/SRR000/SRR1/SRR1.fastq.gz", MD5[1], 1408740, None
        ),
    )
    assert run.read_count is None and not run.is_paired


def test_unpaired_file_before_the_pair():
    urls = ";".join(f"ftp.sra.ebi.ac.uk/x/SRR2{s}.fastq.gz" for s in ("", "_1", "_2"))
    text = f"run_accession\tfastq_ftp\tfastq_md5\tfastq_bytes\tlibrary_layout\nSRR2\t{urls}\t{';'.join([MD5[1]] * 3)}\t1;2;3\tPAIRED\n"
    (run,) = ena.parse_read_runs(text, accession="SRR2")
    assert [f.mate for f in run.fastq] == [None, 1, 2]


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("", SourceError, r"ENA filereport for X is empty"),
        ("accession\tfoo\nX\t1\n", SourceError, r"lacks 'run_accession'"),
        (HEADER, NotFoundError, r"ENA lists no read runs for X \(the filereport has a header and no rows\)"),
        (
            "run_accession\tfastq_ftp\tfastq_md5\tfastq_bytes\nR1\ta;b\tx\t1;2\n",
            SourceError,
            r"line 2 \(R1\): fastq_ftp/fastq_md5/fastq_bytes list 2/1/2 values",
        ),
        (
            "run_accession\tfastq_ftp\tfastq_md5\tfastq_bytes\nR1\ta\tnot-an-md5\t1\n",
            SourceError,
            r"malformed md5 'not-an-md5'",
        ),
    ],
    ids=["empty", "no-run-column", "header-only", "misaligned", "bad-md5"],
)
def test_malformed_reports(text, error, message):
    with pytest.raises(error, match=message):
        ena.parse_read_runs(text, accession="X")


def test_list_read_runs_sends_the_documented_query(ena_server, client, source_settings, fast_policy):
    (run,) = ena.list_read_runs(client, source_settings, "ERP999999", policy=fast_policy)
    assert run.run_accession == "ERR127302"
    (request,) = ena_server.requests
    assert (request.host, request.path) == ("www.ebi.ac.uk", API)
    assert {k: request.param(k) for k in ("accession", "result", "format")} == {
        "accession": "ERP999999",
        "result": "read_run",
        "format": "tsv",
    }
    assert request.param("fields") == (
        "run_accession,study_accession,sample_accession,experiment_accession,fastq_ftp,fastq_md5,"
        "fastq_bytes,library_layout,library_strategy,library_source,instrument_platform,"
        "instrument_model,read_count,base_count,scientific_name,tax_id,secondary_study_accession,"
        "secondary_sample_accession,study_title,experiment_title,sample_title"
    )


def test_empty_200_body_is_retried(fixture_server, client, source_settings, fast_policy):
    answers = iter(["", REPORT])
    fixture_server.add_handler(API, lambda _: Reply(body=next(answers).encode()))
    assert len(ena.list_read_runs(client, source_settings, "ERP999999", policy=fast_policy)) == 1
    assert len(fixture_server.requests) == 2


def test_no_runs_is_not_found(fixture_server, client, source_settings, fast_policy):
    fixture_server.add_bytes(API, HEADER, query={"accession": "ERP1"})
    fixture_server.add_bytes(API, b"", status=204, query={"accession": "ERP2"})
    with pytest.raises(NotFoundError, match=r"ENA lists no read runs for ERP1"):
        ena.list_read_runs(client, source_settings, "ERP1", policy=fast_policy)
    with pytest.raises(NotFoundError, match=r"ENA lists no read runs for ERP2 \(HTTP 204"):
        ena.list_read_runs(client, source_settings, "ERP2", policy=fast_policy)


def test_download_both_mates_with_md5_verification(
    ena_server, client, source_settings, fast_policy, tmp_path
):
    ena_server.add_fault(f"{FOLDER}/ERR127302_2_subset.fastq.gz", Fault.truncate(after_bytes=700_000))
    (run,) = ena.list_read_runs(client, source_settings, "ERP999999", policy=fast_policy)
    fetched = ena.fetch_run_fastqs(client, run, dest_dir=tmp_path, policy=fast_policy)
    assert [(f.path.name, f.md5, f.size) for f in fetched] == [
        ("ERR127302_1_subset.fastq.gz", MD5[1], 1408740),
        ("ERR127302_2_subset.fastq.gz", MD5[2], 1402841),
    ]
    for f in fetched:
        assert f.path.read_bytes() == (DATA / f.path.name).read_bytes()
    mate2 = [r for r in ena_server.requests if r.path.endswith("_2_subset.fastq.gz")]
    assert [(r.host, r.range) for r in mate2] == [
        ("ftp.sra.ebi.ac.uk", None),
        ("ftp.sra.ebi.ac.uk", "bytes=700000-"),
    ]


def test_corrupted_fastq_is_rejected(fixture_server, client, fast_policy, tmp_path):
    (run,) = ena.parse_read_runs(REPORT, accession="ERP999999")
    # The server hands out mate 2's bytes under mate 1's name: same kind of file, wrong content.
    fixture_server.add_file(f"{FOLDER}/ERR127302_1_subset.fastq.gz", DATA / "ERR127302_2_subset.fastq.gz")
    with pytest.raises(ChecksumError) as caught:
        ena.fetch_fastq(client, run.fastq[0], dest_dir=tmp_path, policy=fast_policy)
    assert caught.value.expected == "1408740" and caught.value.actual.startswith("1402841")
    assert list(tmp_path.iterdir()) == []


def test_same_size_but_different_bytes_fail_the_md5(fixture_server, client, fast_policy, tmp_path):
    (run,) = ena.parse_read_runs(REPORT, accession="ERP999999")
    damaged = bytearray((DATA / "ERR127302_1_subset.fastq.gz").read_bytes())
    damaged[-8] ^= 0xFF  # one flipped byte in the gzip trailer
    fixture_server.add_bytes(f"{FOLDER}/ERR127302_1_subset.fastq.gz", bytes(damaged))
    with pytest.raises(ChecksumError, match=r"ERR127302_1_subset.fastq.gz: md5 expected 89ef13f1") as caught:
        ena.fetch_fastq(client, run.fastq[0], dest_dir=tmp_path, policy=fast_policy)
    assert caught.value.expected == MD5[1] and len(caught.value.actual) == 32
    assert list(tmp_path.iterdir()) == []


def test_run_without_fastq_is_not_found(tmp_path, client):
    text = "run_accession\tfastq_ftp\tfastq_md5\tfastq_bytes\nSRR3\t\t\t\n"
    (run,) = ena.parse_read_runs(text, accession="SRR3")
    with pytest.raises(NotFoundError, match=r"ENA lists no FASTQ files for run SRR3"):
        ena.fetch_run_fastqs(client, run, dest_dir=tmp_path)
