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
import resource, sys, threading
import numpy as np
from genemill.pipeline.heap import keep_temporaries_on_heap

def job():
    tuned = keep_temporaries_on_heap() if sys.argv[1] == "tuned" else None
    a = np.ones(1_500_000)
    b = [np.ones(1_000_000) for _ in range(6)]  # a job's working set: more than one sub-heap
    del b
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        b = [a * 2.0 for _ in range(3)]
        c = b[0] + a
        del b, c
    print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

if sys.argv[2] == "thread":  # as Dask runs tasks: in a thread, with its own malloc arena
    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
else:
    job()
"""


def _faults(mode: str, where: str) -> tuple[str, int]:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, where], env=env, capture_output=True, text=True, check=True
    )
    tuned, faults = done.stdout.split()
    return tuned, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc thresholds")
@pytest.mark.parametrize("where", ["main", "thread"])
def test_temporaries_stay_on_the_heap_once_tuned(where: str) -> None:
    _, plain = _faults("plain", where)
    tuned, faults = _faults("tuned", where)
    assert tuned == "True"
    # Untuned, the 12 MB temporaries come back as fresh pages: ~100,000 faults in 50 rounds.
    assert plain > 50_000
    assert faults < plain / 20
