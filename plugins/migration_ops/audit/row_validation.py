"""Row-level comparison legacy ↔ target: the AWS DMS validation, set-based and value-free.

For every migrated row, a 64-bit hash of the mapped columns (``hash_record_extended``) is
computed on the legacy side (the rows through the entity's transform, from the phase's one
snapshot, cast to the target's column types) and on the target side, and the two are joined
by legacy id inside the target database: no row ever travels to Python. Rows whose hashes
differ are compared column by column to name the columns. Results go to
``migration.row_validation`` (counts and the method) and ``migration.row_findings`` (legacy
id, kind, column name): never a value.

Checksum first, drill down only on a difference (pt-table-checksum): one aggregate per side,
``count(*)`` and the ``bit_xor`` of the same row hashes, settles an unchanged target without
temporary tables or a join (``audit/row_checksums.sql``, method ``checksum``); any difference
runs the full comparison (method ``row_by_row``), so findings stay exact by id and column.

Foreign keys the load resolves after its upsert (``load/*link*.sql``: a profile's doctor, office
and survivor, a category's parent) are not staged: they are compared as the legacy id of the
row they point at (target side) against the legacy id the legacy side expects (the staged raw
id, or the de-duplication's survivor), both resolved through the target's unique legacy-id
index (``audit/resolved_key.sql``). A wrong link is a mismatch named by the key's column.

Two callers: the phase pipeline right after each entity's load, while its staging still
exists (``mode='after_load'``, legacy side ``__validated``), and ``verify_target``, which
re-stages a fresh snapshot under a verification run (``mode='verify_target'``, legacy side
``__transformed`` minus the rows held in quarantine). See decision 0010.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from migration_ops import schema
from migration_ops.db import connect, qualified, read_sql, scalar
from migration_ops.errors import MigrationError

#: Rule named by the error of an entity whose target differs from legacy.
RULE = "row_validation.target_matches_legacy"
#: Findings kept per (run, entity, kind); the counts are always complete.
MAX_FINDINGS = 1000

#: ``migration.row_validation.method``: equal fingerprints settled it, or every row was joined.
CHECKSUM = "checksum"
ROW_BY_ROW = "row_by_row"

#: Columns that a later step legitimately rewrites after the entity's own load, so the
#: target holds a value the entity's transform never produced. Excluded from the comparison
#: in ``verify_target`` only (right after the load nothing has rewritten them yet).
REWRITTEN_LATER: dict[str, tuple[str, ...]] = {}


@dataclass(frozen=True)
class ResolvedKey:
    """A foreign key filled by the entity's post-load SQL, compared by the legacy id it names.

    Attributes:
        column: the target's foreign-key column (a uuid of ``parent``'s ``id``).
        parent: the parent's target table.
        parent_key: the parent's legacy-id column (unique).
        raw: the staged column holding the parent's legacy id; empty when the expectation is
            the de-duplication's survivor (``audit/expected_survivor.sql``).
    """

    column: str
    parent: str
    parent_key: str
    raw: str = ""


#: Per entity, the keys its ``post_load_sql`` resolves (``include/sql/load/*link*.sql``).
RESOLVED_KEYS: dict[str, tuple[ResolvedKey, ...]] = {
    "profiles": (
        ResolvedKey(
            "patient_doctor_id", "public.profiles", "legacy_user_id", "legacy_doctor_user_id"
        ),
        ResolvedKey("patient_office_id", "public.offices", "legacy_office_id", "legacy_office_id"),
        ResolvedKey("merged_into", "public.profiles", "legacy_user_id"),
    ),
    "workflow_categories": (
        ResolvedKey(
            "parent_id", "public.workflow_categories", "legacy_category_id", "legacy_parent_id"
        ),
    ),
}


@dataclass(frozen=True)
class RowValidation:
    """Counts of one entity's row-level comparison, and which method produced them."""

    compared_rows: int
    matched_rows: int
    mismatched_rows: int
    missing_rows: int
    unexpected_rows: int
    method: str

    @property
    def ok(self) -> bool:
        """Every legacy row is in the target, equal, and the target has no stray row."""
        return not (self.mismatched_rows or self.missing_rows or self.unexpected_rows)

    def as_dict(self) -> dict[str, int | str]:
        """Plain dict (XCom, reports)."""
        return asdict(self)


