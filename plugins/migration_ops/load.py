"""Load step: one transactional, set-based write per entity, keyed by the legacy id.

The first load of an entity (an empty target table) takes the bulk path
(:mod:`migration_ops.bulk_load`: plain insert, indexes and foreign keys rebuilt after it);
every later run upserts only the rows that differ (``include/sql/load/upsert.sql``).

Everything of one entity's load happens in one transaction: the upsert, the direct columns,
the post-load SQL (e.g. resolving a self-reference), the run's quarantine decisions and the
``loaded`` checkpoint. A task killed half-way
leaves nothing behind; its retry starts from the same staged rows and converges.

The write is set-based: its start, then the rows and rows/s once it committed, are logged
(:mod:`migration_ops.progress`); the COPY of direct columns logs rows per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops import bulk_load, quarantine, runs, staging
from migration_ops.bulk_load import LoadPath
from migration_ops.db import (
    column_parts,
    connect,
    connect_legacy,
    qualified,
    read_sql,
    run_sql_file,
    scalar,
    table_columns,
)
from migration_ops.errors import MigrationError
from migration_ops.extract import estimated_rows, pass_through
from migration_ops.progress import Progress, started
from migration_ops.runs import RunContext
from migration_ops.settings import LEGACY_SCHEMA
from migration_ops.sync import apply as sync_apply


@dataclass(frozen=True)
class LoadOutcome:
    """Counts of one entity's load."""

    validated_rows: int
    inserted_rows: int
    updated_rows: int
    bulk_path: bool = False
    #: The bulk path's seconds per part (:class:`~migration_ops.bulk_load.BulkOutcome`).
    bulk_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def unchanged_rows(self) -> int:
        """Validated rows that were already identical in the target."""
        return self.validated_rows - self.inserted_rows - self.updated_rows


def loadable_columns(
    conn: psycopg.Connection[Any], entity: EntitySpec, suffix: str = "validated"
) -> list[str]:
    """Staged columns that go to the target: all but ``_``-prefixed helper columns.

    Raises:
        MigrationError: a staged column has no counterpart in the target table.
    """
    staged = [c for c in table_columns(conn, entity.staging_table(suffix)) if not c.startswith("_")]
    target = set(table_columns(conn, entity.target_table))
    missing = [c for c in staged if c not in target]
    if missing:
        raise MigrationError(entity.name, f"target {entity.target_table} has no columns {missing}")
    if entity.conflict_key not in staged:
        raise MigrationError(entity.name, f"staged rows lack the upsert key {entity.conflict_key}")
    return staged


def load_entity(
    target_dsn: str,
    entity: EntitySpec,
    run: RunContext,
    *,
    legacy_dsn: str | None = None,
    lock_timeout: str = "5min",
    path: LoadPath = "auto",
) -> LoadOutcome:
    """Write ``staging.<entity>__validated`` into the target, then run the post-load SQL.

    In the same transaction: the run and staging-owner checks (the owner row stays locked, so
    no extract of another run can replace the staging under the load), the direct columns, the
    run's quarantine decisions and the ``loaded`` checkpoint. So "loaded" in
    ``migration.checkpoints`` and the quarantine history are true exactly when the rows are in
    the target.

    Raises:
        MigrationError: a row breaks a foreign key (rule ``load.foreign_key``, naming the key
            and the legacy ids; nothing was loaded), or the staging is not this run's.
    """
    try:
        return _load_in_one_transaction(target_dsn, entity, run, legacy_dsn, lock_timeout, path)
    except psycopg.errors.ForeignKeyViolation as exc:
        raise bulk_load.foreign_key_violation(
            target_dsn, entity, exc.diag.constraint_name
        ) from None


def _load_in_one_transaction(
    target_dsn: str,
    entity: EntitySpec,
    run: RunContext,
    legacy_dsn: str | None,
    lock_timeout: str,
    path: LoadPath,
) -> LoadOutcome:
    progress = started(f"load {entity.name}")
    with connect(target_dsn, application_name=f"migration:load:{entity.name}") as conn:
        conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(lock_timeout)))
        runs.require_running(conn, run, entity=entity.name)
        staging.require_owner(conn, run.run_id, entity, lock=True)
        bulk = bulk_load.takes_bulk_path(conn, entity, path)
        changed = not bulk and changed_only(conn, entity)
        bulk_seconds: dict[str, float] = {}
        if bulk:
            written = bulk_load.bulk_load(conn, entity, loadable_columns(conn, entity))
            inserted, updated, bulk_seconds = written.inserted, written.updated, written.seconds
        else:
            inserted, updated = upsert_validated(conn, entity, changed=changed)
        if entity.direct_columns:
            _copy_direct_columns(conn, entity, legacy_dsn)
        for sql_file in entity.post_load_sql:
            run_sql_file(conn, sql_file, settings=run.settings())
        present = _validated_rows_present(conn, entity, changed=changed)
        outcome = LoadOutcome(present, inserted, updated, bulk, bulk_seconds)
        merged = merged_rows(conn, entity)
        removed = 0
        if run.incremental:
            quarantine.record(conn, entity, run.run_id, evaluated=sync_apply.touched(entity))
            removed = sync_apply.record(conn, entity, run.run_id, _snapshot_at(conn, run))
        else:
            quarantine.record(conn, entity, run.run_id)
        conn.execute(
            """
            update migration.checkpoints
            set stage = 'loaded', loaded_rows = %s, merged_rows = %s, inserted_rows = %s,
                updated_rows = %s, unchanged_rows = %s, removed_rows = %s, updated_at = now()
            where run_id = %s and entity = %s
            """,
            (
                outcome.validated_rows - merged,
                merged,
                inserted,
                updated,
                outcome.unchanged_rows,
                removed,
                run.run_id,
                entity.name,
            ),
        )
    progress.finish(outcome.validated_rows)
    return outcome


