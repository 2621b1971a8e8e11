"""Write a GENERATED (synthetic) HG-U133 Plus 2.0-shaped CDF and CEL files for benchmarks.

Nothing here is real data. The chip ``GENERATED_Plus2`` has the geometry of Affymetrix HG-U133
Plus 2.0 (1164 x 1164 cells, 54,675 probe sets, ~604,000 PM/MM pairs: mostly 11 pairs, AFFX-like
controls with 16 or 20); its ASCII CDF (GC3.0) is readable by ``makecdfenv`` and by genemill.
CELs are binary XDA v4 (float32), with intensities rounded to 0.1 and clipped to 65535 like a
16-bit scanner (affyio refuses v4 intensities above 65535). Every file name and header says
GENERATED.

    python bench/generate_affy.py --arrays 100 --out /tmp/genemill-bench-affy
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np

SIDE = 1164
N_SETS = 54_675
CHIP = "GENERATED_Plus2"
CELL_COLUMNS = "X Y PROBE FEAT QUAL EXPOS POS CBASE PBASE TBASE ATOM INDEX CODONIND CODON REGIONTYPE REGION"
CELL_HEADER = CELL_COLUMNS.replace(" ", "\t")
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}


def design(seed: int = 20240601) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Return probe-set ids, probes per set, and the PM cell (x, y) of every pair (MM is y + 1)."""
    rng = np.random.default_rng(seed)
    sizes = np.full(N_SETS, 11)
    sizes[:62] = rng.choice([16, 20], size=62)  # AFFX-like controls
    sizes[62:300] = 8
    ids = [f"AFFX-GENERATED-{k:03d}_at" for k in range(62)]
    ids += [f"GENERATED_{k:05d}_s_at" if k % 7 == 0 else f"GENERATED_{k:05d}_at" for k in range(62, N_SETS)]
    slots = np.arange(SIDE * (SIDE // 2))  # PM on even rows, MM right below
    chosen = rng.choice(slots, size=int(sizes.sum()), replace=False)
    xy = np.column_stack([chosen % SIDE, 2 * (chosen // SIDE)])
    return ids, sizes, xy


def write_cdf(path: Path, ids: list[str], sizes: np.ndarray, xy: np.ndarray) -> None:
    header = (
        f"[CDF]\nVersion=GC3.0\n\n[Chip]\nName={CHIP}\nRows={SIDE}\nCols={SIDE}\n"
        f"NumberOfUnits={len(ids)}\nMaxUnit={len(ids)}\nNumQCUnits=0\nChipReference=\n\n"
    )
    starts = np.concatenate([[0], np.cumsum(sizes)])
    with path.open("w", newline="\n") as out:
        out.write(header)
        for unit, name in enumerate(ids):
            n = int(sizes[unit])
            out.write(f"[Unit{unit + 1}]\nName=NONE\nDirection=1\nNumAtoms={n}\nNumCells={2 * n}\n")
            out.write(f"UnitNumber={unit + 1}\nUnitType=3\nNumberBlocks=1\n\n")
            out.write(
                f"[Unit{unit + 1}_Block1]\nName={name}\nBlockNumber=1\nNumAtoms={n}\nNumCells={2 * n}\n"
            )
            out.write(f"StartPosition=0\nStopPosition={n - 1}\nCellHeader={CELL_HEADER}\n")
            lines = []
            for atom, (x, y) in enumerate(xy[starts[unit] : starts[unit + 1]]):
                # All four bases occur: makecdfenv's pmormm() finds no PM at all on a chip whose
                # CDF lacks one of them. PM probe base = complement of the target base, MM = target.
                target = "ACGT"[(unit + atom) % 4]
                for k, (yy, pbase) in enumerate(((y, COMPLEMENT[target]), (y + 1, target))):
                    fields = (
                        x,
                        yy,
                        "N",
                        "control",
                        name,
                        atom,
                        13,
                        target,
                        pbase,
                        target,
                        atom,
                        x + yy * SIDE,
                    )
                    text = "\t".join(map(str, fields))
                    lines.append(f"Cell{2 * atom + k + 1}={text}\t-1\t-1\t99\t\n")
            out.write("".join(lines) + "\n")


def intensities(sizes: np.ndarray, xy: np.ndarray, array: int, seed: int = 7) -> np.ndarray:
    """Return GENERATED float32 intensities for all cells of one array (cell order x + y * SIDE)."""
    design_rng = np.random.default_rng(seed)  # shared across arrays: expression and affinities
    level = np.repeat(design_rng.lognormal(5.0, 1.6, size=sizes.size), sizes)
    affinity = design_rng.lognormal(0.0, 0.7, size=level.size)
    rng = np.random.default_rng(seed * 1000 + array)
    scale = rng.lognormal(0.0, 0.25)
    change = np.repeat(rng.lognormal(0.0, 0.3, size=sizes.size), sizes)
    signal = level * affinity * scale * change * rng.lognormal(0.0, 0.15, size=level.size)
    cells = rng.normal(110.0, 25.0, size=SIDE * SIDE) * rng.lognormal(0.0, 0.1)
    pm_cells = xy[:, 0] + xy[:, 1] * SIDE
    cells[pm_cells] += signal
    cells[pm_cells + SIDE] += 0.3 * signal * rng.lognormal(0.0, 0.3, size=level.size)
    return np.clip(np.round(np.abs(cells) + 1.0, 1), 1.0, 65535.0).astype(np.float32)


def write_cel_v4(path: Path, values: np.ndarray, *, name: str) -> None:
    header = (
        f"Cols={SIDE}\nRows={SIDE}\nTotalX={SIDE}\nTotalY={SIDE}\nOffsetX=0\nOffsetY=0\n"
        "GridCornerUL=0 0\nGridCornerUR=0 0\nGridCornerLR=0 0\nGridCornerLL=0 0\n"
        "Axis-invertX=0\nAxisInvertY=0\nswapXY=0\n"
        f"DatHeader=[0..65535]  {name}:CLS=0 RWS=0 XIN=0  YIN=0  VE=0        2.0 01/01/24 00:00:00 GENERATED "
        f" \x14  \x14 {CHIP}.1sq \x14  \x14  \x14  \x14  \x14  \x14  \x14  \x14  \x14 6\n"
        "Algorithm=Percentile\nAlgorithmParameters=Percentile:75;CellMargin:2;GENERATED:TRUE\n"
    ).encode("latin-1")
    algorithm, parameters = b"Percentile", b"Percentile:75;CellMargin:2;GENERATED:TRUE"
    cells = np.zeros(values.size, dtype=[("mean", "<f4"), ("stdev", "<f4"), ("npixels", "<i2")])
    cells["mean"] = values
    cells["stdev"] = values * np.float32(0.1)
    cells["npixels"] = 25
    with path.open("wb") as out:
        out.write(struct.pack("<5i", 64, 4, SIDE, SIDE, SIDE * SIDE))
        for text in (header, algorithm, parameters):
            out.write(struct.pack("<i", len(text)) + text)
        out.write(struct.pack("<iIIi", 2, 0, 0, 0))
        out.write(cells.tobytes())


def generate(out: Path, n_arrays: int) -> tuple[Path, list[Path]]:
    """Create (or reuse) the CDF and ``n_arrays`` CELs under ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    ids, sizes, xy = design()
    cdf = out / f"{CHIP}.CDF"
    if not cdf.exists() or b"\tG\tC\t" not in cdf.read_bytes()[:100_000]:  # rewrite an A/T-only CDF
        write_cdf(cdf.with_suffix(".tmp"), ids, sizes, xy)
        cdf.with_suffix(".tmp").replace(cdf)
    cels = []
    for k in range(n_arrays):
        cel = out / f"GENERATED_sample_{k + 1:03d}.CEL"
        if not cel.exists():
            write_cel_v4(cel, intensities(sizes, xy, k), name=cel.stem)
        cels.append(cel)
    return cdf, cels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arrays", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path("/tmp/genemill-bench-affy"))
    args = parser.parse_args()
    cdf, cels = generate(args.out, args.arrays)
    print(f"GENERATED data: {cdf} and {len(cels)} CELs in {args.out}")


if __name__ == "__main__":
    main()
