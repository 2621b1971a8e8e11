"""Map submitters' free-form sample attributes to genemill's 13 harmonized fields.

Pure: no network, no database, no settings.

Keys are normalized (lower case; ``_``/``-`` to space; wrappers such as ``characteristics[...]``,
``factor value[...]``, ``comment[...]``, ``sample_`` removed) and matched against synonym lists
(those of refine.bio's harmony module, extended). Unlike refine.bio:

* every harmonized value keeps the raw key(s) it came from (``HarmonizedValue.sources``);
* multi-valued fields stay lists (values de-duplicated, in first-seen order);
* age is normalized to years, with the submitter's number and unit kept (``12 weeks`` ->
  0.2300 years, value 12, unit ``week``), and a unit found in the key (``age (months)``) counts;
* sex is normalized to ``female`` / ``male`` / ``mixed`` / ``unknown`` (other text kept lower-case).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "FIELDS",
    "Age",
    "HarmonizedSample",
    "HarmonizedValue",
    "harmonize",
    "normalize_key",
    "parse_age",
    "parse_sex",
]

FIELDS: tuple[str, ...] = (
    "sex",
    "age",
    "specimen_part",
    "genetic_information",
    "developmental_stage",
    "disease",
    "disease_stage",
    "cell_line",
    "treatment",
    "race",
    "subject",
    "compound",
    "time",
)

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sex": ("sex", "gender", "subject gender", "subject sex", "donor sex", "patient sex"),
    "age": (
        "age",
        "patient age",
        "age of patient",
        "donor age",
        "age at diagnosis",
        "age at sampling",
        "age at collection",
        "subject age",
        "age years",
        "age yrs",
        "age months",
        "age weeks",
        "age days",
        "age hours",
        "age at diagnosis years",
        "age at diagnosis months",
        "age at diagnosis days",
        "age at diagnosis hours",
        "age y",
        "age in years",
    ),
    "specimen_part": (
        "organism part",
        "cell type",
        "tissue",
        "tissue type",
        "tissue source",
        "tissue origin",
        "source tissue",
        "tissue subtype",
        "tissue/cell type",
        "tissue region",
        "tissue compartment",
        "tissues",
        "tissue of origin",
        "tissue derived from",
        "tissue harvested",
        "organ",
        "isolation source",
        "tissue sampled",
        "cell description",
        "body site",
        "sampling site",
        "anatomical site",
    ),
    "genetic_information": (
        "strain",
        "strain/background",
        "strain background",
        "genetic background",
        "genotype",
        "genotype/variation",
        "ecotype",
        "cultivar",
        "genetic modification",
        "background strain",
        "mouse strain",
        "strain or line",
    ),
    "developmental_stage": ("developmental stage", "development stage", "development stages", "dev stage"),
    "disease": (
        "disease",
        "disease state",
        "disease status",
        "diagnosis",
        "infection with",
        "sample type",
        "clinical diagnosis",
        "histology",
        "tumor type",
        "cancer type",
    ),
    "disease_stage": (
        "disease state",
        "disease stage",
        "disease staging",
        "grade",
        "tumor grade",
        "who grade",
        "histological grade",
        "tumor grading",
        "disease outcome",
        "subject status",
        "tumor stage",
        "stage",
        "clinical stage",
    ),
    "cell_line": ("cell line", "cell line name", "cell line source"),
    "treatment": (
        "treatment",
        "treatment group",
        "treatment protocol",
        "drug treatment",
        "clinical treatment",
        "agent",
    ),
    "race": ("race", "ethnicity", "race/ethnicity", "ethnic group", "population"),
    "subject": (
        "subject",
        "subject id",
        "subject number",
        "individual",
        "patient",
        "patient id",
        "patient number",
        "patient no",
        "donor",
        "donor id",
        "donor number",
        "source name",
        "individual id",
    ),
    "compound": (
        "compound",
        "compound1",
        "compound2",
        "compound name",
        "drug",
        "drugs",
        "immunosuppressive drugs",
    ),
    "time": (
        "time",
        "time point",
        "timepoint",
        "sampling time",
        "sampling time point",
        "start time",
        "stop time",
        "initial time point",
        "time post infection",
        "time after treatment",
    ),
}

_WRAPPERS = re.compile(
    r"^(characteristics?|factor ?values?|comments?|parameter ?values?)\s*\[(?P<inner>.*)\]$"
)
_PREFIXES = ("characteristics ch1 ", "characteristics ch2 ", "characteristics ", "sample host ", "sample ")
_LOOKUP: dict[str, tuple[str, ...]] = {}
for _field, _names in _SYNONYMS.items():
    for _name in _names:
        _LOOKUP[_name] = (*_LOOKUP.get(_name, ()), _field)


def normalize_key(raw: str) -> str:
    """Return the comparable form of a raw attribute key: ``Characteristics[Cell_Line]`` -> ``cell line``."""
    key = raw.strip().lower()
    match = _WRAPPERS.match(key)
    if match:
        key = match.group("inner")
    key = re.sub(r"[_\-]+", " ", key)
    key = re.sub(r"\s+", " ", key).strip()
    key = re.sub(r"\s*\(\s*", " ", key).replace(")", "").strip()
    for prefix in _PREFIXES:
        if key.startswith(prefix) and key[len(prefix) :] in _LOOKUP:
            return key[len(prefix) :]
    return key


@dataclass(frozen=True)
class HarmonizedValue:
    """Values of one harmonized field and the raw keys they came from."""

    values: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def text(self) -> str:
        """Values joined with '; ' (the form stored in flat columns)."""
        return "; ".join(self.values)


@dataclass(frozen=True)
class Age:
    """An age in years with the submitter's number, unit and text."""

    years: float | None
    value: float | None
    unit: str | None
    raw: str
    source: str