def _split(text: str) -> list[str]:
    """Statements of an SQL file (one per ``;`` at a line end), for parameterised execution."""

    def has_code(part: str) -> bool:
        return any(line.strip() and not line.strip().startswith("--") for line in part.splitlines())

    return [part.strip() for part in text.split(";\n") if has_code(part)]


def mapped_columns(
    conn: psycopg.Connection[Any], entity: EntitySpec, legacy_table: str
) -> list[tuple[str, str]]:
    """(column, target type) of every staged column that the load writes to the target.

    The same rule as the load (``_``-prefixed helper columns never load), so what is compared
    is exactly what the upsert writes.
    """
    rows = conn.execute(
        """
        select s.attname, format_type(t.atttypid, t.atttypmod)
        from pg_attribute as s
        join pg_attribute as t
            on t.attrelid = %s::regclass and t.attname = s.attname
            and t.attnum > 0 and not t.attisdropped
        where s.attrelid = %s::regclass and s.attnum > 0 and not s.attisdropped
            and left(s.attname, 1) <> '_'
        order by s.attnum
        """,
        (entity.target_table, legacy_table),
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def _sql_parts(name: str) -> list[str]:
    """The expressions of an SQL file, each on one line without the file's comments.

    One line, because the callers' files name ``{legacy_columns}`` in their own header
    comments too: a line break there would end the comment in the middle of the expression.
    """
    return [
        " ".join(line.strip() for line in part.splitlines() if not line.strip().startswith("--"))
        for part in _split(read_sql(name))
    ]


def _resolved(entity: EntitySpec, key: ResolvedKey) -> tuple[sql.Composable, sql.Composable]:
    """(legacy side, target side) expressions of one resolved key (``audit/resolved_key.sql``)."""
    expected: sql.Composable = sql.SQL("s.{}").format(sql.Identifier(key.raw))
    if not key.raw:
        (survivor,) = _sql_parts("audit/expected_survivor.sql")
        expected = sql.SQL(survivor).format(key=sql.Identifier(entity.key))
    target, legacy = (
        sql.SQL(part).format(
            parent=qualified(key.parent),
            parent_key=sql.Identifier(key.parent_key),
            column=sql.Identifier(key.column),
            expected=expected,
        )
        for part in _sql_parts("audit/resolved_key.sql")
    )
    return legacy, target


def _parts(
    columns: list[tuple[str, str]], resolved: list[tuple[str, sql.Composable, sql.Composable]]
) -> dict[str, sql.Composable]:
    legacy: list[sql.Composable] = [
        sql.SQL("s.{}::{}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns
    ]
    target: list[sql.Composable] = [sql.SQL("t.{}").format(sql.Identifier(c)) for c, _ in columns]
    names = [c for c, _ in columns] + [c for c, _, _ in resolved]
    legacy += [expression for _, expression, _ in resolved]
    target += [expression for _, _, expression in resolved]
    checks = [
        sql.SQL("({}, {} is distinct from {})").format(sql.Literal(c), s, t)
        for c, s, t in zip(names, legacy, target, strict=True)
    ]
    return {
        "legacy_columns": sql.SQL(", ").join(legacy),
        "target_columns": sql.SQL(", ").join(target),
        "column_checks": sql.SQL(", ").join(checks),
    }


def _target_shape(conn: psycopg.Connection[Any], entity: EntitySpec) -> tuple[bool, bool]:
    """Whether the target table has ``legacy_removed_at``, and a unique index on the key alone.

    From ``pg_catalog`` in one statement (``information_schema.columns`` is a view that plans
    a dozen joins and privilege checks per call). The unique key is what makes equal
    fingerprints a proof (``audit/row_checksums.sql``); without one, the comparison goes row
    by row.
    """
    row = conn.execute(
        """
        select
            exists (
                select 1 from pg_attribute
                where attrelid = %(table)s::regclass and attname = 'legacy_removed_at'
                    and not attisdropped
            ),
            exists (
                select 1 from pg_index as i
                join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
                where i.indrelid = %(table)s::regclass and i.indisunique and i.indisvalid
                    and i.indnkeyatts = 1 and i.indpred is null and a.attname = %(key)s
            )
        """,
        {"table": entity.target_table, "key": entity.key},
    ).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


def _target_filter(
    entity: EntitySpec, removable: bool, scope: sql.Composable | None
) -> sql.Composable:
    parts: list[sql.Composable] = []
    if removable:
        parts.append(sql.SQL("and t.legacy_removed_at is null"))
    if scope is not None:
        # no cast on the key: its unique index then finds the few rows of a delta
        parts.append(sql.SQL("and t.{} in ({})").format(sql.Identifier(entity.key), scope))
    return sql.SQL(" ").join(parts)


def compare(
    conn: psycopg.Connection[Any],
    entity: EntitySpec,
    run_id: str,
    *,
    legacy_table: str,
    exclude_quarantined: bool = False,
    exclude_columns: tuple[str, ...] = (),
    target_scope: sql.Composable | None = None,
) -> RowValidation:
    """Compare target-shaped legacy rows with the target and record the findings.

    Runs in ``conn``'s transaction; the findings of ``run_id`` for the entity replace its
    earlier ones. Target rows marked ``legacy_removed_at`` (gone from legacy, kept) are out of
    scope, and so are, after a sync, the rows outside its delta (``target_scope``: a query of
    legacy ids). ``legacy_table``'s rows are a subset of ``__transformed`` (the universe of
    legacy ids): so when the fingerprints agree no target row is unexpected either.
    """
    columns = [c for c in mapped_columns(conn, entity, legacy_table) if c[0] not in exclude_columns]
    if entity.key not in {c for c, _ in columns}:
        raise MigrationError(entity.name, f"staged rows lack the legacy id {entity.key}", rule=RULE)
    removable, key_unique = _target_shape(conn, entity)
    resolved = [
        (key.column, *_resolved(entity, key))
        for key in RESOLVED_KEYS.get(entity.name, ())
        if key.column not in exclude_columns
    ]
    legacy_filter = sql.SQL(
        "and not exists (select 1 from migration.quarantine as q where q.entity = {} "
        "and q.legacy_id = s.{}::bigint and q.resolved_at is null)"
        if exclude_quarantined
        else ""
    ).format(sql.Literal(entity.name), sql.Identifier(entity.key))
    names = {
        "target_filter": _target_filter(entity, removable, target_scope),
        "legacy": qualified(legacy_table),
        "target": qualified(entity.target_table),
        "universe": qualified(entity.staging_table("transformed")),
        "key": sql.Identifier(entity.key),
        "legacy_filter": legacy_filter,
        **_parts(columns, resolved),
    }
    conn.execute(
        "delete from migration.row_findings where run_id = %s and entity = %s",
        (run_id, entity.name),
    )
    rows = _equal_fingerprints(conn, names) if key_unique else None
    if rows is not None:
        return RowValidation(rows, rows, 0, 0, 0, CHECKSUM)
    params = {"run_id": run_id, "entity": entity.name, "max_findings": MAX_FINDINGS}
    return _row_by_row(conn, names, params)


def _equal_fingerprints(conn: psycopg.Connection[Any], names: dict[str, Any]) -> int | None:
    """The rows of each side when both sides' (count, XOR of row hashes) agree, else ``None``.

    With the target's key unique, equal fingerprints mean equal sets of (key, row), up to a
    2^-64 chance (``audit/row_checksums.sql``): every compared row matched, and every target row
    in scope is one of them. Two aggregates, no temporary table, no join.
    """
    legacy, target = [
        conn.execute(sql.SQL(statement).format(**names)).fetchone()
        for statement in _split(read_sql("audit/row_checksums.sql"))
    ]
    assert legacy is not None and target is not None
    return int(legacy[0]) if tuple(legacy) == tuple(target) else None


def _row_by_row(
    conn: psycopg.Connection[Any], names: dict[str, Any], params: dict[str, Any]
) -> RowValidation:
    """The full comparison (fingerprints differ, or no unique key): row hashes joined by id.

    Temporary ``rv_*`` tables hold ids and hashes only and drop at commit; mismatches are then
    compared column by column, so each finding names its legacy id and column.
    """
    conn.execute(sql.SQL(read_sql("audit/row_hashes.sql")).format(**names))
    *setup, counts_sql = _split(read_sql("audit/row_counts.sql"))
    for statement in setup:
        conn.execute(statement)
    row = conn.execute(counts_sql).fetchone()
    assert row is not None
    for statement in _split(read_sql("audit/row_findings.sql")):
        conn.execute(sql.SQL(statement).format(**names), params)
    compared, matched, mismatched, missing, unexpected = (int(v) for v in row)
    return RowValidation(compared, matched, mismatched, missing, unexpected, ROW_BY_ROW)


def record(
    conn: psycopg.Connection[Any],
    entity: EntitySpec,
    run_id: str,
    outcome: RowValidation,
    *,
    mode: str,
    seconds: float,
    snapshot_at: Any = None,
) -> None:
    """Write (or rewrite) the run's row of ``migration.row_validation`` for the entity."""
    conn.execute(
        """
        insert into migration.row_validation (run_id, entity, phase, mode, method,
            compared_rows, matched_rows, mismatched_rows, missing_rows, unexpected_rows,
            snapshot_at, seconds)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        on conflict (run_id, entity) do update set
            mode = excluded.mode, method = excluded.method,
            compared_rows = excluded.compared_rows,
            matched_rows = excluded.matched_rows, mismatched_rows = excluded.mismatched_rows,
            missing_rows = excluded.missing_rows, unexpected_rows = excluded.unexpected_rows,
            snapshot_at = excluded.snapshot_at, seconds = excluded.seconds, recorded_at = now()
        """,
        (
            run_id,
            entity.name,
            entity.phase,
            mode,
            outcome.method,
            outcome.compared_rows,
            outcome.matched_rows,
            outcome.mismatched_rows,
            outcome.missing_rows,
            outcome.unexpected_rows,
            snapshot_at,
            round(seconds, 3),
        ),
    )


def ensure_schema(target_dsn: str) -> None:
    """Create the row-validation tables if missing (idempotent DDL), in a transaction of its own.

    Its own: a lock held elsewhere (a backup running) rolls it back and it starts again
    (:func:`~migration_ops.schema.retry_when_busy`), which a caller's transaction could not.
    """
    schema.apply(
        target_dsn,
        ["target/050_row_validation.sql"],
        application_name="migration:schema:row-validation",
    )


def ensure_schema_current(target_dsn: str) -> None:
    """:func:`ensure_schema` only when the newest objects of 050 are missing (a catalog read).

    For the callers that run often (every entity's proof, every report): the fingerprint check
    takes the schema lock.
    """
    with connect(target_dsn, application_name="migration:schema:row-validation") as conn:
        current = _schema_current(conn)
    if not current:
        ensure_schema(target_dsn)


def _schema_current(conn: psycopg.Connection[Any]) -> bool:
    """True when the newest column of 050 exists: checked per entity without the schema lock.

    :func:`ensure_schema` checks the file's fingerprint and the catalog (~10 ms, under the
    schema lock); after every load that is 18 times a quiet sync for nothing.
    """
    return bool(
        scalar(
            conn,
            "select exists (select 1 from pg_catalog.pg_attribute where attrelid = "
            "to_regclass('migration.row_validation') and attname = 'method' and not attisdropped)"
            " and to_regclass('migration.row_findings') is not null",
        )
    )


def failure_message(outcome: RowValidation) -> str:
    """Value-free summary of a failed comparison (counts only; ids are in the findings)."""
    return (
        f"target differs from legacy: {outcome.mismatched_rows} mismatched, "
        f"{outcome.missing_rows} missing, {outcome.unexpected_rows} unexpected of "
        f"{outcome.compared_rows} compared (ids and columns in migration.row_findings)"
    )


def validate_after_load(
    target_dsn: str, run_id: str, entity: EntitySpec, *, scope: sql.Composable | None = None
) -> RowValidation:
    """Compare the entity's loaded rows with the target right after its load.

    Runs while the staging still exists (before the checkpoint drops it): the legacy side is
    ``__validated``, the rows of the phase's snapshot through the transform that passed the
    suite. The result is committed before a mismatch raises, so the findings stay for the
    auditor and the report. After a sync, ``scope`` (the delta's legacy ids) limits the target
    side to the rows the sync evaluated.

    Raises:
        MigrationError: a row differs, is missing, or the target has a stray row.
    """
    started = time.monotonic()
    ensure_schema_current(target_dsn)
    with connect(target_dsn, application_name=f"migration:row_validation:{entity.name}") as conn:
        outcome = compare(
            conn,
            entity,
            run_id,
            legacy_table=entity.staging_table("validated"),
            target_scope=scope,
        )
        snapshot = conn.execute(
            "select snapshot_at from migration.runs where run_id = %s", (run_id,)
        ).fetchone()
        record(
            conn,
            entity,
            run_id,
            outcome,
            mode="after_load",
            seconds=time.monotonic() - started,
            snapshot_at=snapshot[0] if snapshot else None,
        )
    if not outcome.ok:
        raise MigrationError(entity.name, failure_message(outcome), rule=RULE)
    return outcome
