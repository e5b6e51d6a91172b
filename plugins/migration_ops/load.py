"""Load step: one transactional, set-based upsert per entity, keyed by the legacy id.

Everything of one entity's load happens in one transaction: the upsert, the post-load SQL
(e.g. resolving a self-reference) and the ``loaded`` checkpoint. A task killed half-way
leaves nothing behind; its retry starts from the same staged rows and converges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops.db import connect, qualified, read_sql, run_sql_file, scalar
from migration_ops.errors import MigrationError


@dataclass(frozen=True)
class LoadOutcome:
    """Counts of one entity's load."""

    validated_rows: int
    inserted_rows: int
    updated_rows: int

    @property
    def unchanged_rows(self) -> int:
        """Validated rows that were already identical in the target."""
        return self.validated_rows - self.inserted_rows - self.updated_rows


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    schema, name = table.split(".")
    rows = conn.execute(
        """
        select column_name from information_schema.columns
        where table_schema = %s and table_name = %s order by ordinal_position
        """,
        (schema, name),
    ).fetchall()
    return [row[0] for row in rows]


def loadable_columns(conn: psycopg.Connection[Any], entity: EntitySpec) -> list[str]:
    """Staged columns that go to the target: all but ``_``-prefixed helper columns.

    Raises:
        MigrationError: a staged column has no counterpart in the target table.
    """
    staged = [c for c in _columns(conn, entity.staging_table("validated")) if not c.startswith("_")]
    target = set(_columns(conn, entity.target_table))
    missing = [c for c in staged if c not in target]
    if missing:
        raise MigrationError(entity.name, f"target {entity.target_table} has no columns {missing}")
    if entity.conflict_key not in staged:
        raise MigrationError(entity.name, f"staged rows lack the upsert key {entity.conflict_key}")
    return staged


def load_entity(
    target_dsn: str,
    entity: EntitySpec,
    run_settings: dict[str, object],
    *,
    lock_timeout: str = "5min",
) -> LoadOutcome:
    """Upsert ``staging.<entity>__validated`` into the target, then run the post-load SQL.

    The checkpoint row is written in the same transaction, so "loaded" in
    ``migration.checkpoints`` is true exactly when the rows are in the target.
    """
    run_id = str(run_settings["run_id"])
    with connect(target_dsn, application_name=f"migration:load:{entity.name}") as conn:
        conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(lock_timeout)))
        columns = loadable_columns(conn, entity)
        ident = [sql.Identifier(c) for c in columns]
        statement = sql.SQL(read_sql("load/upsert.sql")).format(
            validated=qualified(entity.staging_table("validated")),
            target=qualified(entity.target_table),
            conflict_key=sql.Identifier(entity.conflict_key),
            columns=sql.SQL(", ").join(ident),
            source_columns=sql.SQL(", ").join(sql.SQL("s.{}").format(c) for c in ident),
            target_columns=sql.SQL(", ").join(sql.SQL("t.{}").format(c) for c in ident),
            assignments=sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
                for c in columns
                if c != entity.conflict_key
            ),
        )
        row = conn.execute(statement).fetchone()
        assert row is not None
        inserted, updated = int(row[0]), int(row[1])
        for path in entity.post_load_sql:
            run_sql_file(conn, path, settings=run_settings)
        validated_rows = int(
            scalar(
                conn,
                sql.SQL("select count(*) from {}").format(
                    qualified(entity.staging_table("validated"))
                ),
            )
        )
        present = scalar(
            conn,
            sql.SQL(
                "select count(*) from {validated} as s join {target} as t on t.{key} = s.{key}"
            ).format(
                validated=qualified(entity.staging_table("validated")),
                target=qualified(entity.target_table),
                key=sql.Identifier(entity.conflict_key),
            ),
        )
        if present != validated_rows:
            raise MigrationError(
                entity.name,
                f"after the upsert {present} of {validated_rows} validated rows are in the target",
            )
        outcome = LoadOutcome(validated_rows, inserted, updated)
        merged = merged_rows(conn, entity)
        conn.execute(
            """
            update migration.checkpoints
            set stage = 'loaded', loaded_rows = %s, merged_rows = %s, inserted_rows = %s,
                updated_rows = %s, unchanged_rows = %s, updated_at = now()
            where run_id = %s and entity = %s
            """,
            (
                outcome.validated_rows - merged,
                merged,
                inserted,
                updated,
                outcome.unchanged_rows,
                run_id,
                entity.name,
            ),
        )
    return outcome


def merged_rows(conn: psycopg.Connection[Any], entity: EntitySpec) -> int:
    """Validated rows loaded as linked duplicates: counted as merged, not loaded (0008).

    A linked duplicate keeps its own target row (linked, not destroyed), so ``source =
    loaded + merged + quarantined`` counts each legacy row once: as merged when it points
    at a survivor, else as loaded.
    """
    if entity.dedup is None:
        return 0
    return int(
        scalar(
            conn,
            sql.SQL(
                "select count(*) from {validated} as s join {target} as t on t.{key} = s.{key} "
                "where t.{merged} is not null"
            ).format(
                validated=qualified(entity.staging_table("validated")),
                target=qualified(entity.target_table),
                key=sql.Identifier(entity.conflict_key),
                merged=sql.Identifier(entity.dedup.merged_column),
            ),
        )
    )
