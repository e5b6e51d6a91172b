"""Clock, random streams and the defect log shared by the sandbox table builders.

Determinism rests on two rules: every table draws from its own ``random.Random`` stream
seeded by ``(seed, stream name)`` (so adding a column to one table does not shift another
table's values), and every timestamp comes from a fixed window, never from the wall clock.
Times are kept as integer seconds after :data:`START` while building, because millions of
small ints are cheaper than datetimes and sort the same way.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from include.sandbox.defects import DEFECTS

#: The legacy system's history: the earliest documented comment is 2018-03-22 (§1a).
START = datetime(2018, 3, 1, tzinfo=UTC)
#: Where the sandbox's history ends (the last production counts are from Nov 2025).
END = datetime(2025, 11, 1, tzinfo=UTC)
#: ``sandbox.build_info.built_at_fixed``: a constant, so two builds are byte-identical.
BUILT_AT = END
SPAN = int((END - START).total_seconds())
HOUR = 3_600
DAY = 86_400
#: Message activity grows over time (60,976 records in July 2025, ~70.7k in October, §1c):
#: the density of such events at fraction x of the span is proportional to x ** GROWTH.
#: Enrolment does not grow (7,849 patients in Jan 2025, 8,488 in Nov): growth 0.
GROWTH = 0.6


def stream(seed: int, name: str) -> random.Random:
    """An independent, reproducible random stream for one table or concern."""
    return random.Random(f"sandbox:{seed}:{name}")


def at(seconds: int) -> datetime:
    """The timestamp ``seconds`` after :data:`START`."""
    return START + timedelta(seconds=seconds)


def day_of(seconds: int) -> date:
    """The calendar date (UTC) of a time in seconds after :data:`START`."""
    return at(seconds).date()


def clamp(seconds: int) -> int:
    """Keep a time inside the sandbox's history window."""
    return min(max(seconds, 0), SPAN - 1)


def growth_time(u: float, growth: float = GROWTH) -> int:
    """Time of quantile ``u`` (0..1) of events whose rate grows as ``x ** growth``."""
    return min(int(SPAN * u ** (1 / (1 + growth))), SPAN - 1)


def sorted_growth_times(rng: random.Random, count: int, growth: float = GROWTH) -> list[int]:
    """``count`` event times, ascending, following the growth curve."""
    return sorted(growth_time(rng.random(), growth) for _ in range(count))


def year_of(seconds: int) -> int:
    """Calendar year of a time in seconds after :data:`START`."""
    return at(seconds).year


class DefectLog:
    """Every injected defect instance, written to ``sandbox.injected_defects`` at the end.

    Tests use it to prove that the migration repaired or quarantined each instance; the
    names are checked against the catalogue so a typo cannot create an unchecked class.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int, int | None]] = []

    def add(
        self, defect: str, table: str, legacy_id: int, *, related_id: int | None = None
    ) -> None:
        """Record one instance of ``defect`` on row ``legacy_id`` of ``table``.

        ``related_id`` names the other row of the same table the instance is about, where
        there is one: the original of a duplicate patient (the de-duplication's truth).
        """
        if defect not in DEFECTS:
            raise KeyError(f"unknown defect class {defect!r}")
        self.rows.append((defect, table, legacy_id, related_id))
