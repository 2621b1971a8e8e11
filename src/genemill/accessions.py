"""Parse and route accessions: GSE/GSM/GPL/GDS, E-XXXX-n, A-XXXX-n, SRP/SRR/…, PRJNA….

Pure: no network, no database, no settings.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from genemill.errors import AccessionError

__all__ = ["Accession", "AccessionKind", "Archive", "geo_stub", "parse_accession"]


class Archive(enum.StrEnum):
    """The public archive an accession belongs to."""

    GEO = "GEO"
    ARRAY_EXPRESS = "ARRAY_EXPRESS"
    SRA = "SRA"
    LOCAL = "LOCAL"


class AccessionKind(enum.StrEnum):
    """What an accession names."""

    SERIES = "series"
    SAMPLE = "sample"
    PLATFORM = "platform"
    DATASET = "dataset"
    STUDY = "study"
    RUN = "run"
    EXPERIMENT = "experiment"
    PROJECT = "project"


_PATTERNS: list[tuple[re.Pattern[str], Archive, AccessionKind]] = [
    (re.compile(r"^GSE\d+$"), Archive.GEO, AccessionKind.SERIES),
    (re.compile(r"^GSM\d+$"), Archive.GEO, AccessionKind.SAMPLE),
    (re.compile(r"^GPL\d+$"), Archive.GEO, AccessionKind.PLATFORM),
    (re.compile(r"^GDS\d+$"), Archive.GEO, AccessionKind.DATASET),
    (re.compile(r"^E-[A-Z]{4}-\d+$"), Archive.ARRAY_EXPRESS, AccessionKind.SERIES),
    (re.compile(r"^A-[A-Z]{4}-\d+$"), Archive.ARRAY_EXPRESS, AccessionKind.PLATFORM),
    (re.compile(r"^[SED]RP\d+$"), Archive.SRA, AccessionKind.STUDY),
    (re.compile(r"^[SED]RR\d+$"), Archive.SRA, AccessionKind.RUN),
    (re.compile(r"^[SED]RX\d+$"), Archive.SRA, AccessionKind.EXPERIMENT),
    (re.compile(r"^PRJ[EDN][A-Z]\d+$"), Archive.SRA, AccessionKind.PROJECT),
    (re.compile(r"^GM-[A-Z0-9-]+$"), Archive.LOCAL, AccessionKind.SERIES),
]


@dataclass(frozen=True)
class Accession:
    """A validated accession with the archive and kind it routes to."""

    code: str
    archive: Archive
    kind: AccessionKind

    def __str__(self) -> str:
        return self.code


def parse_accession(text: str) -> Accession:
    """Validate ``text`` (case-insensitive, surrounding space ignored) and route it.

    Raises
    ------
    AccessionError
        When ``text`` matches no known accession pattern.
    """
    code = text.strip().upper()
    for pattern, archive, kind in _PATTERNS:
        if pattern.match(code):
            return Accession(code=code, archive=archive, kind=kind)
    msg = (
        f"{text!r} is not a known accession: expected GSE/GSM/GPL/GDS<digits>, E-XXXX-<n>, "
        "A-XXXX-<n>, SRP/ERP/DRP/SRR/ERR/DRR<digits> or PRJ…"
    )
    raise AccessionError(msg)


def geo_stub(code: str) -> str:
    """Return GEO's directory stub: GSE37302 -> GSE37nnn, GSE781 -> GSEnnn."""
    prefix, digits = code[:3], code[3:]
    return f"{prefix}{digits[:-3]}nnn"
