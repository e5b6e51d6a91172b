"""Preflight: everything that would make a run fail or lie, checked before it writes anything.

Connectivity and privileges (the legacy session is read-only and may SELECT every column the
specs read, the target can create what the phases create), the legacy schema against what the
entity specs read (drift: missing tables or columns, changed types, compared with
``include/audit/legacy_columns.json``), volumes of every legacy table the specs read (the
primary ones against the last run), a defect profile (counts per defect class the transforms
handle), target extensions, ``pg_dump`` against both servers, free space for backups and for
staging (measured on a local target server, else reported "not checked"). It changes
nothing in either database (read-only sessions and catalog queries); it writes one page to
the reports directory. Phase 1 runs :func:`require_preflight` as its gate: a failing check
stops the migration before the backup, with a message naming every failing check.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from include.entities import LEGACY_PHASES as PHASES  # phase 5 reads the target, not legacy
from include.entities.spec import EntitySpec
from include.transforms.patterns import EMAIL_PATTERN
from include.transforms.phase4_codes import ORDER_STATES
from include.transforms.text_repair import MOJIBAKE_CANDIDATE_PATTERN
from migration_ops import backup
from migration_ops.db import connect, connect_legacy, legacy_conninfo, read_sql
from migration_ops.errors import MigrationError
from migration_ops.privileges import missing_target_privileges
from migration_ops.settings import SQL_DIR

#: What the entity specs were written against: (table → column → type) of the legacy columns
#: they read. Regenerate with ``python -m migration_ops.audit.preflight --write-expected``
#: from a database of the legacy schema, and review the diff.
EXPECTED_COLUMNS = SQL_DIR.parent / "audit" / "legacy_columns.json"
#: Extension → whether a run cannot do without it. ``vector`` holds phase 5's embeddings;
#: ``pgcrypto`` is standard on Supabase but the schema only needs core ``gen_random_uuid()``.
EXTENSIONS = {"vector": True, "pgcrypto": False}
ENTITY = "preflight"


@dataclass(frozen=True)
class Check:
    """One preflight finding; ``detail`` names objects and counts, never a value."""

    area: str
    name: str
    status: str  # ok | warn | fail | not checked (only fail stops a run)
    detail: str


@dataclass
class Preflight:
    """Everything one preflight found, for the page and the gate."""

    started_at: str
    checks: list[Check] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    defects: list[dict[str, Any]] = field(default_factory=list)
    #: What one phase stages at most (the legacy tables the specs read), for the space check.
    staging_bytes: int = 0

    @property
    def failures(self) -> list[Check]:
        """The checks that stop a run."""
        return [c for c in self.checks if c.status == "fail"]

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON report, XCom)."""
        return {
            "started_at": self.started_at,
            "ok": not self.failures,
            "checks": [asdict(c) for c in self.checks],
            "volumes": self.volumes,
            "defects": self.defects,
            "staging_bytes": self.staging_bytes,
        }


class PreflightFailed(MigrationError):
    """A preflight check failed: the migration must not start."""


def entity_columns(entity: EntitySpec) -> dict[str, set[str]]:
    """The legacy (table → columns) one entity reads: its sources, relations, direct columns."""
    wanted: dict[str, set[str]] = {}
    for source in [*entity.sources, *(r.source for r in entity.generic_relations)]:
        wanted.setdefault(source.table, set()).update(source.columns)
    for direct in entity.direct_columns:
        wanted.setdefault(direct.legacy_table, set()).add(direct.legacy_column)
    return wanted


def spec_columns() -> dict[str, set[str]]:
    """Every legacy (table → columns) the entity specs of all phases read."""
    wanted: dict[str, set[str]] = {}
    for phase in PHASES:
        for entity in phase.entities:
            for table, columns in entity_columns(entity).items():
                wanted.setdefault(table, set()).update(columns)
    return wanted


def select_privileges(
    conn: psycopg.Connection[Any], catalog: dict[str, dict[str, str]]
) -> tuple[Check, set[str]]:
    """Whether the legacy role may SELECT every column the specs read; the unreadable tables.

    Only what the catalog has is asked (a missing table or column is the drift check's);
    a table none of whose wanted columns is readable is named alone, else each column.
    """
    pairs = [
        (table, column)
        for table, columns in sorted(spec_columns().items())
        if table in catalog
        for column in sorted(columns)
        if column in catalog[table]
    ]
    denied: dict[str, list[str]] = {}
    for table, column in conn.execute(
        read_sql("preflight/legacy_select_privileges.sql"),
        {"tables": [t for t, _ in pairs], "columns": [c for _, c in pairs]},
    ).fetchall():
        denied.setdefault(str(table), []).append(str(column))
    if not denied:
        detail = f"the legacy role may SELECT all {len(pairs)} columns the specs read"
        return Check("legacy", "select privileges", "ok", detail), set()
    wanted = {t: [c for tt, c in pairs if tt == t] for t in denied}
    names = [
        table if columns == wanted[table] else ", ".join(f"{table}.{c}" for c in columns)
        for table, columns in sorted(denied.items())
    ]
    detail = "no SELECT for the legacy role on: " + "; ".join(names)
    return Check("legacy", "select privileges", "fail", detail), set(denied)


