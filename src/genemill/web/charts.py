"""Server-side SVG charts of an experiment's values: per-sample boxplots and a sample PCA.

Input is a genes x samples float array on a log2 scale (NaN = gene not measured in that sample).

* Boxplot: per sample, Tukey box statistics from ``numerics.sample_summaries.box_stats``;
  outliers are not drawn.
* PCA: ``numerics.sample_summaries.principal_components`` (as ``prcomp(t(x))`` in R); axis labels
  give each component's share of the variance.

The SVG is self-contained (inline styles), readable without JavaScript; every mark carries a
``<title>`` so browsers show the sample on hover.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

import numpy as np
from numpy.typing import NDArray

from genemill.numerics.sample_summaries import MIN_PCA_GENES, MIN_PCA_SAMPLES, box_stats, principal_components

__all__ = ["PALETTE", "boxplot_svg", "message_svg", "pca_svg"]

PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:11px;fill:#333"


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step) + 1)]


def _svg(width: int, height: int, body: list[str], *, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}" style="{_FONT}">'
        f'<rect width="{width}" height="{height}" fill="#fff"/>' + "".join(body) + "</svg>"
    )


def message_svg(message: str, *, width: int = 640, height: int = 120) -> str:
    """A placeholder chart carrying a sentence (e.g. why there is nothing to plot)."""
    text = f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">{escape(message)}</text>'
    return _svg(width, height, [text], label=message)


def _colors(groups: list[str]) -> dict[str, str]:
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(dict.fromkeys(groups))}


def _y_axis(ticks: list[float], y_of: Callable[[float], float], *, left: int, right: int) -> list[str]:
    body = []
    for tick in ticks:
        y = y_of(tick)
        body.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    return body


def boxplot_svg(
    values: NDArray[np.float64], samples: list[str], *, groups: list[str] | None = None, ylabel: str = "log2"
) -> str:
    """Boxplots of each sample's values (columns of ``values``, genes x samples)."""
    stats = [box_stats(values[:, j]) for j in range(values.shape[1])]
    finite = [s for s in stats if s is not None]
    if not finite:
        return message_svg("No finite values to plot.")
    low, high = min(s[0] for s in finite), max(s[4] for s in finite)
    pad = (high - low) * 0.05 or 1.0
    low, high = low - pad, high + pad
    step = 18 if len(samples) <= 60 else 10
    left, top, plot_h = 56, 16, 260
    width = max(480, left + 20 + step * len(samples))
    height = top + plot_h + 100

    def y_of(v: float) -> float:
        return top + plot_h * (high - v) / (high - low)

    colors = _colors(groups or ["all"] * len(samples))
    body = _y_axis(_nice_ticks(low, high), y_of, left=left, right=width - 10)
    body.append(
        f'<text transform="translate(14,{top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(ylabel)}</text>"
    )
    labels = groups or ["all"] * len(samples)
    for j, (name, stat) in enumerate(zip(samples, stats, strict=True)):
        x = left + 10 + step * j + step / 2
        if stat is not None:
            title = f"{name}: median {stat[2]:.2f}, IQR {stat[1]:.2f}–{stat[3]:.2f}"
            body.append(
                _box(x, [y_of(v) for v in stat], color=colors[labels[j]], width=step * 0.6, title=title)
            )
        body.append(
            f'<text transform="translate({x + 3:.1f},{top + plot_h + 8}) rotate(-60)" '
            f'text-anchor="end" style="font-size:9px">{escape(name)}</text>'
        )
    return _svg(width, height, body, label="Expression distribution per sample")


def _box(x: float, ys: list[float], *, color: str, width: float, title: str) -> str:
    low, q1, median, q3, high = ys
    half = width / 2
    return (
        f"<g><title>{escape(title)}</title>"
        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{low:.1f}" y2="{high:.1f}" stroke="#555"/>'
        f'<rect x="{x - half:.1f}" y="{q3:.1f}" width="{width:.1f}" height="{max(q1 - q3, 0.5):.1f}" '
        f'fill="{color}" fill-opacity="0.55" stroke="{color}"/>'
        f'<line x1="{x - half:.1f}" x2="{x + half:.1f}" y1="{median:.1f}" y2="{median:.1f}" stroke="#222" '
        'stroke-width="1.5"/></g>'
    )


def pca_svg(values: NDArray[np.float64], samples: list[str], *, groups: list[str], legend: str) -> str:
    """Scatter of samples on PC1/PC2 coloured by ``groups`` (one label per sample)."""
    pcs = principal_components(values)
    if pcs is None:
        return message_svg(
            "Too few samples or shared genes for a PCA "
            f"(needs {MIN_PCA_SAMPLES} samples, {MIN_PCA_GENES} genes)."
        )
    scores, fractions = pcs
    left, top, size = 56, 16, 300
    legend_x = left + size + 24
    colors = _colors(groups)
    width, height = legend_x + 200, top + size + 50
    raw = [(float(scores[:, k].min()), float(scores[:, k].max())) for k in (0, 1)]
    spans = [(lo - (hi - lo) * 0.08 - 1e-9, hi + (hi - lo) * 0.08 + 1e-9) for lo, hi in raw]

    def x_of(v: float) -> float:
        return left + size * (v - spans[0][0]) / (spans[0][1] - spans[0][0])

    def y_of(v: float) -> float:
        return top + size * (spans[1][1] - v) / (spans[1][1] - spans[1][0])

    body = _y_axis(_nice_ticks(*spans[1]), y_of, left=left, right=left + size)
    for tick in _nice_ticks(*spans[0]):
        body.append(f'<text x="{x_of(tick):.1f}" y="{top + size + 14}" text-anchor="middle">{tick:g}</text>')
    body.append(f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#bbb"/>')
    pc1 = f"PC1 ({fractions[0]:.0%})"
    body.append(f'<text x="{left + size / 2}" y="{top + size + 32}" text-anchor="middle">{pc1}</text>')
    body.append(
        f'<text transform="translate(14,{top + size / 2}) rotate(-90)" text-anchor="middle">'
        f"PC2 ({fractions[1]:.0%})</text>"
    )
    for (x, y), name, group in zip(scores.tolist(), samples, groups, strict=True):
        body.append(
            f'<circle cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="5" fill="{colors[group]}" fill-opacity="0.85" '
            f'stroke="#fff"><title>{escape(name)}: {escape(group)}</title></circle>'
        )
    body.append(f'<text x="{legend_x}" y="{top + 10}" style="font-weight:600">{escape(legend)}</text>')
    for i, (group, color) in enumerate(list(colors.items())[:16]):
        y = top + 28 + 18 * i
        body.append(f'<circle cx="{legend_x + 6}" cy="{y - 4}" r="5" fill="{color}"/>')
        body.append(f'<text x="{legend_x + 16}" y="{y}">{escape(group[:28])}</text>')
    return _svg(width, height, body, label=f"PCA of samples coloured by {legend}")
