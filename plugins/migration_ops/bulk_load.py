"""The bulk path of the load: an entity's first load without ``ON CONFLICT``.

Why: on an empty table ``INSERT … ON CONFLICT`` checks every foreign key with one trigger query
per row and maintains every index row by row (``workflow_tasks``: 39 s of a 47 s first load
against 0.84 s for a raw COPY, ``docs/performance.md``). Here, inside the load's one
transaction, the table is locked and set aside are: its secondary indexes, its primary key and
unique constraints when no foreign key depends on them, and its own foreign keys. The rows are
inserted (and, on a bulk load asked for on a table that holds rows, the changed ones updated)
with plain set-based statements; then each key and index is built in one pass and each foreign
key is added back ``NOT VALID`` and ``VALIDATE``d: one set-based check of every row per key.

A kill anywhere rolls all of it back (PostgreSQL's DDL is transactional): the table, its
indexes and its constraints stay as they were, and the retry starts again from the staged rows.
A key other tables' foreign keys depend on, triggers, row-level security, policies and grants
are not touched. See ``docs/decisions/0013-bulk-load-and-changed-row-validation.md``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops.db import column_parts, connect, qualified, read_sql, scalar
from migration_ops.errors import MigrationError

#: How a run loads: ``auto`` takes the bulk path for a table that is empty when its load starts
#: and the upsert for every later run; ``upsert`` always upserts; ``bulk`` always takes the bulk
#: path (a large reload into a table that holds rows: indexes and keys rebuilt at the end).
LoadPath = Literal["auto", "upsert", "bulk"]
log = logging.getLogger(__name__)
LOAD_PATHS: tuple[LoadPath, ...] = ("auto", "upsert", "bulk")


@dataclass(frozen=True)
class DeferredObject:
    """An index or constraint of the target table set aside while the rows go in."""

    kind: Literal["key", "index", "foreign_key"]
    name: str
    definition: str
    comment: str | None


def takes_bulk_path(conn: psycopg.Connection[Any], entity: EntitySpec, requested: LoadPath) -> bool:
    """Whether this load takes the bulk path; locks the table when it does.

    ``auto`` chooses it only for an empty table this role may alter (the owner's privilege is
    needed to drop and re-create its indexes and keys); the emptiness is checked again under the
    lock, so nothing written in between is missed.

    Raises:
        MigrationError: ``bulk`` was asked for on a table this role does not own.
    """
    if requested == "upsert":
        return False
    target = qualified(entity.target_table)
    owned = scalar(
        conn,
        "select pg_has_role(current_user, relowner, 'usage') from pg_class "
        "where oid = %s::regclass",
        (entity.target_table,),
    )
    if not owned:
        if requested == "bulk":
            raise MigrationError(
                entity.name,
                f"the bulk path needs the owner's privileges on {entity.target_table}",
                rule="load.bulk_owner",
            )
        return False
    empty = "select not exists (select 1 from {})"
    if requested == "auto" and not scalar(conn, sql.SQL(empty).format(target)):
        return False
    conn.execute(sql.SQL("lock table {} in access exclusive mode").format(target))
    return requested == "bulk" or bool(scalar(conn, sql.SQL(empty).format(target)))


@dataclass(frozen=True)
class BulkOutcome:
    """What a bulk load wrote, and where its seconds went.

    ``seconds`` per part, in order: ``insert`` (the rows, with the updates of a requested
    bulk load of a loaded table), ``keys_and_indexes`` (built in one pass each),
    ``foreign_keys`` (added back and validated), ``analyze``. Operators read them in the task
    log; ``make bench`` prints them (docs/performance.md: what bounds a first load).
    """

    inserted: int
    updated: int
    seconds: dict[str, float] = field(default_factory=dict)


def bulk_load(conn: psycopg.Connection[Any], entity: EntitySpec, columns: list[str]) -> BulkOutcome:
    """Load ``staging.<entity>__validated`` by the bulk path.

    The caller holds the transaction and the table lock (:func:`takes_bulk_path`).
    """
    target = qualified(entity.target_table)
    empty = bool(scalar(conn, sql.SQL("select not exists (select 1 from {})").format(target)))
    for setting, value in build_memory().items():  # this transaction only (set local)
        conn.execute("select set_config(%s, %s, true)", (setting, value))
    deferred = deferred_objects(conn, entity)
    for item in reversed(deferred):
        conn.execute(_drop(entity, item))
    clock = _PartClock()
    inserted, updated = _write_rows(conn, entity, columns, update=not empty)
    clock.lap("insert")
    for item in deferred:
        for statement in _recreate(entity, item):
            conn.execute(statement)
        clock.lap("foreign_keys" if item.kind == "foreign_key" else "keys_and_indexes")
    conn.execute(sql.SQL("analyze {}").format(target))  # the verify step's plans need them
    clock.lap("analyze")
    log.info(
        "bulk path of %s: %d rows inserted and %d updated; seconds per part: %s",
        entity.name,
        inserted,
        updated,
        ", ".join(f"{part} {seconds:.2f}" for part, seconds in clock.seconds.items()),
    )
    return BulkOutcome(inserted, updated, clock.seconds)


class _PartClock:
    """Seconds since the last lap, added to the named part."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.seconds[part] = self.seconds.get(part, 0.0) + now - self._last
        self._last = now


