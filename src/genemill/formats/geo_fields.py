"""GEO attributes → typed records, shared by the SOFT and series-matrix readers.

Both formats carry the same ``Series_*`` / ``Sample_*`` / ``Platform_*`` attributes (SOFT as
``!Key = value`` lines, series matrix as ``!Key<TAB>"v1"<TAB>"v2"`` rows). The functions here take
the raw ``{key: [values]}`` mapping (key without ``!``) and fill the typed attributes of
:mod:`genemill.formats.records`, keeping the mapping itself as ``fields``:

* characteristics ``tissue: kidney`` → ``("tissue", "kidney")``; no ``key:`` → key
  ``"characteristics"``; channel 2 keys are prefixed ``"ch2:"``;
* organisms and taxon ids from ``_ch1`` and ``_ch2`` (and legacy un-suffixed keys), de-duplicated;
* ``summary`` + ``overall_design`` → description; ``contact_institute`` → submitter institution;
  ``First,Middle,Last`` contributors → ``"First Middle Last"``;
* ``relation`` values of type SRA, BioProject and "Alternative to" → accession tails
  (``SRP…``, ``PRJNA…``, ``GPL…``) in ``alternate_accessions``;
* GEO dates (``Oct 24 2003``) → ISO ``2003-10-24``; ``NONE`` supplementary files are dropped.
"""

from __future__ import annotations

import re
from datetime import datetime

from genemill.errors import FormatError, SoftFormatError
from genemill.formats.records import DataTable, PlatformRecord, SampleRecord, SeriesRecord

__all__ = [
    "first_value",
    "iso_date",
    "platform_from_fields",
    "sample_from_fields",
    "series_from_fields",
    "split_characteristic",
    "unique_values",
]

_ACCESSION_TAIL = re.compile(r"(?:term=|/)([A-Za-z]+\d+)/?$")


def first_value(fields: dict[str, list[str]], key: str) -> str:
    """The first non-empty value of ``key``, or ``""``."""
    return next((v for v in fields.get(key, []) if v), "")


def unique_values(fields: dict[str, list[str]], *keys: str) -> list[str]:
    """Non-empty values of ``keys``, in order, without repeats."""
    seen: dict[str, None] = {}
    for key in keys:
        seen.update((v, None) for v in fields.get(key, []) if v)
    return list(seen)


def iso_date(text: str) -> str | None:
    """``Oct 24 2003`` (GEO) → ``2003-10-24``; ISO dates pass; anything else is kept as written."""
    for pattern in ("%b %d %Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    return text or None


def _supplementary(fields: dict[str, list[str]], prefix: str) -> list[str]:
    keys = [k for k in fields if k.startswith(prefix + "supplementary_file")]
    return [v for v in unique_values(fields, *keys) if v.upper() != "NONE"]


def split_characteristic(text: str) -> tuple[str, str]:
    """``"tissue: kidney"`` → ``("tissue", "kidney")``; no ``key:`` → ``("characteristics", text)``."""
    key, sep, value = text.partition(":")
    if sep and key.strip():
        return key.strip(), value.strip()
    return "characteristics", text.strip()


def sample_from_fields(
    accession: str,
    fields: dict[str, list[str]],
    table: DataTable | None,
    *,
    prefix: str = "Sample_",
    error: type[FormatError] = SoftFormatError,
    path: str | None = None,
) -> SampleRecord:
    """Build a sample from GEO ``Sample_*`` attributes (SOFT or series matrix); a non-integer
    taxon id raises ``error`` naming ``path``."""
    characteristics: list[tuple[str, str]] = []
    for channel, label in (("ch1", ""), ("ch2", "ch2:"), ("", "")):
        key = f"{prefix}characteristics_{channel}" if channel else f"{prefix}characteristics"
        for value in fields.get(key, []):
            if value.strip():
                name, text = split_characteristic(value)
                characteristics.append((label + name, text))
    taxa = unique_values(fields, f"{prefix}taxid_ch1", f"{prefix}taxid_ch2", f"{prefix}taxid")
    try:
        taxon_ids = list(dict.fromkeys(int(t) for v in taxa for t in v.replace(",", " ").split()))
    except ValueError as exc:
        msg = f"{accession}: '{prefix}taxid_ch*' holds {taxa!r}, expected integer taxon ids"
        raise error(msg, path=path) from exc
    return SampleRecord(
        accession=accession,
        title=first_value(fields, prefix + "title"),
        organism=unique_values(fields, f"{prefix}organism_ch1", f"{prefix}organism_ch2", f"{prefix}organism"),
        taxon_ids=taxon_ids,
        platform=first_value(fields, prefix + "platform_id") or None,
        characteristics=characteristics,
        fields=fields,
        supplementary_files=_supplementary(fields, prefix),
        table=table,
    )


def series_from_fields(
    accession: str, fields: dict[str, list[str]], *, prefix: str = "Series_"
) -> SeriesRecord:
    """Build a series from GEO ``Series_*`` attributes (SOFT or series matrix)."""
    description = "\n".join(fields.get(prefix + "summary", []))
    if design := "\n".join(fields.get(prefix + "overall_design", [])):
        description = f"{description}\n{design}" if description else design
    alternates = []
    for relation in fields.get(prefix + "relation", []):
        kind, _, target = relation.partition(":")
        if kind.strip() in ("SRA", "BioProject", "Alternative to") and target.strip():
            match = _ACCESSION_TAIL.search(target.strip())
            alternates.append(match.group(1) if match else target.strip())
    contributors = [
        " ".join(p for p in c.split(",") if p.strip()) for c in fields.get(prefix + "contributor", [])
    ]
    return SeriesRecord(
        accession=accession,
        title=first_value(fields, prefix + "title"),
        description=description,
        pubmed_ids=unique_values(fields, prefix + "pubmed_id"),
        submitter_institution=first_value(fields, prefix + "contact_institute"),
        contributors=contributors,
        submission_date=iso_date(first_value(fields, prefix + "submission_date")),
        last_update_date=iso_date(first_value(fields, prefix + "last_update_date")),
        alternate_accessions=alternates,
        sample_accessions=[s for v in fields.get(prefix + "sample_id", []) for s in v.split()],
        platform_accessions=unique_values(fields, prefix + "platform_id"),
        supplementary_files=_supplementary(fields, prefix),
        fields=fields,
    )


def platform_from_fields(
    accession: str, fields: dict[str, list[str]], table: DataTable | None, *, prefix: str = "Platform_"
) -> PlatformRecord:
    """Build a platform from GEO ``Platform_*`` attributes."""
    return PlatformRecord(
        accession=accession,
        title=first_value(fields, prefix + "title"),
        technology=first_value(fields, prefix + "technology"),
        manufacturer=first_value(fields, prefix + "manufacturer"),
        organism=unique_values(fields, prefix + "organism"),
        fields=fields,
        table=table,
    )
