"""Errors that name the entity, the legacy id (where there is one) and the rule, never a value."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


class MigrationError(Exception):
    """A migration step could not complete; the message is safe to log (no PHI)."""

    def __init__(self, entity: str, message: str, *, rule: str | None = None) -> None:
        self.entity = entity
        self.rule = rule
        prefix = f"[{entity}]" + (f" rule {rule}:" if rule else "")
        super().__init__(f"{prefix} {message}")


class SchemaDriftError(MigrationError):
    """The legacy database no longer has a table or column an entity spec extracts."""


class ValidationFailed(MigrationError):
    """A suite-level expectation failed: the load is blocked."""


class GateClosed(Exception):
    """A phase was asked to run before the phase it depends on has validated."""


@contextmanager
def database_errors_without_values(entity: str, step: str) -> Iterator[None]:
    """Re-raise database errors of a step without the values PostgreSQL puts in them.

    A constraint violation's detail reads "Failing row contains (...)" and a failed cast
    quotes its input: legacy values, possibly PHI, that would land in the task log. Such
    errors become a :class:`MigrationError` naming the entity, the step, the SQLSTATE and the
    table, column and constraint; the original is suppressed (the server log has it).
    Connection-level errors (a killed backend, a restarted server) pass through unchanged:
    they carry no row values and a retry may heal them.
    """
    try:
        yield
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        diag = exc.diag
        where = ", ".join(
            f"{label} {value}"
            for label, value in (
                ("table", diag.table_name),
                ("column", diag.column_name),
                ("constraint", diag.constraint_name),
            )
            if value
        )
        message = f"{step} failed in the database (SQLSTATE {diag.sqlstate}"
        message += f"; {where})" if where else ")"
        raise MigrationError(
            entity, message + "; values withheld", rule=f"database.{diag.sqlstate}"
        ) from None
