"""Progress lines for long steps: rows done, rate and ETA, at most every few seconds.

A data engineer watching a task log of a multi-hour extract, load or object copy needs to see
that it moves and when it will end; a line per chunk would drown the log. Lines carry the
step's name (entity and table names), counts and rates only: never a value from a row, so no
PHI.

Two kinds of steps:

* streamed steps (COPY-based extract, object copy) call :meth:`Progress.add` per chunk and get
  a line with rows done, rows/s and (with a known total) the ETA, throttled to one line every
  ``MIGRATION_PROGRESS_SECONDS`` (5 s by default);
* set-based steps (one SQL statement: transform, validate, load) cannot report rows while
  the statement runs: :func:`started` logs their start (with the expected rows when known),
  :meth:`Progress.finish` the rows done and the rows/s once it returned.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: Seconds between two progress lines of one step, unless ``MIGRATION_PROGRESS_SECONDS`` says.
DEFAULT_INTERVAL = 5.0
INTERVAL_SETTING = "MIGRATION_PROGRESS_SECONDS"


def configured_interval() -> float:
    """Seconds between two lines: ``MIGRATION_PROGRESS_SECONDS``, else :data:`DEFAULT_INTERVAL`."""
    return float(os.environ.get(INTERVAL_SETTING) or DEFAULT_INTERVAL)


@dataclass
class Progress:
    """Counts what a step has done and logs it every ``interval`` seconds (and at the end).

    ``total`` (when known, even as an estimate) gives the percentage and the ETA; ``unit``
    names what is counted.
    """

    step: str
    total: int | None = None
    unit: str = "rows"
    interval: float = field(default_factory=configured_interval)
    clock: Callable[[], float] = time.monotonic
    logger: logging.Logger = log
    done: int = 0
    started: float = field(init=False)
    last_logged: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.last_logged = self.clock()

    def add(self, amount: int) -> None:
        """Count ``amount`` more; log a line when ``interval`` has passed since the last one."""
        self.done += amount
        now = self.clock()
        if now - self.last_logged >= self.interval:
            self.last_logged = now
            self.logger.info("%s", self.line(now))

    def finish(self, done: int | None = None) -> None:
        """Log the final line (rows done and average rate); ``done`` is the exact count if known."""
        if done is not None:
            self.done = done
        self.logger.info("%s (done)", self.line(self.clock()))

    def line(self, now: float) -> str:
        """``<step>: <done>[/<total> (<pct>%)] <unit>, <rate> <unit>/s[, ETA <s>s]``."""
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.step}: {self.done}"
        if self.total:
            text += f"/{self.total} ({100 * self.done / self.total:.1f}%)"
        text += f" {self.unit}, {rate:.0f} {self.unit}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", ETA {(self.total - self.done) / rate:.0f}s"
        return text


def started(step: str, total: int | None = None, unit: str = "rows") -> Progress:
    """Progress of a set-based step: logs its start now; call ``finish(rows)`` when it is done."""
    progress = Progress(step, total, unit)
    about = f" ({total} {unit} expected)" if total else ""
    progress.logger.info("%s: started%s", step, about)
    return progress
