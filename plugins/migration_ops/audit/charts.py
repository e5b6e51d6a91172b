"""Static charts for the reports: SVG files rendered with matplotlib, readable offline.

Only counts, entity names, rule names and seconds are plotted. The Agg backend is used
(no display); SVG text stays text (``svg.fonttype = none``) so a chart is small, searchable
and identical between runs of the same figures (no embedded date).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

plt.rcParams.update(
    {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
)
COLOURS = {"loaded": "#2e7d32", "merged": "#1d4e89", "quarantined": "#c62828"}


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return path


def _height(n: int) -> float:
    return max(1.6, 0.32 * n + 0.9)


def outcomes(rows: Sequence[Mapping[str, int | str]], path: Path) -> Path:
    """Stacked bars: rows per entity by outcome (loaded, merged, quarantined)."""
    names = [str(r["entity"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7.5, _height(len(names))))
    left = [0] * len(names)
    for outcome, colour in COLOURS.items():
        values = [int(r[f"{outcome}_rows"] or 0) for r in rows]
        ax.barh(names, values, left=left, color=colour, label=outcome)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("legacy rows")
    ax.invert_yaxis()
    ax.legend(loc="lower right", frameon=False)
    ax.set_title("Rows per entity by outcome")
    return _save(fig, path)


def counts(values: Mapping[str, float], path: Path, *, title: str, xlabel: str) -> Path:
    """Horizontal bars of one number per label (quarantine per rule, seconds per step)."""
    labels = list(values) or ["(none)"]
    numbers = [float(v) for v in values.values()] or [0.0]
    fig, ax = plt.subplots(figsize=(7.5, _height(len(labels))))
    ax.barh(labels, numbers, color="#1d4e89")
    for y, number in enumerate(numbers):
        ax.text(number, y, f" {number:g}", va="center")
    ax.set_xlabel(xlabel)
    ax.invert_yaxis()
    ax.set_title(title)
    return _save(fig, path)
