"""Ownership and lifetime of the staging tables: each entity's staging belongs to one run.

Staging holds copies of legacy rows between tasks, so two rules keep it honest:

* **Keyed by run.** ``migration.staged_entities`` names the run whose extract filled an
  entity's staging tables. Every later step of that entity checks it first (the load under a
  row lock, in its own transaction), so clearing an old run's task can never load what a newer
  run staged and record it as the old run.
* **Nothing at rest.** Once an entity is reconciled its staging tables are dropped with the
  registry row, in the same transaction; a failed or abandoned run's staging is dropped by
  the next ``begin`` of its phase (``runs.begin_run``), or ``make clean`` on the embedded
  default. A retry after that re-extracts.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops.errors import MigrationError
from migration_ops.settings import STAGING_SCHEMA

#: Rule named by the error a step raises when staging belongs to another run (or none).
OWNER_RULE = "staging.owned_by_run"


def entity_tables(conn: psycopg.Connection[Any], entity_name: str) -> list[str]:
    """Names (without schema) of every staging table of the entity, whatever run made them."""
    prefix = f"{entity_name}__"
    rows = conn.execute(
        "select tablename from pg_catalog.pg_tables "
        "where schemaname = %s and left(tablename, %s) = %s order by tablename",
        (STAGING_SCHEMA, len(prefix), prefix),
    ).fetchall()
    return [str(row[0]) for row in rows]


def drop_entity_tables(conn: psycopg.Connection[Any], entity_name: str) -> int:
    """Drop every staging table of the entity; return how many there were."""
    tables = entity_tables(conn, entity_name)
    for table in tables:
        conn.execute(
            sql.SQL("drop table if exists {}").format(sql.Identifier(STAGING_SCHEMA, table))
        )
    return len(tables)


def claim(
    conn: psycopg.Connection[Any],
    run_id: str,
    entity: EntitySpec,
    snapshot_at: Any = None,
    *,
    empty: bool = True,
) -> None:
    """Make ``run_id`` the owner of the entity's staging, in the caller's transaction.

    The registry row is written first: its row lock waits for a load of another run that holds
    it, so a load never sees its staging replaced half-way. ``empty`` drops whatever is staged
    (the extract refills it); without it, rows staged by other means (hand-made test cases)
    are adopted as they are.
    """
    conn.execute(f"create schema if not exists {STAGING_SCHEMA}")
    conn.execute(
        """
        insert into migration.staged_entities (entity, run_id, snapshot_at)
        values (%s, %s, %s)
        on conflict (entity) do update set
            run_id = excluded.run_id, snapshot_at = excluded.snapshot_at, staged_at = now()
        """,
        (entity.name, run_id, snapshot_at),
    )
    if empty:
        drop_entity_tables(conn, entity.name)


def require_owner(
    conn: psycopg.Connection[Any], run_id: str, entity: EntitySpec, *, lock: bool = False
) -> None:
    """Refuse to go on unless ``run_id`` staged the entity's rows.

    Args:
        conn: a target connection; with ``lock`` the check holds a share lock on the registry
            row until the caller's transaction ends (a concurrent extract waits for it).
        run_id: the run the calling task belongs to.
        entity: the entity.
        lock: hold the registry row for the rest of the transaction.

    Raises:
        MigrationError: the staging belongs to another run, or there is none (it was dropped
            after the entity was reconciled, or never extracted), naming both runs.
    """
    query = "select run_id from migration.staged_entities where entity = %s"
    row = conn.execute(query + (" for share" if lock else ""), (entity.name,)).fetchone()
    owner = None if row is None else str(row[0])
    if owner == run_id:
        return
    held = f"staging holds run {owner}" if owner else "nothing is staged"
    raise MigrationError(
        entity.name,
        f"{held}, not run {run_id}: re-run this run's extract task (clear it with its "
        "downstream tasks) or start a new run",
        rule=OWNER_RULE,
    )


def release(conn: psycopg.Connection[Any], run_id: str, entity: EntitySpec) -> None:
    """Drop the entity's staging tables once its run reconciled it (no legacy rows at rest).

    Only the owner releases: a newer run's staging is left alone.
    """
    deleted = conn.execute(
        "delete from migration.staged_entities where entity = %s and run_id = %s",
        (entity.name, run_id),
    )
    if deleted.rowcount:
        drop_entity_tables(conn, entity.name)
