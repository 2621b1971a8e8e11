"""Process Affymetrix 3' expression arrays from files: CEL + CDF in, log2 expression table out.

The file-level shell over :mod:`genemill.formats.cel`, :mod:`genemill.formats.cdf` and
:mod:`genemill.numerics.rma`::

    from genemill import affy
    table = affy.rma(["a.CEL.gz", "b.CEL"], cdf="HG-U133_Plus_2.cdf")   # probe sets x samples, log2
    reference = affy.build_rma_reference(["a.CEL.gz", "b.CEL"], cdf="HG-U133_Plus_2.cdf")
    one = affy.rma(["new.CEL"], cdf="HG-U133_Plus_2.cdf", reference=reference)   # alone, vs stored

Results equal Bioconductor ``affy::rma`` / ``affy::justRMA`` with a CDF environment built by
``makecdfenv::make.cdf.env``. Rows are probe-set ids ordered as affy orders them (R's ``sort`` of
the names under ICU collation, e.g. ``en_US``: punctuation before digits before letters, letters
compared case-insensitively first), columns are file names without ``.gz`` and ``.CEL``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from genemill.errors import InputError, UnsupportedPlatformError
from genemill.formats.cdf import CdfLayout, load_cdf_cache, parse_cdf, save_cdf_cache
from genemill.formats.cel import CelFile, parse_cel
from genemill.numerics.rma import rma as rma_matrix
from genemill.numerics.rma_reference import RmaReferenceModel, fit_rma_reference, rma_with_reference

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

__all__ = [
    "RmaReference",
    "build_rma_reference",
    "check_platform",
    "check_reference",
    "layout_sha256",
    "load_rma_reference",
    "mas5",
    "probe_set_table",
    "read_cdf",
    "read_cel",
    "rma",
    "sample_name",
    "save_rma_reference",
]

REFERENCE_FORMAT = 1
"""Version of the RMA reference file (``.npz``: ``meta`` JSON, ``target``, ``probe_effects``, ``offsets``)."""

# CLDR root collation order of the ASCII punctuation and symbols, then digits; letters follow
# (case-insensitive first, lower case before upper case to break ties). Byte tables: other ASCII
# characters sort after letters, in code order.
_ORDER = b" _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789"
_PRIMARY_TABLE = bytearray(range(0x80, 0x100)) + bytearray(0x80)
for _k, _char in enumerate(_ORDER):
    _PRIMARY_TABLE[_char] = 1 + _k
for _k in range(26):
    _PRIMARY_TABLE[0x41 + _k] = _PRIMARY_TABLE[0x61 + _k] = 0x40 + _k
_PRIMARY = bytes(_PRIMARY_TABLE)
_TERTIARY = bytes(1 if 0x41 <= c <= 0x5A else 0 for c in range(256))


def read_cel(path: str | Path) -> CelFile:
    """Read one CEL file (text v3, XDA v4 or Calvin; gzip detected by content)."""
    return parse_cel(Path(path).read_bytes(), name=str(path))


def read_cdf(path: str | Path, *, cache_dir: str | Path | None = None) -> CdfLayout:
    """Read a CDF (ASCII or XDA, gzip or not); the file name is kept as a chip-type alias.

    With ``cache_dir`` the parsed layout is stored as ``<sha256 of the file>.npz`` and reused.
    """
    source = Path(path)
    data = source.read_bytes()
    stem = _strip_suffixes(source.name, (".gz", ".cdf"))
    names = (stem, stem.split(".")[0])  # "Test3.xda.CDF" names chip Test3 (XDA files carry no name)
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / f"{hashlib.sha256(data).hexdigest()}.npz"
        if cached.exists():
            layout = load_cdf_cache(cached)
            return replace(layout, aliases=tuple(dict.fromkeys((*layout.aliases, *names))))
    layout = parse_cdf(data, name=str(source))
    layout = replace(layout, aliases=tuple(dict.fromkeys((*layout.aliases, *names))))
    if cached is not None:
        _atomic_save(layout, cached)
    return layout


@dataclass(frozen=True, eq=False)
class RmaReference:
    """A per-platform RMA reference: the fitted model and what it was built from.

    ``reference_id`` (``<chip key>-<12 hex>``) is a digest of the CDF layout, the input CELs'
    sha256 and the format version, so the same arrays on the same CDF give the same id.
    """

    reference_id: str
    chip_type: str
    layout_sha256: str
    model: RmaReferenceModel
    arrays: tuple[str, ...]
    input_sha256: tuple[str, ...]
    genemill_version: str


def rma(
    cel_paths: Sequence[str | Path],
    *,
    cdf: str | Path | CdfLayout,
    workers: int = 2,
    reference: RmaReference | str | Path | None = None,
) -> pd.DataFrame:
    """Return log2 RMA expression, probe sets (rows) x samples (columns), as ``affy::rma``.

    Every CEL must have the CDF's dimensions and (when the CEL records one) chip type;
    otherwise :class:`~genemill.errors.UnsupportedPlatformError` names both files and sizes.
    With ``reference`` (an :class:`RmaReference` or its file) each array is processed alone
    against the stored target and probe effects (:mod:`genemill.numerics.rma_reference`); a
    reference of another platform is refused with UnsupportedPlatformError.
    """
    layout = cdf if isinstance(cdf, CdfLayout) else read_cdf(cdf)
    cdf_label = str(cdf) if not isinstance(cdf, CdfLayout) else (layout.chip_type or "<layout>")
    names = _distinct_names(cel_paths, "rma")
    if reference is not None:
        stored = reference if isinstance(reference, RmaReference) else load_rma_reference(reference)
        check_reference(stored, layout, cdf_label=cdf_label)
        pm = _pm_matrix(cel_paths, layout, cdf_label=cdf_label, workers=workers)
        return probe_set_table(rma_with_reference(pm, stored.model, workers=workers), layout, names)
    pm = _pm_matrix(cel_paths, layout, cdf_label=cdf_label, workers=workers)
    expression = rma_matrix(pm, layout.offsets, workers=workers, overwrite_input=True)
    del pm
    return probe_set_table(expression, layout, names)


def build_rma_reference(
    cel_paths: Sequence[str | Path],
    *,
    cdf: str | Path | CdfLayout,
    chip_type: str | None = None,
    workers: int = 2,
) -> RmaReference:
    """Fit an RMA reference (quantile target + probe effects) from arrays of one platform.

    ``chip_type`` names the platform (default: the CDF's name) in the reference and its id.
    """
    from genemill import __version__

    layout = cdf if isinstance(cdf, CdfLayout) else read_cdf(cdf)
    cdf_label = str(cdf) if not isinstance(cdf, CdfLayout) else (layout.chip_type or "<layout>")
    names = _distinct_names(cel_paths, "build_rma_reference")
    pm = _pm_matrix(cel_paths, layout, cdf_label=cdf_label, workers=workers)
    model = fit_rma_reference(pm, layout.offsets, workers=workers)
    digests = tuple(_sha256_file(Path(path)) for path in cel_paths)
    layout_digest = layout_sha256(layout)
    key = hashlib.sha256(
        json.dumps([REFERENCE_FORMAT, layout_digest, sorted(digests)]).encode("ascii")
    ).hexdigest()
    chip_type = chip_type or layout.chip_type or (layout.aliases[0] if layout.aliases else "")
    return RmaReference(
        reference_id=f"{_normalize(chip_type) or 'chip'}-{key[:12]}",
        chip_type=chip_type,
        layout_sha256=layout_digest,
        model=model,
        arrays=tuple(names),
        input_sha256=digests,
        genemill_version=__version__,
    )


def layout_sha256(layout: CdfLayout) -> str:
    """Digest of what a reference depends on: dimensions, probe-set ids and PM probe positions."""
    digest = hashlib.sha256(f"{layout.rows}x{layout.cols}\n".encode("ascii"))
    digest.update("\n".join(layout.probeset_ids).encode("utf-8"))
    digest.update(np.ascontiguousarray(layout.pm_index, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(layout.offsets, dtype="<i8").tobytes())
    return digest.hexdigest()


def save_rma_reference(reference: RmaReference, path: str | Path) -> Path:
    """Write ``reference`` to ``path`` (``.npz``, no pickle) atomically; return the path."""
    target = Path(path)
    meta = {
        "format": REFERENCE_FORMAT,
        "reference_id": reference.reference_id,
        "chip_type": reference.chip_type,
        "layout_sha256": reference.layout_sha256,
        "arrays": list(reference.arrays),
        "input_sha256": list(reference.input_sha256),
        "genemill_version": reference.genemill_version,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as fh:
            np.savez(
                fh,
                meta=np.array(json.dumps(meta)),
                target=reference.model.target,
                probe_effects=reference.model.probe_effects,
                offsets=reference.model.offsets,
            )
        Path(temporary).replace(target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


def load_rma_reference(path: str | Path) -> RmaReference:
    """Read a reference written by :func:`save_rma_reference` (InputError naming the file if not)."""
    source = Path(path)
    try:
        with np.load(source, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = {name: np.array(npz[name]) for name in ("target", "probe_effects", "offsets")}
    except (OSError, ValueError, KeyError) as exc:
        msg = f"{source}: not a readable RMA reference file ({exc})"
        raise InputError(msg) from exc
    if meta.get("format") != REFERENCE_FORMAT:
        msg = f"{source}: RMA reference format {meta.get('format')!r}, expected {REFERENCE_FORMAT}"
        raise InputError(msg)
    model = RmaReferenceModel(
        target=arrays["target"].astype(np.float64),
        probe_effects=arrays["probe_effects"].astype(np.float64),
        offsets=arrays["offsets"].astype(np.int64),
    )
    return RmaReference(
        reference_id=meta["reference_id"],
        chip_type=meta["chip_type"],
        layout_sha256=meta["layout_sha256"],
        model=model,
        arrays=tuple(meta["arrays"]),
        input_sha256=tuple(meta["input_sha256"]),
        genemill_version=meta["genemill_version"],
    )


def check_reference(reference: RmaReference, layout: CdfLayout, *, cdf_label: str) -> None:
    """Raise UnsupportedPlatformError unless ``reference`` was built on ``layout`` (same CDF)."""
    if reference.layout_sha256 == layout_sha256(layout):
        return
    msg = (
        f"RMA reference {reference.reference_id} was built for chip type {reference.chip_type!r} "
        f"({reference.model.target.size} PM probes) but CDF {cdf_label} describes "
        f"{layout.chip_type!r} ({layout.pm_index.size} PM probes): a reference serves only the "
        "platform (CDF) it was built on"
    )
    raise UnsupportedPlatformError(msg)


def _distinct_names(cel_paths: Sequence[str | Path], what: str) -> list[str]:
    names = [sample_name(path) for path in cel_paths]
    if not names:
        msg = f"{what} needs at least one CEL file"
        raise InputError(msg)
    if len(set(names)) != len(names):
        msg = f"two CEL files share a sample name: {sorted(n for n in names if names.count(n) > 1)[0]!r}"
        raise InputError(msg)
    return names


def _sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def probe_set_table(expression: NDArray[np.float64], layout: CdfLayout, names: list[str]) -> pd.DataFrame:
    """Probe sets with probes, in affy's row order, as a DataFrame with one column per sample.

    ``expression`` has one row per probe set of ``layout`` (empty sets included, then dropped).
    """
    keep = np.diff(layout.offsets) > 0
    ids = [pid for pid, k in zip(layout.probeset_ids, keep, strict=True) if k]
    table = pd.DataFrame(expression[keep], index=pd.Index(ids, name="probe_set_id"), columns=names)
    keys = [_collation_key(pid) for pid in ids]
    return table.iloc[sorted(range(len(ids)), key=keys.__getitem__)]


def sample_name(path: str | Path) -> str:
    """Return the sample name of a CEL path: the file name without ``.gz`` and ``.CEL``."""
    return _strip_suffixes(Path(path).name, (".gz", ".cel"))


def _pm_matrix(
    cel_paths: Sequence[str | Path], layout: CdfLayout, *, cdf_label: str, workers: int
) -> NDArray[np.floating]:
    """Read the PM intensities of every CEL into a Fortran-ordered ``(probes, arrays)`` matrix.

    Binary CELs store float32, kept as is (half the memory); text CELs need float64.
    """
    dtype = np.float64 if any(_is_text_cel(Path(path)) for path in cel_paths) else np.float32
    pm = np.empty((layout.pm_index.size, len(cel_paths)), dtype=dtype, order="F")

    def load(j: int) -> None:
        path = Path(cel_paths[j])
        cel = parse_cel(path.read_bytes(), name=str(path))
        check_platform(cel, layout, cdf_label=cdf_label)
        pm[:, j] = cel.intensities[layout.pm_index]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(load, range(len(cel_paths))))
    return pm


def _is_text_cel(path: Path) -> bool:
    """Tell a text (v3) CEL from a binary one by its first bytes (gzip looked into)."""
    with path.open("rb") as fh:
        head = fh.read(64)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as fh:
            head = fh.read(64)
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[CEL]")


def check_platform(cel: CelFile, layout: CdfLayout, *, cdf_label: str) -> None:
    """Raise UnsupportedPlatformError naming both files unless ``cel`` fits ``layout``."""
    known = {_normalize(name) for name in (layout.chip_type, *layout.aliases) if name}
    same_size = (cel.rows, cel.cols) == (layout.rows, layout.cols)
    if same_size and (not cel.chip_type or not known or _normalize(cel.chip_type) in known):
        return
    described = layout.chip_type or (layout.aliases[0] if layout.aliases else "")
    msg = (
        f"{cel.path} is chip type {cel.chip_type!r} ({cel.cols}x{cel.rows} cells) but CDF {cdf_label} "
        f"describes {described!r} ({layout.cols}x{layout.rows} cells)"
    )
    raise UnsupportedPlatformError(msg)


def _normalize(chip_type: str) -> str:
    return re.sub(r"[^a-z0-9]", "", chip_type.lower())


def _strip_suffixes(name: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _collation_key(name: str) -> tuple[bytes, bytes]:
    """Sort key of ICU's root collation for ASCII names: primary weights, then lower before upper."""
    if not name.isascii():  # not seen in probe-set ids: after the ASCII ones, in code-point order
        return b"\xff\xff" + name.encode("utf-8"), b""
    raw = name.encode("ascii")
    return raw.translate(_PRIMARY), raw.translate(_TERTIARY)


def _atomic_save(layout: CdfLayout, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".npz.tmp")
    os.close(handle)
    try:
        save_cdf_cache(layout, Path(temporary))
        Path(temporary).replace(target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def mas5(cel_paths: Sequence[str | Path], *, cdf: str | Path | CdfLayout) -> pd.DataFrame:
    """Return MAS5 signal (linear), probe sets (rows) x samples (columns), as ``affy::mas5()``.

    Defaults of affy: MAS5 background, ideal mismatch, Tukey biweight, each array scaled to a 2 %
    trimmed mean of 500 (:func:`genemill.numerics.mas5.mas5`). Arrays are processed one at a time
    (MAS5 is per array). Rows and columns are ordered as in :func:`rma`. Detection p-values and
    P/M/A calls (``affy::mas5calls``) come from :func:`genemill.numerics.mas5.mas5_detection`.
    """
    from genemill.numerics.mas5 import mas5 as mas5_arrays  # kept local: this function was appended

    layout = cdf if isinstance(cdf, CdfLayout) else read_cdf(cdf)
    cdf_label = str(cdf) if not isinstance(cdf, CdfLayout) else (layout.chip_type or "<layout>")
    names = _distinct_names(cel_paths, "mas5")
    sizes = np.diff(layout.offsets)
    offsets = np.concatenate([[0], np.cumsum(sizes[sizes > 0])])
    signal = np.empty((offsets.size - 1, len(names)))
    for j, path in enumerate(cel_paths):
        cel = read_cel(path)
        check_platform(cel, layout, cdf_label=cdf_label)
        result = mas5_arrays(
            cel.intensities,
            layout.pm_index,
            layout.mm_index,
            offsets=offsets,
            n_cols=layout.cols,
            n_rows=layout.rows,
        )
        signal[:, j] = result.signal[:, 0]
    ids = [pid for pid, size in zip(layout.probeset_ids, sizes, strict=True) if size > 0]
    table = pd.DataFrame(signal, index=pd.Index(ids, name="probe_set_id"), columns=names)
    keys = [_collation_key(pid) for pid in ids]
    return table.iloc[sorted(range(len(ids)), key=keys.__getitem__)]
