"""genemill: public gene-expression experiments turned into validated, comparable gene-level data."""

from __future__ import annotations

from genemill.config import Settings
from genemill.errors import GenemillError

__all__ = ["GenemillError", "Settings", "__version__"]

__version__ = "0.1.0"
