"""When each pipeline step started and ended: the report's "time per step" chart.

Checkpoints keep one ``updated_at`` per entity, so time derived from the gaps between them
is wrong as soon as entities run in parallel (a gap then spans another entity's work). Each
step therefore records its own wall-clock span in ``migration.step_timings`` (run, entity,
step, start, end, whether it succeeded), one upsert when it ends, failed or not.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from include.entities.spec import EntitySpec
from migration_ops.db import connect, read_sql
from migration_ops.runs import RunContext

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def _subject(args: tuple[Any, ...]) -> tuple[str, RunContext, str]:
    """(target DSN, run, entity name) of a step's positional arguments.

    Every step takes ``..., target_dsn, run, entity-or-entities, ...``: the DSN just before
    the :class:`RunContext`; a list of entities (the phase's extract) is recorded as ``''``.
    """
    at = next(i for i, value in enumerate(args) if isinstance(value, RunContext))
    entity = args[at + 1] if len(args) > at + 1 else None
    return str(args[at - 1]), args[at], entity.name if isinstance(entity, EntitySpec) else ""


def record(
    target_dsn: str, run_id: str, entity: str, step: str, started: datetime, succeeded: bool
) -> None:
    """Upsert one step's span (``audit/record_step_timing.sql``)."""
    with connect(target_dsn, application_name=f"migration:timing:{entity or 'phase'}") as conn:
        conn.execute(
            read_sql("audit/record_step_timing.sql"),
            {
                "run_id": run_id,
                "entity": entity,
                "step": step,
                "started_at": started,
                "finished_at": datetime.now(UTC),
                "succeeded": succeeded,
            },
        )


def timed(step: str) -> Callable[[F], F]:
    """Decorate a pipeline step so that it records its start and end, failed or not.

    A failure to record the span of a step that itself failed is logged (names only) and
    does not replace the step's own error; after a successful step it propagates.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            target_dsn, run, entity = _subject(args)
            started = datetime.now(UTC)
            try:
                result = func(*args, **kwargs)
            except BaseException:
                try:
                    record(target_dsn, run.run_id, entity, step, started, succeeded=False)
                except psycopg.Error as exc:
                    log.warning("step %s of %s: span not recorded (%s)", step, entity, exc.sqlstate)
                raise
            record(target_dsn, run.run_id, entity, step, started, succeeded=True)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate
