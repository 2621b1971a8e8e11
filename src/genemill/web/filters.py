"""Jinja filters and globals: labels, archive links and query-string edits used by the templates."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.datastructures import URL

from genemill.accessions import Archive, parse_accession
from genemill.errors import AccessionError

__all__ = [
    "accession_url",
    "field_label",
    "format_value",
    "organism_label",
    "pubmed_url",
    "register",
    "search_link",
    "short_hash",
    "technology_label",
    "toggle_param",
    "with_params",
]

_FIELD_LABELS = {"genetic_information": "Genetic information", "cell_line": "Cell line"}
_TECHNOLOGY_LABELS = {
    "MICROARRAY": "Microarray",
    "RNA-SEQ": "RNA-seq",
    "MIXED": "Mixed",
    "UNKNOWN": "Unknown",
}


def field_label(name: str) -> str:
    """``specimen_part`` → ``Specimen part``."""
    return _FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def technology_label(value: str | None) -> str:
    """``RNA-SEQ`` → ``RNA-seq``; empty → ``Unknown``."""
    return _TECHNOLOGY_LABELS.get((value or "UNKNOWN").upper(), str(value).capitalize())


def organism_label(name: str | None) -> str:
    """``HOMO_SAPIENS`` or ``Homo sapiens`` → ``Homo sapiens`` (sentence case)."""
    words = (name or "").replace("_", " ").split()
    return " ".join([words[0].capitalize(), *(w.lower() for w in words[1:])]) if words else ""


def accession_url(code: str | None) -> str:
    """The archive page of an accession (GEO, ArrayExpress/BioStudies, ENA/SRA), or ``""``."""
    if not code:
        return ""
    try:
        accession = parse_accession(code)
    except AccessionError:
        return ""
    if accession.archive is Archive.GEO:
        return f"https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc={accession.code}"
    if accession.archive is Archive.ARRAY_EXPRESS:
        return f"https://www.ebi.ac.uk/biostudies/arrayexpress/studies/{accession.code}"
    if accession.archive is Archive.SRA:
        return f"https://www.ebi.ac.uk/ena/browser/view/{accession.code}"
    return ""


def pubmed_url(pubmed_id: str | None) -> str:
    """PubMed page of an article."""
    return f"https://pubmed.ncbi.nlm.nih.gov/{quote(str(pubmed_id))}/" if pubmed_id else ""


def search_link(field: str, value: str) -> str:
    """``/search`` URL for a ``field:"value"`` query (institution, authors)."""
    clean = str(value).replace('"', " ").strip()
    return "/search?" + urlencode({"q": f'{field}:"{clean}"'})


def short_hash(value: str | None, length: int = 12) -> str:
    """First characters of a checksum, for display next to the full value in a title."""
    return (value or "")[:length]


def format_value(value: Any) -> str:
    """Harmonized values for display: ``70.0`` → ``70``; lists joined."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "; ".join(format_value(v) for v in value)
    return "" if value is None else str(value)


def with_params(url: URL, **params: Any) -> str:
    """``url`` with parameters replaced (None removes one); offsets reset unless given."""
    query = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k not in params]
    for key, value in params.items():
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            query.extend((key, str(v)) for v in value)
        else:
            query.append((key, str(value)))
    return url.path + ("?" + urlencode(query) if query else "")


def toggle_param(url: URL, key: str, value: str) -> str:
    """``url`` with ``key=value`` added if absent or removed if present (facet links); first page."""
    items = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k != "offset"]
    if (key, value) in items:
        items.remove((key, value))
    else:
        items.append((key, value))
    return url.path + ("?" + urlencode(items) if items else "")


def register(env: Any) -> None:
    """Install the filters and globals on a Jinja environment."""
    env.filters.update(
        field_label=field_label,
        technology_label=technology_label,
        organism_label=organism_label,
        accession_url=accession_url,
        pubmed_url=pubmed_url,
        short_hash=short_hash,
        format_value=format_value,
    )
    env.globals.update(search_link=search_link, with_params=with_params, toggle_param=toggle_param)
