"""genemill.affy RMA references: build, save, load, process single arrays, refuse other platforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genemill import affy
from genemill.errors import InputError, UnsupportedPlatformError

DATA = Path(__file__).parents[1] / "data"
FOCUS = DATA / "affy-hg-focus"
FOCUS_CDF = FOCUS / "HG-Focus.CDF.gz"
FOCUS_CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]
HU6800 = DATA / "affy-hu6800"


@pytest.mark.parametrize(
    ("cels", "cdf"),
    [(FOCUS_CELS, FOCUS_CDF), ([HU6800 / "T1_r1.CEL.gz"], HU6800 / "Hu6800.CDF.gz")],
    ids=["hg-focus", "hu6800"],
)
def test_saved_reference_reproduces_rma_one_array_at_a_time(tmp_path, cels, cdf) -> None:
    reference = affy.build_rma_reference(cels, cdf=cdf)
    path = affy.save_rma_reference(reference, tmp_path / "ref.npz")
    loaded = affy.load_rma_reference(path)
    assert loaded.reference_id == reference.reference_id
    assert loaded.arrays == tuple(affy.sample_name(c) for c in cels)
    assert len(loaded.input_sha256) == len(cels)
    together = affy.rma(cels, cdf=cdf)
    for cel in cels:
        alone = affy.rma([cel], cdf=cdf, reference=path)
        assert list(alone.index) == list(together.index)  # same rows, same (affy) order
        diff = np.abs(alone.iloc[:, 0].to_numpy() - together[affy.sample_name(cel)].to_numpy()).max()
        assert diff <= 1e-12


def test_reference_id_depends_on_the_inputs_only() -> None:
    first = affy.build_rma_reference(FOCUS_CELS, cdf=FOCUS_CDF)
    again = affy.build_rma_reference(list(reversed(FOCUS_CELS)), cdf=FOCUS_CDF, workers=1)
    one = affy.build_rma_reference(FOCUS_CELS[:1], cdf=FOCUS_CDF)
    assert first.reference_id == again.reference_id
    assert first.reference_id.startswith("hgfocus-")
    assert one.reference_id != first.reference_id


def test_reference_of_another_platform_refused() -> None:
    reference = affy.build_rma_reference(FOCUS_CELS, cdf=FOCUS_CDF)
    with pytest.raises(UnsupportedPlatformError, match=r"built for chip type 'HG-Focus' \(98149 PM probes\)"):
        affy.rma([HU6800 / "T1_r1.CEL.gz"], cdf=HU6800 / "Hu6800.CDF.gz", reference=reference)


def test_unreadable_reference_file_named(tmp_path) -> None:
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a reference")
    with pytest.raises(InputError, match=r"broken\.npz: not a readable RMA reference file"):
        affy.load_rma_reference(broken)
