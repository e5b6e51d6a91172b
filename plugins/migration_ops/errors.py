"""Errors that name the entity, the legacy id (where there is one) and the rule, never a value."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import psycopg

P = ParamSpec("P")
R = TypeVar("R")


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


class TransientStepError(Exception):
    """A step failed for a reason a retry may heal (network, timeout, a 5xx); value-free.

    Not a :class:`MigrationError`, so the DAGs' retry policy retries it.
    """


#: Exception classes (by qualified name) of HTTP clients that mean "try again later".
_TRANSIENT_HTTP = ("httpx.TransportError", "requests.exceptions.ConnectionError")
#: Airflow's own control flow (skip a task, fail it without retrying): raised by this project's
#: tasks with messages they wrote themselves, and meaningful to Airflow only as they are.
_AIRFLOW_CONTROL = (
    "airflow.sdk.exceptions.AirflowSkipException",
    "airflow.sdk.exceptions.AirflowFailException",
)


def _kinds(exc: BaseException) -> set[str]:
    """Qualified names of the classes ``exc`` is an instance of."""
    return {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__}


def _where(exc: BaseException) -> str:
    """File, line and function where the error was raised: code locations, never values."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"


def _kind(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def _is_transient(exc: BaseException) -> bool:
    if _kinds(exc) & set(_TRANSIENT_HTTP):
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(status, int) and status >= 500


def database_error(entity: str, step: str, exc: psycopg.Error) -> MigrationError:
    """A psycopg error as a :class:`MigrationError` naming SQLSTATE, table, column, constraint."""
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
    return MigrationError(entity, message + "; values withheld", rule=f"database.{diag.sqlstate}")


def without_values(entity: str, step: str, exc: Exception) -> Exception:
    """The value-free error that stands for ``exc`` in logs, XCom and the task's failure.

    Errors of this project (:class:`MigrationError`, :class:`GateClosed`) are value-free by
    construction and pass unchanged, as do connection-level database errors (a killed backend,
    a restarted server: no row values, and a retry may heal them) and Airflow's skip and fail
    signals (raised by the tasks with their own value-free words). Anything else (a database
    error quoting a failing row, a Great Expectations or SQLAlchemy error quoting a query or a
    sample, an HTTP error quoting an object key made of a legacy file name) is replaced by its
    kind, where it was raised and, for HTTP, the status code.
    """
    if isinstance(exc, MigrationError | GateClosed | TransientStepError | psycopg.OperationalError):
        return exc
    if _kinds(exc) & set(_AIRFLOW_CONTROL):
        return exc
    original = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    if isinstance(original, psycopg.OperationalError):
        return TransientStepError(
            f"[{entity}] {step}: database connection lost ({_kind(original)})"
        )
    if isinstance(original, psycopg.Error):
        return database_error(entity, step, original)
    if isinstance(exc, psycopg.Error):
        return database_error(entity, step, exc)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    detail = f"{step} failed: {_kind(exc)}{_where(exc)}"
    if isinstance(status, int):
        detail += f" (HTTP {status})"
    detail += "; values withheld"
    if _is_transient(exc):
        return TransientStepError(f"[{entity}] {detail}")
    return MigrationError(entity, detail, rule=f"{step}.error")


@contextmanager
def errors_without_values(entity: str, step: str) -> Iterator[None]:
    """Re-raise whatever a step raises as its value-free form (see :func:`without_values`).

    The original is suppressed (``from None``): its message may quote legacy values, possibly
    PHI, which must not reach the task log. The database server's own log keeps the detail of
    database errors; the kind and code location are in the message for the rest.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - every kind must leave without values
        replacement = without_values(entity, step, exc)
        if replacement is exc:
            raise
        raise replacement from None


def value_free_task(entity: str, step: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a task callable so whatever it raises leaves as :func:`without_values` says.

    Put it under ``@task``: Airflow writes a failed task's exception, with its chain, to the
    task log, so every task (not only the entity steps, which wrap themselves) must fail
    without the values an error may quote. The wrapper keeps the callable's name, docstring
    and signature (``functools.wraps``), which is what ``@task`` reads; ``value_free`` marks
    it, so a test can hold every task of every DAG to it.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with errors_without_values(entity, step):
                return function(*args, **kwargs)

        wrapper.value_free = (entity, step)  # type: ignore[attr-defined]
        return wrapper

    return decorate
