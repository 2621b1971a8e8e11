"""Affymetrix CDFs on disk: install one, find one by chip type, fetch a missing one online.

Installed CDFs live in ``$GENEMILL_HOME/cdf/`` named by normalized chip type (``hgfocus.CDF.gz``);
their parsed layouts are cached as ``$GENEMILL_HOME/cdf-cache/<sha256>.npz``. In online mode
(``GENEMILL_ONLINE``) a chip type without an installed CDF is fetched from the CDF repository
(``GENEMILL_CDF_BASE_URL``, layout in :mod:`genemill.sources.affy_library`) into
``$GENEMILL_HOME/downloads/cdf/``, parsed, checked against the CEL that asked for it (chip type
and dimensions), and only then installed; a download that fails any of these is deleted and
nothing is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from genemill import affy
from genemill.config import Settings
from genemill.errors import CdfFormatError, GenemillError, NotFoundError
from genemill.formats.cdf import CdfLayout
from genemill.formats.cel import CelFile

__all__ = ["CdfResolver", "cdf_dir", "chip_key", "install_cdf"]


def cdf_dir(settings: Settings) -> Path:
    """Where CDF files are kept, named by normalized chip type."""
    return settings.home / "cdf"


def _cache_dir(settings: Settings) -> Path:
    return settings.home / "cdf-cache"


def chip_key(chip_type: str) -> str:
    """Normalize a chip type for file names and comparison (``HG-U133_Plus_2`` -> ``hgu133plus2``)."""
    return re.sub(r"[^a-z0-9]", "", chip_type.lower())


def install_cdf(settings: Settings, path: Path, *, chip_type: str | None = None) -> Path:
    """Copy a CDF into the CDF folder (atomically) after parsing it once; return the installed path.

    It is named by ``chip_type`` when given (the CEL's chip type for a fetched CDF), else by the
    name inside the CDF and, when different, also by the file name (Affymetrix names library
    files by chip type, while some CDFs carry an internal code such as Hu6800's ``3101_a03``).
    """
    layout = affy.read_cdf(path, cache_dir=_cache_dir(settings))
    stem = path.name.split(".")[0]
    names = [chip_type] if chip_type else [layout.chip_type or stem, stem]
    keys = list(dict.fromkeys(chip_key(name) for name in names if chip_key(name)))
    suffix = ".CDF.gz" if path.name.lower().endswith(".gz") else ".CDF"
    targets = [cdf_dir(settings) / f"{key}{suffix}" for key in keys]
    cdf_dir(settings).mkdir(parents=True, exist_ok=True)
    for target in targets:
        if target.exists():
            continue
        # A temporary name of its own, so that parallel installs never write into one file.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(handle)
        try:
            _copy(path if target == targets[0] else targets[0], Path(temporary))
            Path(temporary).replace(target)
        finally:
            Path(temporary).unlink(missing_ok=True)
    return targets[0]


def _copy(source: Path, dest: Path) -> None:
    """Hard-link an installed CDF under a second name when possible, else copy the bytes."""
    if source.parent == dest.parent:
        dest.unlink()
        try:
            os.link(source, dest)
        except OSError:
            shutil.copyfile(source, dest)
        else:
            return
    shutil.copyfile(source, dest)


_LOADED: dict[tuple[str, int, int, int], CdfLayout] = {}
_LOADED_MAX = 4


def find_installed_cdf(settings: Settings, chip_type: str) -> CdfLayout | None:
    """Return the installed CDF layout for ``chip_type``, or None.

    Layouts are kept per process by file identity (path, inode, size, mtime): installs replace
    files by atomic rename, so a new CDF is a new key, and a worker running one sample job after
    another reads and hashes a 100 MB CDF once instead of once per job.
    """
    key = chip_key(chip_type)
    folder = cdf_dir(settings)
    for candidate in sorted(folder.glob("*")) if folder.is_dir() else []:
        if candidate.name.startswith(".") or candidate.name.endswith((".part", ".tmp")):
            continue  # an install in progress
        if candidate.name.lower().split(".")[0] == key:
            stat = candidate.stat()
            identity = (str(candidate.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
            layout = _LOADED.get(identity)
            if layout is None:
                layout = affy.read_cdf(candidate, cache_dir=_cache_dir(settings))
                if len(_LOADED) >= _LOADED_MAX:
                    _LOADED.pop(next(iter(_LOADED)))
                _LOADED[identity] = layout
            return layout
    return None


class CdfResolver:
    """The CDF of each chip type, looked up (and in online mode fetched) once per processing run.

    A failure is remembered too, so one missing CDF costs one round of requests, not one per CEL.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._found: dict[str, CdfLayout | GenemillError] = {}

    def layout_for(self, cel: CelFile) -> CdfLayout:
        """Return the CDF layout of ``cel``'s chip type, checked against the CEL's dimensions."""
        key = chip_key(cel.chip_type)
        if key not in self._found:
            try:
                self._found[key] = self._locate(cel)
            except GenemillError as exc:
                self._found[key] = exc
        found = self._found[key]
        if isinstance(found, GenemillError):
            raise found
        affy.check_platform(cel, found, cdf_label=found.chip_type or cel.chip_type)
        return found

    def _locate(self, cel: CelFile) -> CdfLayout:
        installed = find_installed_cdf(self.settings, cel.chip_type)
        if installed is not None:
            return installed
        if not self.settings.online:
            msg = (
                f"no CDF for chip type {cel.chip_type!r}: add one with `genemill import-cel --cdf FILE` "
                f"(looked in {cdf_dir(self.settings)}), or set GENEMILL_ONLINE=1 and "
                "GENEMILL_CDF_BASE_URL to fetch it"
            )
            raise NotFoundError(msg)
        return fetch_and_install_cdf(self.settings, cel)


def fetch_and_install_cdf(settings: Settings, cel: CelFile) -> CdfLayout:
    """Fetch ``cel``'s CDF from the repository, verify it parses and fits ``cel``, install it."""
    from genemill.sources.affy_library import fetch_cdf
    from genemill.sources.http import make_client

    staging = settings.home / "downloads" / "cdf"
    staging.mkdir(parents=True, exist_ok=True)
    # One staging folder per fetch: parallel sample jobs never share a ``.part`` file.
    with tempfile.TemporaryDirectory(dir=staging, prefix=f"{chip_key(cel.chip_type)}-") as folder:
        with make_client(settings) as client:
            fetched = fetch_cdf(settings, client, cel.chip_type, dest_dir=Path(folder))
        try:
            layout = affy.read_cdf(fetched.path)
        except CdfFormatError as exc:
            problem = str(exc).replace(f"{fetched.path}: ", "")
            msg = f"downloaded CDF for chip type {cel.chip_type!r} is unreadable, not installed: {problem}"
            raise CdfFormatError(msg, path=fetched.url) from exc
        affy.check_platform(cel, layout, cdf_label=fetched.url)
        installed = install_cdf(settings, fetched.path, chip_type=cel.chip_type)
    return affy.read_cdf(installed, cache_dir=_cache_dir(settings))
