"""Download the FASTQ files of surveyed SRA/ENA runs into the file store, verified, before Salmon.

Only with ``settings.online``. Each pending FASTQ OriginalFile (``is_downloaded`` false) is fetched
from its ENA URL (or the mirror ``ena_base_url`` names, :func:`genemill.sources.ena.fastq_download_url`)
with its expected size and MD5 checked (:func:`genemill.sources.fetch.fetch`: ``.part`` file,
resumed, renamed only when verified), then moved into the content-addressed file store. A sample with
a file that cannot be fetched (for a sample of several runs: any run's file) is returned with the
reason naming that file; the other samples go on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from genemill.config import Settings
from genemill.errors import NotFoundError, SourceError
from genemill.store.files import FileStore
from genemill.store.models import OriginalFile, Sample

__all__ = ["RUN_FILES", "download_fastqs", "pending_fastqs"]

FASTQ_KIND = "FASTQ"
RUN_FILES = "sra_run_files"  # sample annotation: run accession -> its FASTQ source URLs


def pending_fastqs(sample: Sample) -> list[OriginalFile]:
    """The sample's FASTQ files known by URL but not yet on disk."""
    return [f for f in sample.original_files if f.kind == FASTQ_KIND and not f.is_downloaded]


def _suffix(name: str) -> str:
    return ".fastq.gz" if name.lower().endswith(".gz") else ".fastq"


def download_fastqs(
    settings: Settings,
    samples: list[Sample],
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, str]:
    """Fetch every pending FASTQ of ``samples``; return {sample accession: reason} for failures."""
    from genemill.sources import ena
    from genemill.sources.fetch import fetch
    from genemill.sources.http import make_client

    failed: dict[str, str] = {}
    pending = [(sample, file) for sample in samples for file in pending_fastqs(sample)]
    if not pending:
        return failed
    store = FileStore(settings.files_dir)
    with make_client(settings) as client:
        for number, (sample, file) in enumerate(pending):
            if sample.accession in failed:
                continue
            if not file.expected_md5:
                failed[sample.accession] = f"{file.filename}: ENA gave no MD5 to verify the download against"
                continue
            if progress is not None:
                progress(f"downloading {file.filename}", number, len(pending))
            dest = settings.home / "downloads" / sample.accession / file.filename
            try:
                fetched = fetch(
                    client,
                    ena.fastq_download_url(file.source_url, settings),
                    dest,
                    expected_size=file.expected_size_in_bytes,
                    expected_md5=file.expected_md5,
                )
            except (NotFoundError, SourceError) as exc:  # DownloadError, ChecksumError among them
                failed[sample.accession] = f"{file.filename} ({file.source_url}): {exc}"
                continue
            # Verified while downloading: moved into the store by its sha256, not copied and re-hashed.
            target = store.path_for(fetched.sha256, _suffix(file.filename))
            target.parent.mkdir(parents=True, exist_ok=True)
            Path(fetched.path).replace(target)
            file.local_path, file.sha256, file.md5 = str(target), fetched.sha256, fetched.md5
            file.size_in_bytes, file.is_downloaded = fetched.size, True
    return failed