def legacy_catalog(conn: psycopg.Connection[Any], tables: list[str]) -> dict[str, dict[str, str]]:
    """(table → column → type) of the legacy tables, from the catalog."""
    found: dict[str, dict[str, str]] = {}
    for table, column, kind in conn.execute(
        read_sql("preflight/legacy_columns.sql"), {"tables": tables}
    ).fetchall():
        found.setdefault(str(table), {})[str(column)] = str(kind)
    return found


def drift_checks(
    catalog: dict[str, dict[str, str]], expected: dict[str, dict[str, str]]
) -> list[Check]:
    """Missing tables, missing columns and changed types of what the specs read."""
    checks: list[Check] = []
    for table, columns in sorted(spec_columns().items()):
        if table not in catalog:
            checks.append(Check("legacy schema", f"{table}", "fail", "table missing"))
            continue
        for column in sorted(columns):
            have = catalog[table].get(column)
            want = expected.get(table, {}).get(column)
            if have is None:
                checks.append(Check("legacy schema", f"{table}.{column}", "fail", "column missing"))
            elif want is not None and have != want:
                checks.append(
                    Check(
                        "legacy schema",
                        f"{table}.{column}",
                        "fail",
                        f"type changed: {want} → {have}",
                    )
                )
    if not checks:
        count = sum(len(c) for c in spec_columns().values())
        checks.append(Check("legacy schema", "drift", "ok", f"{count} columns as the specs expect"))
    return checks


def _defect_blocks() -> list[tuple[str, str, str]]:
    """(defect class, table, query) of each ``-- check:`` block of defect_profile.sql."""
    blocks = []
    for part in read_sql("preflight/defect_profile.sql").split("-- check: ")[1:]:
        header, _, query = part.partition("\n")
        defect, table = header.split()
        blocks.append((defect, table, query.strip().rstrip(";")))
    return blocks


