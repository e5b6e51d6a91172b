"""One entity's figures in the bench: step seconds of its first load and rerun, raw COPY, memory."""

from __future__ import annotations

from dataclasses import dataclass, field


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
