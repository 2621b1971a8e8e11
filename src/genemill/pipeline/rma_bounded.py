"""Experiment-wide RMA that switches to bounded memory for large experiments.

``affy.rma`` holds every array's PM intensities at once (``probes x arrays`` values plus working
copies: 1.2 GB for 200 HG-U133 Plus 2.0 arrays), more than a job's first memory tier allows. Above
``max_in_memory_bytes`` of PM values (float64) :func:`experiment_rma` runs
:func:`genemill.numerics.rma_chunked.rma_chunked` instead: arrays read ``chunk_arrays`` at a time,
intermediate values in a disk-backed scratch matrix under ``scratch_dir`` (deleted afterwards),
the quantile target summed streaming. Both paths give ``affy.rma``'s table: the same numbers
(to rounding), probe sets in affy's order, one column per CEL named as ``affy.rma`` names it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from genemill import affy
from genemill.errors import InputError
from genemill.formats.cdf import CdfLayout
from genemill.numerics.rma_chunked import rma_chunked

__all__ = ["MAX_IN_MEMORY_BYTES", "experiment_rma", "pm_bytes"]

MAX_IN_MEMORY_BYTES = 512 << 20
"""PM matrix size (float64) above which RMA runs chunked: about 110 HG-U133 Plus 2.0 arrays."""


def pm_bytes(layout: CdfLayout, n_arrays: int) -> int:
    """Bytes of the float64 PM matrix of ``n_arrays`` arrays on ``layout``."""
    return int(layout.pm_index.size) * n_arrays * 8


def experiment_rma(
    paths: Sequence[Path],
    layout: CdfLayout,
    *,
    scratch_dir: Path,
    max_in_memory_bytes: int | None = None,
    chunk_arrays: int = 8,
) -> pd.DataFrame:
    """Log2 RMA of ``paths`` normalized together, probe sets x arrays; chunked above the threshold.

    ``max_in_memory_bytes`` defaults to :data:`MAX_IN_MEMORY_BYTES` (read at call time). The
    table's ``attrs["rma_path"]`` says which path ran (``"in-memory"`` or ``"chunked"``).
    """
    limit = MAX_IN_MEMORY_BYTES if max_in_memory_bytes is None else max_in_memory_bytes
    if pm_bytes(layout, len(paths)) <= limit:
        table = affy.rma(list(paths), cdf=layout)
        table.attrs["rma_path"] = "in-memory"
        return table
    names = [affy.sample_name(path) for path in paths]
    if len(set(names)) != len(names):
        msg = f"two CEL files share a sample name: {sorted(n for n in names if names.count(n) > 1)[0]!r}"
        raise InputError(msg)
    label = layout.chip_type or "<layout>"

    def load(start: int, stop: int) -> NDArray[np.float64]:
        columns = []
        for path in paths[start:stop]:
            cel = affy.read_cel(path)
            affy.check_platform(cel, layout, cdf_label=label)
            columns.append(np.asarray(cel.intensities[layout.pm_index], dtype=np.float64))
        return np.column_stack(columns)

    scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix="rma-scratch-") as folder:
        scratch = np.memmap(
            Path(folder) / "pm.f64",
            dtype=np.float64,
            mode="w+",
            order="F",
            shape=(int(layout.pm_index.size), len(paths)),
        )
        expression = rma_chunked(
            load, layout.offsets, n_arrays=len(paths), scratch=scratch, chunk_arrays=chunk_arrays
        )
        del scratch
    table = affy.probe_set_table(expression, layout, names)
    table.attrs["rma_path"] = "chunked"
    return table