def merged_rows(conn: psycopg.Connection[Any], entity: EntitySpec) -> int:
    """Validated rows loaded as linked duplicates: counted as merged, not loaded (0012).

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


def _snapshot_at(conn: psycopg.Connection[Any], run: RunContext) -> Any:
    return scalar(conn, "select snapshot_at from migration.runs where run_id = %s", (run.run_id,))


def changed_only(conn: psycopg.Connection[Any], entity: EntitySpec) -> bool:
    """Whether the upsert reads only the validated rows that validate found would change.

    Validate already compared every transformed row with the target (``__changed``, the
    same comparison as the upsert's anti-join), so a rerun does not compare a million
    identical rows twice. All validated rows when validate compared none (a first load, a
    changed suite) or when a step between validate and load rewrites them (object copy).
    A target row edited between validate and load is then not repaired by this load: the
    row proof right after it finds it and fails the entity, and the next run loads it.
    """
    return entity.object_copy is None and bool(
        scalar(conn, "select to_regclass(%s) is not null", (entity.staging_table("changed"),))
    )


def load_candidates(entity: EntitySpec, *, changed: bool) -> sql.Composable:
    """The validated rows the load writes: all of them, or those in ``__changed``."""
    validated = qualified(entity.staging_table("validated"))
    if not changed:
        return validated
    return sql.SQL(
        "(select v.* from {validated} as v "
        "where exists (select 1 from {changed} as c where c.{key} = v.{key}))"
    ).format(
        validated=validated,
        changed=qualified(entity.staging_table("changed")),
        key=sql.Identifier(entity.conflict_key),
    )


def upsert_validated(
    conn: psycopg.Connection[Any], entity: EntitySpec, *, changed: bool = False
) -> tuple[int, int]:
    """``load/upsert.sql`` for the entity's staged columns; returns (inserted, updated)."""
    statement = sql.SQL(read_sql("load/upsert.sql")).format(
        validated=load_candidates(entity, changed=changed),
        target=qualified(entity.target_table),
        conflict_key=sql.Identifier(entity.conflict_key),
        **column_parts(loadable_columns(conn, entity), entity.conflict_key, "excluded"),
    )
    row = conn.execute(statement).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _validated_rows_present(
    conn: psycopg.Connection[Any], entity: EntitySpec, *, changed: bool
) -> int:
    """Count the validated rows and prove every row the load wrote is in the target.

    The rows it did not write were identical in the target when validate compared them; the
    row proof after the load covers every row.

    Raises:
        MigrationError: some loaded rows are not in the target after the upsert.
    """
    validated = qualified(entity.staging_table("validated"))
    candidates = load_candidates(entity, changed=changed)
    validated_rows, expected, present = conn.execute(
        sql.SQL(
            "select (select count(*) from {validated}), (select count(*) from {candidates} as s), "
            "(select count(*) from {candidates} as s join {target} as t on t.{key} = s.{key})"
        ).format(
            validated=validated,
            candidates=candidates,
            target=qualified(entity.target_table),
            key=sql.Identifier(entity.conflict_key),
        )
    ).fetchone() or (0, 0, 0)
    if present != expected:
        raise MigrationError(
            entity.name,
            f"after the upsert {present} of {expected} loaded rows are in the target",
        )
    return int(validated_rows)


def _copy_direct_columns(
    conn: psycopg.Connection[Any], entity: EntitySpec, legacy_dsn: str | None
) -> None:
    """Fill the entity's direct columns straight from legacy, through a temporary table.

    The values (credentials) never rest in staging: they stream from a read-only legacy session
    into a temporary table dropped at commit, and one UPDATE writes the changed ones. They are
    read at load time, not from the phase's snapshot: a password changed since is simply newer.

    Raises:
        MigrationError: no legacy DSN was given for an entity that needs one.
    """
    if legacy_dsn is None:
        raise MigrationError(entity.name, "direct columns need the legacy connection")
    with connect_legacy(legacy_dsn, application_name=f"migration:load:{entity.name}") as source:
        for direct in entity.direct_columns:
            conn.execute(
                "create temporary table direct_values (legacy_id bigint, value text) on commit drop"
            )
            copy_out = sql.SQL(
                "copy (select {key}::bigint, {column}::text from {table}) to stdout (format binary)"
            ).format(
                key=sql.Identifier(direct.legacy_key),
                column=sql.Identifier(direct.legacy_column),
                table=sql.Identifier(LEGACY_SCHEMA, direct.legacy_table),
            )
            progress = Progress(
                f"load {entity.name}.{direct.target_column}",
                estimated_rows(source, LEGACY_SCHEMA, direct.legacy_table),
            )
            with (
                source.cursor().copy(copy_out) as outgoing,
                conn.cursor().copy("copy direct_values from stdin (format binary)") as incoming,
            ):
                pass_through(outgoing, incoming, progress)
            progress.finish(int(scalar(conn, "select count(*) from direct_values")))
            conn.execute(
                sql.SQL(
                    "update {target} as t set {column} = d.value from direct_values as d "
                    "where t.{key} = d.legacy_id and t.{column} is distinct from d.value"
                ).format(
                    target=qualified(entity.target_table),
                    column=sql.Identifier(direct.target_column),
                    key=sql.Identifier(entity.key),
                )
            )
            conn.execute("drop table direct_values")
