"""The bench's figures: issue 20's ratios beside their targets, printed and in ``bench.json``.

``reports/bench.json``::

    {"scale", "seed", "measured_at", "cpu_count",
     "entities": {name: {"phase", "rows", "source_rows", "first_load_s", "rerun_s",
                         "raw_copy_s", "steps": {step: s}, "rerun_steps": {step: s},
                         "peak_rss_mb"}},
     "gx_import_s", "migrate_wall_s", "airflow": {...} | {"skipped"},
     "pgloader": {...} | {"skipped"}, "peak_rss_mb", "ratios": {...}, "targets": {...}}

Seconds are wall-clock; ``rows`` are the entity's primary legacy table's rows and
``source_rows`` those of every legacy table it reads (what the raw COPY copies).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: The entity issue 20's ratios are about (1M rows at scale 1.0, five foreign keys).
RATIO_ENTITY = "workflow_tasks"

#: Issue 20's targets (scale 1.0, 2 cores): ratio name -> (bound, how it is printed).
TARGETS: dict[str, tuple[float, str]] = {
    "first_load_over_raw_copy": (12.0, "≤ 12×"),
    "load_over_raw_copy": (4.0, "≤ 4×"),
    "rerun_over_raw_copy": (4.0, "≤ 4×"),
    "migrate_wall_s": (240.0, "< 240 s at scale 1.0"),
    "peak_rss_mb": (500.0, "< 500 MB"),
}


@dataclass
class EntityResult:
    """One entity's first load and no-change rerun, step by step, beside its raw COPY."""

    phase: int
    rows: int
    source_rows: int
    steps: dict[str, float] = field(default_factory=dict)
    rerun_steps: dict[str, float] = field(default_factory=dict)
    raw_copy_s: float = 0.0
    peak_rss_mb: float = 0.0
    #: The first load's bulk path, seconds per part (empty when it upserted).
    load_parts: dict[str, float] = field(default_factory=dict)

    @property
    def first_load_s(self) -> float:
        return sum(self.steps.values())

    @property
    def rerun_s(self) -> float:
        return sum(self.rerun_steps.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "rows": self.rows,
            "source_rows": self.source_rows,
            "first_load_s": round(self.first_load_s, 3),
            "rerun_s": round(self.rerun_s, 3),
            "raw_copy_s": round(self.raw_copy_s, 3),
            "steps": {step: round(s, 3) for step, s in self.steps.items()},
            "rerun_steps": {step: round(s, 3) for step, s in self.rerun_steps.items()},
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "load_parts": {part: round(s, 3) for part, s in self.load_parts.items()},
        }


def ratios(entities: dict[str, EntityResult]) -> dict[str, float | None]:
    """Issue 20's three ratios for :data:`RATIO_ENTITY` (``None`` when it was not run)."""
    entity = entities.get(RATIO_ENTITY)
    if entity is None or not entity.raw_copy_s:
        return dict.fromkeys(
            ("first_load_over_raw_copy", "load_over_raw_copy", "rerun_over_raw_copy")
        )
    return {
        "first_load_over_raw_copy": round(entity.first_load_s / entity.raw_copy_s, 2),
        "load_over_raw_copy": round(entity.steps["load"] / entity.raw_copy_s, 2),
        "rerun_over_raw_copy": round(entity.rerun_s / entity.raw_copy_s, 2),
    }


def build(
    entities: dict[str, EntityResult], airflow: dict[str, Any], pgloader: dict[str, Any], **run: Any
) -> dict[str, Any]:
    """The whole report; ``run`` holds the run's own facts (scale, seed, gx_import_s)."""
    peaks = [e.peak_rss_mb for e in entities.values()] + [airflow.get("task_peak_rss_mb") or 0.0]
    return {
        **run,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "entities": {name: result.as_json() for name, result in entities.items()},
        "migrate_wall_s": airflow.get("wall_s"),
        "airflow": airflow,
        "pgloader": pgloader,
        "peak_rss_mb": round(max(peaks), 1),
        "ratios": ratios(entities),
        "targets": {name: text for name, (_, text) in TARGETS.items()},
    }