def defect_profile(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Counts per defect class; a block the legacy schema cannot answer is 'not checked'."""
    params = {
        "email_pattern": EMAIL_PATTERN,
        "mojibake_pattern": MOJIBAKE_CANDIDATE_PATTERN,
        "state_codes": [s.legacy_status for s in ORDER_STATES],
    }
    rows: list[dict[str, Any]] = []
    for defect, table, query in _defect_blocks():
        try:
            with conn.transaction():
                count = conn.execute(query, params).fetchone()
            rows.append({"defect": defect, "table": table, "rows": int(count[0]) if count else 0})
        except (
            psycopg.errors.UndefinedTable,
            psycopg.errors.UndefinedColumn,
            psycopg.errors.InsufficientPrivilege,
        ):
            rows.append({"defect": defect, "table": table, "rows": None})
    return rows


def _previous_source_rows(target_dsn: str) -> dict[str, int]:
    """``source_rows`` per entity of its latest phase run (empty on a fresh target)."""
    with connect(target_dsn, application_name="migration:preflight") as conn:
        if conn.execute("select to_regclass('migration.checkpoints')").fetchone() == (None,):
            return {}
        rows = conn.execute(
            """
            select distinct on (c.entity) c.entity, c.source_rows
            from migration.checkpoints as c join migration.runs as r using (run_id)
            where r.phase > 0 and c.source_rows is not null
            order by c.entity, r.started_at desc
            """
        ).fetchall()
    return {str(e): int(n) for e, n in rows}


def volumes(
    conn: psycopg.Connection[Any],
    readable: set[str],
    previous: dict[str, int],
) -> list[dict[str, Any]]:
    """Rows now in every legacy table each entity reads; its primary table against its last run.

    ``readable``: the tables present and readable (others are "not checked": ``rows`` None).
    Each table is counted once, however many entities read it.
    """
    from psycopg import sql

    counts: dict[str, int | None] = {}
    rows = []
    for phase in PHASES:
        for entity in phase.ordered():
            for table in entity_columns(entity):
                if table not in counts:
                    query = sql.SQL("select count(*) from {}").format(
                        sql.Identifier("public", table)
                    )
                    counted = conn.execute(query).fetchone() if table in readable else None
                    counts[table] = int(counted[0]) if counted else None
                primary = table == entity.primary_source.table
                now, last = counts[table], previous.get(entity.name) if primary else None
                rows.append(
                    {
                        "entity": entity.name,
                        "table": table,
                        "primary": primary,
                        "rows": now,
                        "last_run": last,
                        "change": None if now is None or last is None else now - last,
                    }
                )
    return rows


def legacy_checks(legacy_dsn: str, result: Preflight, previous: dict[str, int]) -> None:
    """Legacy connectivity, read-only sessions, schema drift, volumes and defect profile."""
    try:
        conn = connect_legacy(legacy_dsn, application_name="migration:preflight")
    except psycopg.Error as exc:
        result.checks.append(Check("legacy", "connect", "fail", f"cannot connect ({exc.sqlstate})"))
        return
    with conn:
        read_only = conn.execute("show transaction_read_only").fetchone() == ("on",)
        result.checks.append(
            Check(
                "legacy",
                "read-only session",
                "ok" if read_only else "fail",
                "sessions are read-only" if read_only else "a legacy session could write",
            )
        )
        expected = json.loads(EXPECTED_COLUMNS.read_text(encoding="utf-8"))
        catalog = legacy_catalog(conn, sorted(spec_columns()))
        result.checks.extend(drift_checks(catalog, expected))
        privileges, unreadable = select_privileges(conn, catalog)
        result.checks.append(privileges)
        result.volumes = volumes(conn, set(catalog) - unreadable, previous)
        result.defects = defect_profile(conn)
        result.staging_bytes = _source_size(conn, catalog)


def _source_size(conn: psycopg.Connection[Any], catalog: dict[str, dict[str, str]]) -> int:
    """How much staging one phase needs at most: the legacy tables the specs read (bytes)."""
    size = conn.execute(
        "select coalesce(sum(pg_total_relation_size(('public.' || quote_ident(t))::regclass)), 0)"
        " from unnest(%s::text[]) as t",
        (sorted(catalog),),
    ).fetchone()
    return int(size[0]) if size else 0


def _local_data_directory(target_dsn: str) -> Path | None:
    """The target's data directory when this machine can see it (a local server), else None.

    Local means: reached through a Unix socket or the loopback address, and the directory
    the server reports holds its ``PG_VERSION`` here. Reading the setting needs superuser or
    ``pg_read_all_settings``; without it the space is not checked.
    """
    host = psycopg.conninfo.conninfo_to_dict(target_dsn).get("host") or ""
    if not (str(host).startswith("/") or host in ("localhost", "127.0.0.1", "::1")):
        return None
    try:
        with connect(target_dsn, application_name="migration:preflight") as conn:
            row = conn.execute(read_sql("preflight/target_data_directory.sql")).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    directory = Path(str(row[0])) if row else None
    return directory if directory and (directory / "PG_VERSION").is_file() else None


def staging_space_check(target_dsn: str, needed: int) -> Check:
    """Free space where the target server writes staging against what a phase stages.

    Measured when the server is local (its data directory's file system); otherwise the
    server's free disk is not visible from here and the check says "not checked".
    """
    megabytes = needed // 2**20
    directory = _local_data_directory(target_dsn)
    if directory is None:
        return Check(
            "space",
            "staging",
            "not checked",
            f"staging needs at most about {megabytes} MB in the target database (the legacy "
            "tables the specs read); the target server's free disk is not visible from here",
        )
    free = shutil.disk_usage(directory).free
    return Check(
        "space",
        "staging",
        "ok" if free >= needed else "fail",
        f"{free // 2**20} MB free on the target server's data file system, {megabytes} MB "
        "needed (the legacy tables the specs read)",
    )


def target_checks(target_dsn: str, result: Preflight) -> dict[str, Any]:
    """Target connectivity, writability, privileges and extensions; returns its state."""
    try:
        with connect(target_dsn, application_name="migration:preflight") as conn:
            row = conn.execute(read_sql("preflight/target_state.sql")).fetchone()
    except psycopg.Error as exc:
        result.checks.append(Check("target", "connect", "fail", f"cannot connect ({exc.sqlstate})"))
        return {}
    assert row is not None
    state: dict[str, Any] = {
        "read_only": bool(row[0]),
        "extensions": list(row[1]),
        "available": list(row[2]),
        "bytes": int(row[3]),
        "major": int(row[4]),
    }
    result.checks.append(
        Check(
            "target",
            "writable",
            "fail" if state["read_only"] else "ok",
            "target sessions are read-only: nothing could be created or loaded"
            if state["read_only"]
            else "target sessions can write",
        )
    )
    missing = missing_target_privileges(target_dsn)
    result.checks.append(
        Check(
            "target",
            "privileges",
            "fail" if missing else "ok",
            "missing: " + "; ".join(f"{p.privilege} ({p.needed_for})" for p in missing)
            if missing
            else "every privilege the phases, backups and rollbacks need",
        )
    )
    result.checks.extend(extension_checks(state["extensions"], state["available"]))
    return state


def extension_checks(installed: list[str], available: list[str]) -> list[Check]:
    """Installed: ok. Available but not installed: warn. Missing a needed one: fail."""
    checks = []
    for name, needed in EXTENSIONS.items():
        if name in installed:
            checks.append(Check("target", f"extension {name}", "ok", "installed"))
        elif name in available:
            checks.append(Check("target", f"extension {name}", "warn", "available, not installed"))
        else:
            status = "fail" if needed else "warn"
            checks.append(Check("target", f"extension {name}", status, "not available"))
    return checks


def tool_checks(legacy_dsn: str, target_dsn: str, result: Preflight, state: dict[str, Any]) -> None:
    """``pg_dump`` at least as new as both servers; room for a backup of each.

    The legacy server's version is asked through :func:`legacy_conninfo`, like every legacy
    session: the check must not be the one writable way into the legacy database.
    """
    for name, dsn in (("legacy", legacy_conninfo(legacy_dsn)), ("target", target_dsn)):
        try:
            server = backup.check_tool_versions(dsn, ("pg_dump", "pg_restore"))
            result.checks.append(
                Check(
                    "tools",
                    f"pg_dump vs {name}",
                    "ok",
                    f"pg_dump {backup.tool_major_version('pg_dump')} ≥ server {server}",
                )
            )
        except (MigrationError, psycopg.Error, OSError) as exc:
            reason = str(exc) if isinstance(exc, MigrationError) else type(exc).__name__
            result.checks.append(Check("tools", f"pg_dump vs {name}", "fail", reason))
    directory = backup.backup_dir()
    probe = directory if directory.exists() else directory.parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    needed = 2 * int(state.get("bytes", 0))
    result.checks.append(
        Check(
            "space",
            "backups",
            "ok" if free >= needed else "fail",
            f"{free // 2**20} MB free in the backup directory, {needed // 2**20} MB needed "
            "(a dump and its scratch restore of the target)",
        )
    )


def run_preflight(legacy_dsn: str, target_dsn: str) -> Preflight:
    """Every check, in read-only sessions; nothing is written to either database."""
    result = Preflight(started_at=datetime.now(UTC).isoformat())
    state = target_checks(target_dsn, result)
    legacy_checks(legacy_dsn, result, _previous_source_rows(target_dsn) if state else {})
    if state:
        result.checks.append(staging_space_check(target_dsn, result.staging_bytes))
    tool_checks(legacy_dsn, target_dsn, result, state)
    return result


def failure_message(result: Preflight) -> str:
    """Value-free message naming every failing check."""
    names = "; ".join(f"{c.area} {c.name}: {c.detail}" for c in result.failures)
    return f"preflight failed ({len(result.failures)} checks): {names}"


def require_preflight(legacy_dsn: str, target_dsn: str, directory: Path | None = None) -> Path:
    """Run the preflight, write its page, and refuse (raise) when a check failed.

    Returns:
        The directory of the preflight page.

    Raises:
        PreflightFailed: naming every failing check (phase 1 does not start).
    """
    from migration_ops.audit import pages

    result = run_preflight(legacy_dsn, target_dsn)
    out = pages.write_preflight(result, directory)
    if result.failures:
        raise PreflightFailed(
            ENTITY, failure_message(result) + f" (report: {out})", rule="preflight.passed"
        )
    return out


def write_expected(legacy_dsn: str, path: Path = EXPECTED_COLUMNS) -> None:
    """Record the legacy types of the columns the specs read (run once, review the diff)."""
    with connect_legacy(legacy_dsn, application_name="migration:preflight") as conn:
        catalog = legacy_catalog(conn, sorted(spec_columns()))
    wanted = spec_columns()
    expected = {t: {c: catalog[t][c] for c in sorted(cols)} for t, cols in sorted(wanted.items())}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
