"""Database errors reach logs without the row values PostgreSQL quotes in them (no PHI).

Fast on purpose (one small database): the mutation check runs it.
"""

from __future__ import annotations

import traceback

import pytest

from migration_ops import errors
from migration_ops.db import connect
from migration_ops.errors import MigrationError

pytestmark = pytest.mark.e2e

#: The step wrapper; a concurrent branch renames it ``errors_without_values`` (same contract
#: for database errors). Drop the fallback once both are merged.
without_values = (
    getattr(errors, "errors_without_values", None) or errors.database_errors_without_values
)

#: Looks like PHI: a patient's name and birth date.
SECRET = "Jane Q. Patient 1961-04-02"


def _raised(dsn: str, statement: str) -> MigrationError:
    with pytest.raises(MigrationError) as caught:
        with without_values("profiles", "load"), connect(dsn) as conn:
            conn.execute(statement, (SECRET,))
    return caught.value


def _everything_printed(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def test_a_constraint_violation_names_table_and_constraint_never_the_row(make_db) -> None:
    dsn = make_db("errors")
    with connect(dsn) as conn:
        conn.execute("create table person (id integer, name text check (length(name) < 5))")
    error = _raised(dsn, "insert into person values (1, %s)")
    assert str(error) == (
        "[profiles] rule database.23514: load failed in the database (SQLSTATE 23514; "
        "table person, constraint person_name_check); values withheld"
    )
    assert error.rule == "database.23514"
    assert error.__cause__ is None and error.__suppress_context__
    assert SECRET not in _everything_printed(error)


def test_a_failed_cast_does_not_quote_its_input(make_db) -> None:
    dsn = make_db("errors")
    error = _raised(dsn, "select %s::date")
    assert str(error) == (
        "[profiles] rule database.22007: load failed in the database (SQLSTATE 22007); "
        "values withheld"
    )
    assert SECRET not in _everything_printed(error)