@dataclass
class HarmonizedSample:
    """Harmonized fields of one sample; ``fields`` holds the text fields, ``age`` the parsed age."""

    fields: dict[str, HarmonizedValue] = field(default_factory=dict)
    age: Age | None = None

    def flat(self) -> dict[str, str | None]:
        """One string (or None) per text field; age is exposed separately."""
        return {
            name: (self.fields[name].text if name in self.fields else None)
            for name in FIELDS
            if name != "age"
        }


_SEX = {
    "f": "female",
    "female": "female",
    "woman": "female",
    "women": "female",
    "girl": "female",
    "m": "male",
    "male": "male",
    "man": "male",
    "men": "male",
    "boy": "male",
    "mixed": "mixed",
    "pooled male and female": "mixed",
    "both": "mixed",
    "male and female": "mixed",
    "unknown": "unknown",
    "na": "unknown",
    "n/a": "unknown",
    "not available": "unknown",
    "not determined": "unknown",
    "not specified": "unknown",
    "missing": "unknown",
}


def parse_sex(value: str) -> str:
    """Normalize a sex/gender value; unrecognized text is returned lower-cased."""
    text = value.strip().lower().rstrip(".")
    return _SEX.get(text, text)


_UNITS = {
    "year": 1.0,
    "years": 1.0,
    "yr": 1.0,
    "yrs": 1.0,
    "y": 1.0,
    "yo": 1.0,
    "y.o.": 1.0,
    "years old": 1.0,
    "month": 1 / 12,
    "months": 1 / 12,
    "mo": 1 / 12,
    "mos": 1 / 12,
    "m": 1 / 12,
    "week": 7 / 365.25,
    "weeks": 7 / 365.25,
    "wk": 7 / 365.25,
    "wks": 7 / 365.25,
    "w": 7 / 365.25,
    "day": 1 / 365.25,
    "days": 1 / 365.25,
    "d": 1 / 365.25,
    "hour": 1 / 8766,
    "hours": 1 / 8766,
    "hr": 1 / 8766,
    "hrs": 1 / 8766,
    "h": 1 / 8766,
}
_CANONICAL_UNIT = {
    1.0: "year",
    1 / 12: "month",
    7 / 365.25: "week",
    1 / 365.25: "day",
    1 / 8766: "hour",
}
_AGE_VALUE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[a-z. ]*?)\s*$")


def _unit_factor(text: str) -> float | None:
    text = text.strip().strip(".").strip()
    if not text:
        return None
    if text in _UNITS:
        return _UNITS[text]
    text = text.removesuffix(" old")
    return _UNITS.get(text)


def parse_age(value: str, *, key: str = "age") -> Age:
    """Parse an age; the unit comes from the value (``12 weeks``) or the key (``age (months)``).

    Without any unit, years are assumed (the common GEO convention). Ranges, embryonic stages
    (``E14.5``) and other text give ``years=None`` while ``raw`` keeps the text.
    """
    raw = value.strip()
    match = _AGE_VALUE.match(raw.lower())
    if not match:
        return Age(years=None, value=None, unit=None, raw=raw, source=key)
    number = float(match.group("num"))
    factor = _unit_factor(match.group("unit"))
    if match.group("unit").strip() and factor is None:
        return Age(years=None, value=number, unit=match.group("unit").strip(), raw=raw, source=key)
    if factor is None:
        key_unit = normalize_key(key).removeprefix("age").replace("at diagnosis", "").replace("in", "")
        factor = _unit_factor(key_unit) or 1.0
    return Age(years=number * factor, value=number, unit=_CANONICAL_UNIT[factor], raw=raw, source=key)


def harmonize(attributes: Iterable[tuple[str, str]]) -> HarmonizedSample:
    """Harmonize ``(raw key, value)`` pairs, in file order, into a HarmonizedSample.

    Empty values are ignored. The first parsable age wins; every value of the other fields is
    kept (de-duplicated, lower-cased and stripped, as refine.bio does, sex normalized).
    """
    collected: dict[str, tuple[list[str], list[str]]] = {}
    age: Age | None = None
    for raw_key, raw_value in attributes:
        value = raw_value.strip()
        if not value:
            continue
        for name in _LOOKUP.get(normalize_key(raw_key), ()):
            if name == "age":
                parsed = parse_age(value, key=raw_key)
                if age is None or (age.years is None and parsed.years is not None):
                    age = parsed
                continue
            text = parse_sex(value) if name == "sex" else value.lower()
            values, sources = collected.setdefault(name, ([], []))
            if text not in values:
                values.append(text)
            if raw_key not in sources:
                sources.append(raw_key)
    fields = {name: HarmonizedValue(tuple(v), tuple(s)) for name, (v, s) in collected.items()}
    return HarmonizedSample(fields=fields, age=age)