#: Memory for the bulk path's sorts and joins, this transaction only: index and key builds
#: sort in ``maintenance_work_mem`` (64 MB by default: a million-row index sorted in
#: several passes on disk) and the foreign keys' ``VALIDATE`` joins in ``work_mem``. What
#: PostgreSQL's "Populating a Database" advises; ``MIGRATION_BULK_MAINTENANCE_WORK_MEM`` and
#: ``MIGRATION_BULK_WORK_MEM`` change them (a small database server may need less).
BUILD_MEMORY = {"maintenance_work_mem": "256MB", "work_mem": "64MB"}


def build_memory() -> dict[str, str]:
    """:data:`BUILD_MEMORY`, each overridden by its ``MIGRATION_BULK_<SETTING>`` variable."""
    return {
        setting: os.environ.get(f"MIGRATION_BULK_{setting.upper()}", default)
        for setting, default in BUILD_MEMORY.items()
    }


def deferred_objects(conn: psycopg.Connection[Any], entity: EntitySpec) -> list[DeferredObject]:
    """The table's indexes and constraints the bulk path sets aside, in re-creation order."""
    rows = conn.execute(
        read_sql("load/bulk_deferred_objects.sql"), {"target": entity.target_table}
    ).fetchall()
    return [
        DeferredObject(kind, name, definition, comment)
        for kind, name, definition, comment, _ in rows
    ]


def _write_rows(
    conn: psycopg.Connection[Any], entity: EntitySpec, columns: list[str], *, update: bool
) -> tuple[int, int]:
    """Insert the new rows; update the changed ones only where the table held rows."""
    parts = {
        "validated": qualified(entity.staging_table("validated")),
        "target": qualified(entity.target_table),
        "conflict_key": sql.Identifier(entity.conflict_key),
        **column_parts(columns, entity.conflict_key, "s"),
        **generated_key_parts(conn, entity, columns),
    }
    inserted = conn.execute(sql.SQL(read_sql("load/bulk_insert.sql")).format(**parts)).rowcount
    if not update:
        return inserted, 0
    updated = conn.execute(sql.SQL(read_sql("load/bulk_update.sql")).format(**parts)).rowcount
    return inserted, updated


def generated_key_parts(
    conn: psycopg.Connection[Any], entity: EntitySpec, columns: list[str]
) -> dict[str, sql.Composable]:
    """``key_columns`` / ``key_values`` of ``bulk_insert.sql`` for the table's generated keys.

    Why: the column default ``migration.new_id()`` draws strong randomness per row (2.4 s of a
    million-row insert on a server without OpenSSL); the bulk insert gives those columns
    ``load/bulk_key_value.sql``: one draw per statement, the rows numbered after it.
    """
    keys = [
        sql.Identifier(name)
        for (name,) in conn.execute(
            read_sql("load/bulk_generated_keys.sql"),
            {"target": entity.target_table, "staged": columns},
        )
    ]
    return {
        "key_columns": sql.SQL("").join(sql.SQL("{}, ").format(key) for key in keys),
        "key_values": sql.SQL("").join(
            sql.SQL("{}, ").format(sql.SQL(read_sql("load/bulk_key_value.sql"))) for _ in keys
        ),
    }


