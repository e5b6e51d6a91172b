"""The bench's figures: one entity's steps beside its raw COPY, and pgloader beside them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The entity issue 20's ratios are about (1M rows at scale 1.0, five foreign keys).
RATIO_ENTITY = "workflow_tasks"


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

    @property
    def first_load_s(self) -> float:
        return sum(self.steps.values())

    @property
    def rerun_s(self) -> float:
        return sum(self.rerun_steps.values())


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
