"""Expectations over a whole entity, evaluated set-based in SQL when only changed rows go to GX.

A rerun or a sync validates only the transformed rows that would change the target (see
:func:`migration_ops.validate.validate_entity`). Most expectations judge one row at a time
(not null, in a set, a pattern): checking the changed rows is checking everything that will
be written, because every other row is already in the target exactly as transformed and passed
the suite when it loaded. Three kinds judge the rows together and must still see the whole
entity; they are evaluated here in the database, each one scan or one query, where Great
Expectations would fetch and scan everything:

- ``expect_table_columns_to_match_set``: the staged columns (the catalog, no scan);
- ``expect_column_values_to_be_unique``: rows whose value occurs more than once;
- ``unexpected_rows_expectation``: the suite's own query, its ``{batch}`` the transformed table.

An expectation with ``mostly`` judges a share of all rows: it also needs the whole entity and
runs through GX on the transformed table (:func:`needs_whole_entity`).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from migration_ops.db import qualified, read_sql, scalar, table_columns

#: Expectation types evaluated here, over every transformed row of the entity.
SQL_TYPES = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_column_values_to_be_unique",
        "unexpected_rows_expectation",
    }
)

#: Expectation types that judge each row on its own (GX on the changed rows suffices).
ROW_LOCAL_TYPES = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_be_between",
    }
)


def needs_whole_entity(expectation: dict[str, Any]) -> bool:
    """Whether the expectation must see every row of the entity, not only the changed ones.

    Raises:
        ValueError: a type this project has not classified (add it to one of the two sets).
    """
    kind = expectation["type"]
    if kind in SQL_TYPES:
        return True
    if kind not in ROW_LOCAL_TYPES:
        raise ValueError(f"expectation type {kind} is neither row-local nor entity-level")
    return float(expectation["kwargs"].get("mostly", 1.0)) < 1.0


def evaluate(
    conn: psycopg.Connection[Any],
    table: str,
    expectation: dict[str, Any],
    rows: int | None = None,
) -> tuple[bool, dict[str, float]]:
    """Evaluate one :data:`SQL_TYPES` expectation on ``table``; (success, counts) - no values.

    ``table`` is the qualified staging table (``staging.<entity>__transformed``); ``rows``
    its row count when the caller has it (counted here otherwise: a million-row count is
    40 ms, once per table is enough).
    """
    kind, kwargs = expectation["type"], expectation["kwargs"]
    if rows is None:
        rows = int(scalar(conn, sql.SQL("select count(*) from {}").format(qualified(table))))
    if kind == "expect_table_columns_to_match_set":
        return _columns_match(conn, table, kwargs), {"observed_value": float(rows)}
    if kind == "expect_column_values_to_be_unique":
        query = sql.SQL(read_sql("validate/duplicate_rows.sql")).format(
            table=qualified(table), column=sql.Identifier(kwargs["column"])
        )
    elif kind == "unexpected_rows_expectation":
        # The suite's own reviewed query (identifiers and constants), not data; {batch} is
        # GX's name for the table under validation.
        text = kwargs["unexpected_rows_query"].replace("{batch}", _quoted(table))
        query = sql.SQL("select count(*) from ({}) as unexpected").format(sql.SQL(text))
    else:
        raise ValueError(f"{kind} is not evaluated in SQL")
    unexpected = int(scalar(conn, query))
    counts = {
        "element_count": float(rows),
        "unexpected_count": float(unexpected),
        "unexpected_percent": 100.0 * unexpected / rows if rows else 0.0,
    }
    return unexpected == 0, counts


def _quoted(table: str) -> str:
    schema, name = table.split(".")
    return f'"{schema}"."{name}"'


def _columns_match(conn: psycopg.Connection[Any], table: str, kwargs: dict[str, Any]) -> bool:
    staged = set(table_columns(conn, table))
    expected = set(kwargs["column_set"])
    return staged == expected if kwargs.get("exact_match", True) else expected <= staged
