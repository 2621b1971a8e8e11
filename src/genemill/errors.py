"""genemill's exceptions.

* GenemillError                 base: catch this to catch everything genemill raises on purpose
  + InputError                  the input cannot be used (HTTP 400/422, CLI exit 2)
    - AccessionError            malformed or unknown accession
    - FormatError               a file cannot be parsed; .path, .line (or .offset)
      · SoftFormatError · MinimlFormatError · SeriesMatrixFormatError · MageTabFormatError
      · CelFormatError · CdfFormatError · SalmonFormatError
    - UnsupportedPlatformError  a valid file for a platform genemill cannot process
    - DatasetSpecError          an invalid dataset request
  + NotFoundError               no such experiment / sample / dataset (HTTP 404)
  + SourceError                 a remote archive failed us (HTTP 502; the job is retried)
    - DownloadError             .url, .status after retries
    - ChecksumError             .expected, .actual
  + ProcessingError             a step failed on valid input; .sample, .step (not retried)
    - ToolError                 an external tool exited non-zero; .returncode, .stderr_tail
  + StoreError                  database or file-store integrity

HTTP status and CLI exit codes are mapped at the edges (``server.py``, ``cli/__init__.py``),
never stored on the classes, so pure modules stay free of transport concerns.
"""

from __future__ import annotations

__all__ = [
    "AccessionError",
    "CdfFormatError",
    "CelFormatError",
    "ChecksumError",
    "DatasetSpecError",
    "DownloadError",
    "FormatError",
    "GenemillError",
    "GenemillWarning",
    "InputError",
    "MageTabFormatError",
    "MinimlFormatError",
    "NotFoundError",
    "ProcessingError",
    "SalmonFormatError",
    "SeriesMatrixFormatError",
    "SoftFormatError",
    "SourceError",
    "StoreError",
    "ToolError",
    "UnsupportedPlatformError",
]


class GenemillError(Exception):
    """Base of every error genemill raises on purpose."""


class GenemillWarning(UserWarning):
    """A non-fatal finding the user should see (e.g. a failed KS check after normalization)."""


class InputError(GenemillError):
    """The input cannot be used as given."""


class AccessionError(InputError):
    """A malformed or unknown accession."""


class FormatError(InputError):
    """A file cannot be parsed. ``path`` and ``line`` (or ``offset``) say where."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.offset = offset
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f", line {line}"
            elif offset is not None:
                where += f", byte {offset}"
            where += ": "
        super().__init__(where + message)


class SoftFormatError(FormatError):
    """A GEO SOFT file is malformed."""


class MinimlFormatError(FormatError):
    """A GEO MINiML XML file is malformed."""


class SeriesMatrixFormatError(FormatError):
    """A GEO series matrix file is malformed."""


class MageTabFormatError(FormatError):
    """An ArrayExpress MAGE-TAB IDF or SDRF is malformed."""


class CelFormatError(FormatError):
    """An Affymetrix CEL file is malformed or an unsupported variant."""


class CdfFormatError(FormatError):
    """An Affymetrix CDF file is malformed."""


class SalmonFormatError(FormatError):
    """A Salmon / kallisto / RSEM output file is malformed."""


class UnsupportedPlatformError(InputError):
    """A valid file for a platform genemill cannot process."""


class DatasetSpecError(InputError):
    """An invalid dataset request."""


class NotFoundError(GenemillError):
    """No such experiment, sample, dataset or file."""


class SourceError(GenemillError):
    """A remote archive failed us; the job may be retried."""


class DownloadError(SourceError):
    """A download failed after retries."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


class ChecksumError(SourceError):
    """A file's checksum or size differs from the expected one."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(message)


class ProcessingError(GenemillError):
    """A processing step failed on valid input (not retried)."""

    def __init__(self, message: str, *, sample: str | None = None, step: str | None = None) -> None:
        self.sample = sample
        self.step = step
        super().__init__(message)


class ToolError(ProcessingError):
    """An external tool exited non-zero."""

    def __init__(
        self, message: str, *, returncode: int, stderr_tail: str = "", sample: str | None = None
    ) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(message, sample=sample, step="tool")


class StoreError(GenemillError):
    """Database or file-store integrity problem."""