def _index_name(entity: EntitySpec, item: DeferredObject) -> sql.Identifier:
    schema = entity.target_table.split(".")[0]
    return sql.Identifier(schema, item.name.rsplit(".", 1)[-1])


def _drop(entity: EntitySpec, item: DeferredObject) -> sql.Composed:
    if item.kind == "index":
        return sql.SQL("drop index {}").format(_index_name(entity, item))
    return sql.SQL("alter table {} drop constraint {}").format(
        qualified(entity.target_table), sql.Identifier(item.name)
    )


def _recreate(entity: EntitySpec, item: DeferredObject) -> list[sql.Composed | sql.SQL]:
    """Statements that put one object back; the definitions are the server's own text."""
    target = qualified(entity.target_table)
    name = sql.Identifier(item.name)
    if item.kind == "index":
        statements: list[sql.Composed | sql.SQL] = [sql.SQL(item.definition)]  # pg_get_indexdef
        comment_on = sql.SQL("comment on index {} is {}").format(
            _index_name(entity, item), sql.Literal(item.comment)
        )
    else:
        add = sql.SQL("alter table {} add constraint {} ").format(target, name)
        if item.kind == "foreign_key":
            statements = [
                add + sql.SQL(item.definition) + sql.SQL(" not valid"),
                sql.SQL("alter table {} validate constraint {}").format(target, name),
            ]
        else:
            statements = [add + sql.SQL(item.definition)]
        comment_on = sql.SQL("comment on constraint {} on {} is {}").format(
            name, target, sql.Literal(item.comment)
        )
    return statements + ([comment_on] if item.comment is not None else [])


#: How many offending legacy ids a foreign-key report names.
ORPHANS_NAMED = 20


def foreign_key_violation(
    target_dsn: str, entity: EntitySpec, constraint: str | None
) -> MigrationError:
    """The per-row report of a load that broke a foreign key: which key, which legacy ids.

    Called after the failed load rolled back (its staging is still there); the same report for
    the bulk and the upsert path. Ids only, never values.
    """
    found = None
    if constraint is not None:
        with connect(target_dsn, application_name=f"migration:load:{entity.name}") as conn:
            found = conn.execute(
                read_sql("load/foreign_key_columns.sql"),
                {"target": entity.target_table, "constraint": constraint},
            ).fetchone()
            if found is not None:
                orphans = _orphans(conn, entity, *found)
    if found is None:
        return MigrationError(
            entity.name, f"foreign key {constraint} was violated", rule="load.foreign_key"
        )
    columns, schema, table, _ = found
    named = f"the first {ORPHANS_NAMED}" if len(orphans) == ORPHANS_NAMED else "all"
    return MigrationError(
        entity.name,
        f"foreign key {constraint} ({', '.join(columns)} -> {schema}.{table}): {len(orphans)} "
        f"validated rows ({named}) have no referenced row, {entity.conflict_key} {orphans}; "
        "nothing was loaded",
        rule="load.foreign_key",
    )


def _orphans(
    conn: psycopg.Connection[Any],
    entity: EntitySpec,
    columns: list[str],
    schema: str,
    table: str,
    referenced_columns: list[str],
) -> list[int]:
    query = sql.SQL(read_sql("load/foreign_key_orphans.sql")).format(
        validated=qualified(entity.staging_table("validated")),
        key=sql.Identifier(entity.conflict_key),
        columns=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns),
        referenced=sql.Identifier(schema, table),
        referenced_columns=sql.SQL(", ").join(
            sql.SQL("r.{}").format(sql.Identifier(c)) for c in referenced_columns
        ),
    )
    return [row[0] for row in conn.execute(query, {"limit": ORPHANS_NAMED})]
