"""Source-neutral metadata records that every metadata parser returns.

GEO SOFT, series matrix, MINiML, GDS and ArrayExpress MAGE-TAB all end up as one
``ExperimentMetadata``: a series, its platforms and its samples. Every raw key/value the file
held is kept in ``fields`` (lossless); the typed attributes are conveniences derived from them.
Data tables are kept as the raw tab-separated bytes and parsed only when asked, which keeps
parsing a 60 MB family file streaming and small in memory.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DataTable", "ExperimentMetadata", "PlatformRecord", "SampleRecord", "SeriesRecord"]


@dataclass(frozen=True)
class DataTable:
    """A tab-separated table kept as raw bytes (rows only, no header line).

    ``columns`` are the header names, ``descriptions`` the ``#NAME = text`` lines that describe them.
    """

    columns: tuple[str, ...]
    text: bytes
    n_rows: int
    descriptions: dict[str, str] = field(default_factory=dict)

    def to_frame(self, *, dtype: type | str = str) -> pd.DataFrame:
        """Parse the rows into a DataFrame with one column per header name (strings by default).

        pandas is imported here, not at module import: parsing metadata must not pay for it.
        """
        import pandas as pd

        if not self.text:
            return pd.DataFrame(columns=list(self.columns))
        return pd.read_csv(
            io.BytesIO(self.text),
            sep="\t",
            header=None,
            names=list(self.columns),
            dtype=dtype,
            keep_default_na=False,
            na_filter=False,
            quoting=3,
            index_col=False,
        )


@dataclass
class SampleRecord:
    """One sample (GEO GSM, ArrayExpress assay / source).

    ``characteristics`` keeps the submitter's ``key: value`` pairs in file order (keys as written);
    ``fields`` keeps every raw attribute (e.g. ``Sample_source_name_ch1``) with all its values.
    """

    accession: str
    title: str = ""
    organism: list[str] = field(default_factory=list)
    taxon_ids: list[int] = field(default_factory=list)
    platform: str | None = None
    characteristics: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)
    supplementary_files: list[str] = field(default_factory=list)
    table: DataTable | None = None


@dataclass
class PlatformRecord:
    """One platform (GEO GPL, ArrayExpress A-…), with its annotation table when the file has it."""

    accession: str
    title: str = ""
    technology: str = ""
    manufacturer: str = ""
    organism: list[str] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)
    table: DataTable | None = None


@dataclass
class SeriesRecord:
    """The experiment-level record (GEO GSE / GDS, ArrayExpress E-…)."""

    accession: str
    title: str = ""
    description: str = ""
    pubmed_ids: list[str] = field(default_factory=list)
    submitter_institution: str = ""
    contributors: list[str] = field(default_factory=list)
    submission_date: str | None = None
    last_update_date: str | None = None
    alternate_accessions: list[str] = field(default_factory=list)
    sample_accessions: list[str] = field(default_factory=list)
    platform_accessions: list[str] = field(default_factory=list)
    supplementary_files: list[str] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class ExperimentMetadata:
    """What one metadata file says about an experiment. ``source`` is GEO or ARRAY_EXPRESS."""

    source: str
    series: SeriesRecord
    platforms: list[PlatformRecord] = field(default_factory=list)
    samples: list[SampleRecord] = field(default_factory=list)
    file_format: str = ""
