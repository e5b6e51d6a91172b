"""Static charts for the reports: SVG files rendered with matplotlib, readable offline.

Only counts, entity names, rule names and seconds are plotted. The Agg backend is used
(no display); SVG text stays text (``svg.fonttype = none``) so a chart is small, searchable
and identical between runs of the same figures (no embedded date).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
    """Horizontal bars of one number per label (quarantine per rule)."""
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


#: One colour per pipeline step, in pipeline order (matplotlib's tab10, colour-blind friendly).
STEP_ORDER = (
    "extract",
    "transform",
    "dedup",
    "validate",
    "copy_objects",
    "load",
    "verify",
    "embed",
    "dify",
    "checkpoint",
)


def steps(timings: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Time per step per entity: one row per entity, one bar per step from its start to end.

    ``timings``: ``entity`` ('' for the phase's extract), ``step``, ``start`` (seconds after
    the run's first step) and ``seconds``. Bars are placed at their real start, so entities
    that ran in parallel overlap instead of being added up.
    """
    entities = list(dict.fromkeys(str(t["entity"]) or "(phase)" for t in timings))
    fig, ax = plt.subplots(figsize=(7.5, _height(len(entities)) + 0.6))
    palette = plt.get_cmap("tab10")
    drawn: set[str] = set()
    for t in timings:
        step = str(t["step"])
        colour = palette(STEP_ORDER.index(step) if step in STEP_ORDER else len(STEP_ORDER) - 1)
        row = entities.index(str(t["entity"]) or "(phase)")
        ax.barh(
            row,
            max(float(t["seconds"]), 0.001),
            left=float(t["start"]),
            color=colour,
            label=None if step in drawn else step,
        )
        drawn.add(step)
    ax.set_yticks(range(len(entities)), entities)
    ax.set_xlabel("seconds since the run's first step (each step's recorded start and end)")
    ax.invert_yaxis()
    # below the axes: inside, it would hide the bars of the last entities
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False, ncols=5, fontsize=7)
    ax.set_title("Time per step and entity")
    return _save(fig, path)
