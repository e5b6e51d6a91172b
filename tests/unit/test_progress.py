"""Progress lines: throttled to one per interval, with rate and ETA, counts only."""

from __future__ import annotations

import logging

from migration_ops.progress import Progress, started


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_logs_at_most_once_per_interval_with_rate_and_eta(caplog) -> None:
    clock = Clock()
    progress = Progress("extract profiles", total=1000, clock=clock, interval=5)
    with caplog.at_level(logging.INFO, logger="migration_ops.progress"):
        for _ in range(4):  # 4 chunks within 3 seconds: no line yet
            clock.now += 0.75
            progress.add(50)
        assert caplog.messages == []
        clock.now += 2.0  # 5 s after the start, 250 rows done
        progress.add(50)
        clock.now += 1.0
        progress.add(50)  # 1 s after the last line: throttled
        clock.now += 4.0
        progress.add(100)
        progress.finish()
    assert caplog.messages == [
        "extract profiles: 250/1000 (25.0%) rows, 50 rows/s, ETA 15s",
        "extract profiles: 400/1000 (40.0%) rows, 40 rows/s, ETA 15s",
        "extract profiles: 400/1000 (40.0%) rows, 40 rows/s, ETA 15s (done)",
    ]


def test_without_a_total_there_is_no_eta() -> None:
    clock = Clock()
    progress = Progress("extract auth_user", unit="bytes", clock=clock)
    progress.add(4096)
    clock.now += 2
    assert progress.line(clock.now) == "extract auth_user: 4096 bytes, 2048 bytes/s"


def test_a_set_based_step_logs_its_start_then_rows_and_rate(caplog) -> None:
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="migration_ops.progress"):
        progress = started("validate profiles", 400)
        progress.clock = clock
        progress.started = clock.now
        clock.now += 8
        progress.finish(400)
    assert caplog.messages == [
        "validate profiles: started (400 rows expected)",
        "validate profiles: 400/400 (100.0%) rows, 50 rows/s (done)",
    ]


def test_the_interval_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("MIGRATION_PROGRESS_SECONDS", "0.5")
    assert Progress("load profiles").interval == 0.5
    monkeypatch.delenv("MIGRATION_PROGRESS_SECONDS")
    assert Progress("load profiles").interval == 5.0
