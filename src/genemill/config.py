"""Settings: built once at the edge (CLI callback, ``create_app``) and passed down.

Read from environment variables prefixed ``GENEMILL_`` and, when present, a TOML file at
``$GENEMILL_HOME/config.toml`` (environment wins). Nothing here is read at import time.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "load_settings"]


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("genemill"))


class Settings(BaseSettings):
    """Where genemill keeps its data and how it talks to the outside world."""

    model_config = SettingsConfigDict(env_prefix="GENEMILL_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Data directory (files, database).")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file genemill.sqlite in home."
    )
    ncbi_api_key: str | None = Field(default=None, description="NCBI E-utilities API key (10 req/s).")
    contact_email: str | None = Field(default=None, description="Contact email sent to NCBI/ENA.")
    geo_base_url: str = Field(default="https://ftp.ncbi.nlm.nih.gov", description="GEO file server.")
    eutils_base_url: str = Field(
        default="https://eutils.ncbi.nlm.nih.gov/entrez/eutils", description="NCBI E-utilities base."
    )
    ena_base_url: str = Field(default="https://www.ebi.ac.uk/ena/portal/api", description="ENA portal API.")
    biostudies_base_url: str = Field(
        default="https://www.ebi.ac.uk/biostudies", description="ArrayExpress / BioStudies base URL."
    )
    annotation_dir: Path | None = Field(
        default=None,
        description="Folder with org.Hs.eg.db gene tables (genes.tsv.gz, entrez_ensembl_gene.tsv.gz); "
        "default: the repository's data/annotation-org-hs-eg-db.",
    )
    cdf_base_url: str | None = Field(
        default=None,
        description="Affymetrix CDF repository used in online mode: <url>/<chip type>.cdf.gz, .CDF.gz, "
        ".cdf, .CDF or .zip (an Affymetrix library-file zip), optional <url>/MD5SUMS.",
    )
    online: bool = Field(
        default=False,
        description="Fetch missing annotation (GEO platform tables, NCBI gene tables) from the archives.",
    )
    workers: int = Field(default=2, description="Local worker processes for the job runner.")
    max_attempts: int = Field(default=3, description="Attempts per job before it is marked failed.")
    retry_backoff_seconds: float = Field(
        default=1.0, description="First retry delay of a failed job; doubles per attempt (max 300 s)."
    )
    scheduler: str | None = Field(default=None, description="Dask scheduler address (tcp://host:port).")
    dataset_lifetime_days: float | None = Field(
        default=7.0,
        gt=0,
        description="Days a built dataset's files stay downloadable before they expire and must be "
        "regenerated (refine.bio: 7); unset (None) keeps them forever.",
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'genemill.sqlite'}"

    @property
    def files_dir(self) -> Path:
        """Root of the content-addressed file store."""
        return self.home / "files"


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from ``$GENEMILL_HOME/config.toml``, the environment, then ``overrides``."""
    home_env = os.environ.get("GENEMILL_HOME")
    home = Path(overrides.get("home") or home_env or _default_home())
    file_values: dict[str, Any] = {}
    config_file = home / "config.toml"
    if config_file.is_file():
        with config_file.open("rb") as fh:
            file_values = tomllib.load(fh)
    env_set = {name for name in Settings.model_fields if f"GENEMILL_{name.upper()}" in os.environ}
    values = {k: v for k, v in file_values.items() if k not in env_set}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
