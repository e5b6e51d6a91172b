"""Every kind of error a step can raise leaves it without the legacy value it quoted.

Each case feeds a real error source (PostgreSQL through psycopg and SQLAlchemy, Great
Expectations' own validation, an HTTP client talking to a real local server) a value that
stands for PHI, runs it inside :func:`errors_without_values`, and asserts the value appears
nowhere in what a task log would show: the message and the whole formatted traceback.
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy

from migration_ops.db import connect
from migration_ops.errors import (
    GateClosed,
    MigrationError,
    TransientStepError,
    errors_without_values,
)
from migration_ops.local_storage import LocalStorageServer
from migration_ops.validate import sqlalchemy_url

PHI = "Jane Sample-Patient"


def _logged(error: BaseException) -> str:
    """What Airflow writes to the task log for a failed task: the formatted exception."""
    return "".join(traceback.format_exception(error))


def _raised(step: Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the kind is what is checked below
        with errors_without_values("profiles", "load"):
            step()
    return caught.value


@pytest.fixture
def table_db(make_db) -> str:
    dsn = make_db("phi_errors")
    with connect(dsn) as conn:
        conn.execute(
            "create table t (name text, age integer constraint age_positive check (age > 0))"
        )
    return dsn


def _psycopg(dsn: str, statement: str) -> Callable[[], object]:
    def run() -> None:
        with connect(dsn) as conn:
            conn.execute(statement)

    return run


@pytest.mark.e2e
def test_a_constraint_violation_names_table_and_constraint_never_the_row(table_db) -> None:
    error = _raised(_psycopg(table_db, f"insert into t values ('{PHI}', -1)"))
    assert str(error) == (
        "[profiles] rule database.23514: load failed in the database (SQLSTATE 23514; "
        "table t, constraint age_positive); values withheld"
    )
    assert isinstance(error, MigrationError) and error.rule == "database.23514"
    assert error.__cause__ is None and error.__suppress_context__
    assert PHI not in _logged(error)


@pytest.mark.e2e
def test_a_failed_cast_does_not_quote_its_input(table_db) -> None:
    error = _raised(_psycopg(table_db, f"select '{PHI}'::integer"))
    assert str(error) == (
        "[profiles] rule database.22P02: load failed in the database (SQLSTATE 22P02); "
        "values withheld"
    )
    assert PHI not in _logged(error)


@pytest.mark.e2e
def test_sqlalchemy_errors_are_stripped_like_psycopg_ones(table_db) -> None:
    engine = sqlalchemy.create_engine(sqlalchemy_url(table_db))

    def run() -> None:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f"insert into t values ('{PHI}', -1)"))

    error = _raised(run)
    engine.dispose()
    assert isinstance(error, MigrationError) and "rule database.23514" in str(error)
    assert PHI not in _logged(error)


def test_great_expectations_errors_are_stripped() -> None:
    import great_expectations as gx

    def run() -> None:  # GX (pydantic) quotes the offending input in its message
        gx.expectations.ExpectColumnValuesToBeInSet(column="name", value_set=PHI, mostly=PHI)

    error = _raised(run)
    assert isinstance(error, MigrationError)
    assert str(error).startswith("[profiles] rule load.error: load failed: pydantic")
    assert PHI not in _logged(error)


def test_http_errors_keep_the_status_not_the_object_key(tmp_path: Path) -> None:
    with LocalStorageServer(tmp_path) as server:

        def run() -> None:
            response = httpx.get(
                f"{server.url}/storage/v1/object/legacy-files/{PHI}.stl",
                headers={"Authorization": f"Bearer {server.key}"},
            )
            response.raise_for_status()

        error = _raised(run)
    assert isinstance(error, MigrationError), "a 4xx will not heal by retrying"
    assert "httpx.HTTPStatusError" in str(error) and "(HTTP 4" in str(error)
    assert PHI not in _logged(error) and "Sample-Patient" not in _logged(error)


def test_a_dropped_http_connection_is_retryable_and_value_free() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def run() -> None:
        httpx.get(f"http://127.0.0.1:{port}/storage/v1/object/legacy-files/{PHI}.stl")

    error = _raised(run)
    assert isinstance(error, TransientStepError), "the retry policy retries it"
    assert PHI not in _logged(error)


def test_the_projects_own_errors_pass_unchanged() -> None:
    own = MigrationError("profiles", "3 of 9 rows quarantined", rule="limit")
    assert _raised(lambda: (_ for _ in ()).throw(own)) is own
    gate = GateClosed("phase 2 cannot start")
    assert _raised(lambda: (_ for _ in ()).throw(gate)) is gate


def test_connection_errors_pass_unchanged_for_the_retry() -> None:
    lost = psycopg.OperationalError("terminating connection due to administrator command")
    assert _raised(lambda: (_ for _ in ()).throw(lost)) is lost


def test_airflow_skip_and_fail_signals_pass_unchanged() -> None:
    """``record_failure`` skips itself after a published run and fails with its own words:
    the task wrapper must hand both to Airflow as they are."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    skip = AirflowSkipException("the run validated and published its Asset")
    assert _raised(lambda: (_ for _ in ()).throw(skip)) is skip
    fail = AirflowFailException("run phase-1 failed")
    assert _raised(lambda: (_ for _ in ()).throw(fail)) is fail


@pytest.mark.e2e
def test_a_task_callable_keeps_its_name_and_signature_and_fails_value_free(table_db) -> None:
    import inspect

    from migration_ops.errors import value_free_task

    @value_free_task("backup", "dump")
    def backup_dump(reason: str, phase_number: int | None = None) -> int:
        """Dump."""
        with connect(table_db) as conn:
            conn.execute("select %s::integer", (PHI,))
        return 0

    assert (backup_dump.__name__, backup_dump.__doc__) == ("backup_dump", "Dump.")
    assert list(inspect.signature(backup_dump).parameters) == ["reason", "phase_number"]
    assert backup_dump.value_free == ("backup", "dump")  # type: ignore[attr-defined]
    with pytest.raises(MigrationError) as caught:
        backup_dump("nightly")
    assert str(caught.value) == (
        "[backup] rule database.22P02: dump failed in the database (SQLSTATE 22P02); "
        "values withheld"
    )
    assert PHI not in _logged(caught.value)
