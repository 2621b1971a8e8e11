"""`import genemill.rnaseq` stays light: pandas, pyarrow and the database layer load only when used.

A fresh interpreter pays for every module it imports; tximport's end-to-end time (bench/tximport.py)
depends on it. pandas is imported in the background by ``tximport`` itself, while files are parsed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from genemill.rnaseq import tximport

ZEBRAFISH = Path(__file__).resolve().parents[1] / "data" / "rnaseq-refinebio-SRP095529"
HEAVY = ("pandas", "pyarrow", "sqlalchemy", "httpx", "pydantic", "genemill.store", "genemill.pipeline")


def _modules_after(code: str) -> list[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_importing_genemill_rnaseq_loads_no_heavy_module() -> None:
    loaded = _modules_after("import genemill.rnaseq")
    heavy = [name for name in loaded if name.split(".")[0] in HEAVY or name.startswith(HEAVY)]
    assert heavy == []
    assert "numpy" in loaded


def test_tximport_in_a_fresh_process_returns_dataframes() -> None:
    files = [str(path) for path in sorted(ZEBRAFISH.glob("SRR*.quant.sf.gz"))[:2]]
    code = (
        "from genemill.rnaseq import tximport\n"
        f"result = tximport({files!r}, {str(ZEBRAFISH / 'genes_to_transcripts.txt.gz')!r}, "
        "tx2gene_order='gene_transcript')\n"
        "print(type(result.counts).__module__, result.counts.shape, float(result.counts.to_numpy().sum()))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    here = tximport(files, ZEBRAFISH / "genes_to_transcripts.txt.gz", tx2gene_order="gene_transcript")
    module, *_ = out.stdout.split(" ", 1)
    assert module.startswith("pandas")
    assert out.stdout.strip().endswith(repr(float(here.counts.to_numpy().sum())))
    assert f"({here.counts.shape[0]}, 2)" in out.stdout
    assert np.isfinite(here.counts.to_numpy()).all()