def print_load_parts(entities: dict[str, EntityResult]) -> None:
    """Where :data:`RATIO_ENTITY`'s first load goes: the bulk path's parts beside the raw COPY.

    The keys, indexes and foreign keys are built once over every row whatever the insert
    costs; their seconds over the raw COPY bound the load step's ratio from below.
    """
    entity = entities.get(RATIO_ENTITY)
    if entity is None or not entity.load_parts or not entity.raw_copy_s:
        return
    print(
        f"\n{RATIO_ENTITY} first load, the bulk path's parts (raw COPY {entity.raw_copy_s:.2f} s):"
    )
    for part, seconds in entity.load_parts.items():
        label = part.replace("_", " ")
        print(f"  {label:<24}{seconds:>7.2f} s {seconds / entity.raw_copy_s:>6.1f}×")
    rest = entity.steps["load"] - sum(entity.load_parts.values())
    print(f"  {'rest of the load step':<24}{rest:>7.2f} s {rest / entity.raw_copy_s:>6.1f}×")


def print_targets(report: dict[str, Any]) -> None:
    """The measured ratios, wall time and peak memory beside issue 20's targets."""
    print(f"\nissue 20's targets (scale 1.0, 2 cores; this run: scale {report['scale']}):")
    for label, value, unit, name in _measured(report):
        bound, text = TARGETS[name]
        if value is None:
            print(f"  {label:<44}{'not run':>10}   target {text}")
            continue
        print(f"  {label:<44}{value:>9.1f}{unit:<3} target {text:<22}", end="")
        print(_verdict(name, value <= bound, report))


#: The ratios' names in :func:`print_targets`.
RATIO_LABELS = {
    "first_load_over_raw_copy": "first load",
    "load_over_raw_copy": "load step",
    "rerun_over_raw_copy": "no-change rerun",
}


def _measured(report: dict[str, Any]) -> list[tuple[str, float | None, str, str]]:
    """(label, value, unit, target) of every line :func:`print_targets` prints."""
    ratios = [
        (f"{RATIO_ENTITY} {what} / raw COPY", report["ratios"][name], "×", name)
        for name, what in RATIO_LABELS.items()
    ]
    entity_peak = max((e["peak_rss_mb"] for e in report["entities"].values()), default=None)
    airflow_peak = report["airflow"].get("task_peak_rss_mb")
    return [
        *ratios,
        ("phases through Airflow, wall", report["migrate_wall_s"], " s", "migrate_wall_s"),
        ("peak RSS, one entity's steps (bench)", entity_peak, " MB", "peak_rss_mb"),
        ("peak RSS, airflow dags test (a phase)", airflow_peak, " MB", "peak_rss_mb"),
    ]


def _verdict(name: str, within: bool, report: dict[str, Any]) -> str:
    if name == "migrate_wall_s" and report["airflow"].get("exit_code"):
        return f"FAILED (exit {report['airflow']['exit_code']}, see {report['airflow']['log']})"
    if name == "migrate_wall_s" and report["scale"] != 1.0:
        return "(applies at scale 1.0)"
    return "met" if within else "NOT met"


def print_pgloader(pgloader: dict[str, Any], entities: dict[str, EntityResult]) -> None:
    """pgloader's time beside our first load and the raw COPY of the same tables."""
    if "skipped" in pgloader:
        print(f"\npgloader: skipped, {pgloader['skipped']}")
        return
    ours = sum(e.first_load_s for e in entities.values())
    raw = sum(e.raw_copy_s for e in entities.values())
    print(
        f"\npgloader (defaults, whole tables, schema + indexes + keys): {pgloader['seconds']:.1f}s "
        f"(exit {pgloader['exit_code']}, peak RSS {pgloader['peak_rss_mb'] or 0:.0f} MB, "
        f"{len(pgloader['tables'])} tables in its summary); "
        f"ours, first load of the same entities: {ours:.1f}s; raw binary COPY: {raw:.1f}s"
    )
    table = pgloader["tables"].get("dispatch_task")
    entity = entities.get(RATIO_ENTITY)
    if table and entity and entity.raw_copy_s:
        print(
            f"pgloader's dispatch_task line: {table['seconds']:.2f}s "
            f"({table['seconds'] / entity.raw_copy_s:.1f}× its raw COPY)"
        )


def print_airflow(airflow: dict[str, Any], through: int) -> None:
    """Wall time and peak memory of ``migrate --through`` (real Airflow, fresh target)."""
    if "skipped" in airflow:
        print(f"\nphases 1-{through} through Airflow: skipped, {airflow['skipped']}")
        return
    print(
        f"\nphases 1-{through} through Airflow (migrate --through {through}, fresh target): "
        f"{airflow['wall_s']:.1f}s wall, exit {airflow['exit_code']}; peak RSS per process:"
    )
    for name, mb in sorted(airflow["processes"].items(), key=lambda item: -item[1]):
        print(f"  {mb:>7.0f} MB  {name}")


def write(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
