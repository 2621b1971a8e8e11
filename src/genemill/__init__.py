"""genemill: public gene-expression experiments turned into validated, comparable gene-level data.

Heavy names (``Settings``, ``load_dataset``) load on first use, so importing ``genemill`` (for
``__version__`` or ``GenemillError``) stays cheap in worker processes and command-line tools.
"""

from __future__ import annotations

from typing import Any

from genemill.errors import GenemillError

__all__ = ["GenemillError", "Settings", "__version__", "load_dataset"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Settings":
        from genemill.config import Settings

        return Settings
    if name == "load_dataset":
        from genemill.client import load_dataset

        return load_dataset
    msg = f"module 'genemill' has no attribute {name!r}"
    raise AttributeError(msg)
