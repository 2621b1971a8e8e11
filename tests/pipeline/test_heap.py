"""Job processes keep large NumPy temporaries on the heap (glibc's malloc thresholds).

Each case runs in a fresh interpreter started as Dask's nanny starts workers
(``MALLOC_TRIM_THRESHOLD_=65536``) and counts the minor page faults of a loop that allocates and
frees 12 MB arrays, as the MAS5 and RMA kernels do.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys
import numpy as np
from genemill.pipeline.heap import keep_temporaries_on_heap
tuned = keep_temporaries_on_heap() if sys.argv[1] == "tuned" else None
a = np.ones(1_500_000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    b = a * 2.0
    c = b + a
    del b, c
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, check=True
    )
    tuned, faults = done.stdout.split()
    return tuned, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc thresholds")
def test_temporaries_stay_on_the_heap_once_tuned() -> None:
    _, plain = _faults("plain")
    tuned, faults = _faults("tuned")
    assert tuned == "True"
    # 100 allocations of 12 MB (2,930 pages each) fault in fresh pages every time without tuning.
    assert plain > 100_000 // 4
    assert faults < plain / 20
