"""Platform names: GEO GPL <-> Bioconductor package stem <-> readable array name.

Pure (reads only bundled package data). The tables are refine.bio's (see data/PROVENANCE.md).
The CEL-header chip type wins over a repository's label, as in refine.bio: ``cel_chip_stem``
turns ``HG-U133_Plus_2`` into ``hgu133plus2``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["PlatformName", "cel_chip_stem", "describe_platform", "gpl_for_stem", "stem_for_gpl"]


@dataclass(frozen=True)
class PlatformName:
    """How a platform is shown: ``Affymetrix Human Genome U133A Array (hgu133a)``."""

    accession: str
    stem: str | None
    readable: str | None

    @property
    def pretty(self) -> str:
        """Readable name with the package stem, or the accession when nothing is known."""
        if self.readable and self.stem:
            return f"{self.readable} ({self.stem})"
        return self.readable or self.accession


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("genemill.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def _gpl_to_stem() -> dict[str, str]:
    return {
        row["external_accession"]: row["internal_accession"]
        for row in _rows("supported_microarray_platforms.csv")
    }


@cache
def _stem_to_readable() -> dict[str, str]:
    out = {}
    for row in _rows("readable_affymetrix_names.csv"):
        # "[HG-U133A] Affymetrix Human Genome U133A Array" -> drop the bracketed chip id.
        out[row["expected_cel_header"]] = re.sub(r"^\[[^\]]*\]\s*", "", row["human_readable_name"])
    return out


def cel_chip_stem(chip_type: str) -> str:
    """Normalize a CEL header chip type as refine.bio does: strip punctuation, lower-case, drop v1/v2."""
    stem = re.sub(r"[^a-z0-9]", "", chip_type.lower())
    return re.sub(r"v[12]$", "", stem)


def stem_for_gpl(accession: str) -> str | None:
    """Bioconductor package stem for a GEO platform (``GPL570`` -> ``hgu133plus2``)."""
    return _gpl_to_stem().get(accession.upper())


def gpl_for_stem(stem: str) -> str | None:
    """First GEO platform listed for a package stem (``hgu133plus2`` -> ``GPL570``)."""
    for gpl, known in _gpl_to_stem().items():
        if known == stem:
            return gpl
    return None


def describe_platform(accession: str, *, title: str = "") -> PlatformName:
    """Name a platform from its accession (GPL or stem), falling back to the repository's title."""
    stem = stem_for_gpl(accession) or (accession if accession in _stem_to_readable() else None)
    readable = _stem_to_readable().get(stem) if stem else None
    return PlatformName(accession=accession, stem=stem, readable=readable or (title or None))
