"""Download a sample's raw files (GEO supplementary CELs) into the file store, verified and atomic.

Only with ``settings.online``. A file that cannot be fetched is recorded on the sample's QC with
the reason and left undownloaded, so processing falls back to the submitter's table when there is
one; nothing half-written is kept (``sources.fetch`` writes a ``.part`` and renames).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genemill.config import Settings
from genemill.errors import NotFoundError, SourceError
from genemill.store.files import FileStore
from genemill.store.models import Sample

__all__ = ["DownloadReport", "download_raw_files"]


@dataclass
class DownloadReport:
    """Raw files fetched and failed (sample accession -> reason)."""

    fetched: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def download_raw_files(settings: Settings, samples: list[Sample]) -> DownloadReport:
    """Fetch every not-yet-downloaded CEL of GEO ``samples`` (sample supplementary layout)."""
    from genemill.sources import geo
    from genemill.sources.http import make_client

    report = DownloadReport()
    pending = [
        (sample, original)
        for sample in samples
        for original in sample.original_files
        if original.kind == "CEL" and not original.is_downloaded and sample.accession.startswith("GSM")
    ]
    if not pending:
        return report
    store = FileStore(settings.files_dir)
    with make_client(settings) as client:
        for sample, original in pending:
            dest = settings.home / "downloads" / sample.accession
            try:
                path = geo.fetch_sample_supplementary(
                    client, settings, sample.accession, name=original.filename, dest_dir=dest
                )
            except (NotFoundError, SourceError) as exc:
                report.failed[sample.accession] = f"{original.filename}: {exc}"
                sample.qc = {**sample.qc, "raw_download_error": str(exc)}
                continue
            stored = store.put(
                path, suffix=".CEL.gz" if original.filename.lower().endswith(".gz") else ".CEL"
            )
            path.unlink(missing_ok=True)
            original.local_path, original.sha256 = str(stored.path), stored.sha256
            original.size_in_bytes, original.is_downloaded = stored.size, True
            report.fetched.append(sample.accession)
    return report
