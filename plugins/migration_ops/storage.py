"""Object copy: a file's bytes from the legacy media store to Supabase Storage, with checksums.

The step runs between validate and load for an entity whose spec has ``object_copy``
(:class:`~include.entities.spec.ObjectCopySpec`), in three moves:

1. **Copy.** The validated rows in scope are read with a server-side cursor in batches (never
   the whole table); a bounded thread pool copies each batch. Per row: hash the source file
   (streamed SHA-256), ask Storage for the object's info; when it is already stored with the
   same SHA-256 (kept in the object's user metadata) nothing is sent, otherwise the bytes are
   uploaded (``x-upsert``) with their SHA-256. A retried or resumed run therefore re-sends
   only what is not safely stored yet. The outcome of every row (``uploaded``, ``skipped``,
   ``missing``) goes to ``staging.<entity>__objects`` with COPY.
2. **Quarantine.** Rows whose source bytes are missing are quarantined under the spec's
   ``missing_rule`` with the same helper the validation uses, and ``__validated`` is rebuilt
   the same way (transformed minus this run's quarantine), so reconciliation stays
   ``source = loaded + quarantined``; the run's quarantine limit applies to the total.
3. **Record.** The bucket, key and SHA-256 of every stored object are written into
   ``__validated``, so the load puts them on the target rows.

Scope: by default every validated row must have its bytes (production: the legacy
application stored a file for every ``dispatch_file`` row). A store that deliberately holds
only some of them (the sandbox writes bytes for ~2 % of its rows) comes with an
*expected-objects listing*, one relative path per line: then only listed rows are copied or
quarantined, and the others load as metadata without an object.

Settings come from the Airflow connection ``supabase_storage`` (``AIRFLOW_CONN_SUPABASE_STORAGE``):
host (URL) and password (the service key), extras ``bucket``, ``media_root``,
``expected_objects``, ``workers``; the media root may also come from ``MIGRATION_MEDIA_ROOT``.
Nothing is guessed: without a connection or a media root the step fails and says what to set.
Logs carry counts only; file names and paths may hold patient names.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql

from include.entities.spec import EntitySpec, ObjectCopySpec
from migration_ops import quarantine
from migration_ops.db import connect, qualified, scalar
from migration_ops.errors import MigrationError, ValidationFailed
from migration_ops.progress import Progress
from migration_ops.validate import QuarantineLimit

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from storage3._sync.file_api import SyncBucketProxy

log = logging.getLogger(__name__)

#: Airflow connection id of the Storage API (URL and service key).
STORAGE_CONN_ID = "supabase_storage"
#: Environment variable that may name the legacy media root instead of the connection extra.
MEDIA_ROOT_ENV = "MIGRATION_MEDIA_ROOT"
#: Bucket used when the connection names none.
DEFAULT_BUCKET = "legacy-files"
#: Rows read from the server-side cursor and copied per batch (bounds memory).
BATCH_SIZE = 500
#: Outcomes of one row's copy, as stored in ``staging.<entity>__objects``.
UPLOADED, SKIPPED, MISSING = "uploaded", "skipped", "missing"


@dataclass(frozen=True)
class StorageSettings:
    """Where the bytes come from and go to.

    Attributes:
        url: Supabase project URL (the client adds ``/storage/v1``).
        key: service-role key (sent as the bearer token; never logged).
        bucket: target bucket, created (private) when missing.
        media_root: directory of the legacy media store; source paths are relative to it.
        expected_objects: optional listing of the relative paths the store is expected to
            hold (see the module docstring); ``None`` means every row.
        workers: parallel copies (threads).
    """

    url: str
    key: str
    bucket: str
    media_root: Path
    expected_objects: Path | None = None
    workers: int = 8

    def __repr__(self) -> str:
        return f"StorageSettings(url={self.url!r}, bucket={self.bucket!r}, workers={self.workers})"


def settings_from_connection(conn: Connection, entity: str = "object_copy") -> StorageSettings:
    """Build the settings from an Airflow connection (see the module docstring for fields).

    Raises:
        MigrationError: the connection has no host or key, or no media root is configured.
    """
    extra = conn.extra_dejson
    host = conn.host or ""
    if not host or not conn.password:
        raise MigrationError(
            entity,
            f"connection {STORAGE_CONN_ID} needs the Storage URL as host and the service key as "
            "password",
            rule="object_copy.configured",
        )
    if host.startswith(("http://", "https://")):
        url = host.rstrip("/")
    else:
        scheme = next((s for s in (conn.schema, conn.conn_type) if s in ("http", "https")), "https")
        url = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    media_root = extra.get("media_root") or os.environ.get(MEDIA_ROOT_ENV)
    if not media_root:
        raise MigrationError(
            entity,
            f"no legacy media root: set the extra 'media_root' of connection {STORAGE_CONN_ID} "
            f"or the environment variable {MEDIA_ROOT_ENV}",
            rule="object_copy.configured",
        )
    expected = extra.get("expected_objects")
    return StorageSettings(
        url=url,
        key=conn.password,
        bucket=str(extra.get("bucket") or DEFAULT_BUCKET),
        media_root=Path(media_root),
        expected_objects=Path(expected) if expected else None,
        workers=int(extra.get("workers") or 8),
    )


def task_settings(entity: str) -> StorageSettings:
    """Settings inside an Airflow task: the connection as the task resolves it.

    Raises:
        MigrationError: the connection is not defined (env, secrets backend or metadata DB).
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(STORAGE_CONN_ID)
    except AirflowNotFoundException as exc:
        raise _not_configured(entity) from exc
    return settings_from_connection(conn, entity)


def env_settings(entity: str) -> StorageSettings:
    """Settings outside a task, from ``AIRFLOW_CONN_SUPABASE_STORAGE`` (JSON or URI form).

    Raises:
        MigrationError: the variable is not set.
    """
    from airflow.sdk import Connection

    value = os.environ.get(f"AIRFLOW_CONN_{STORAGE_CONN_ID.upper()}")
    if not value:
        raise _not_configured(entity)
    if value.lstrip().startswith("{"):
        conn = Connection.from_json(value, conn_id=STORAGE_CONN_ID)
    else:
        conn = Connection.from_uri(value, conn_id=STORAGE_CONN_ID)
    return settings_from_connection(conn, entity)


def _not_configured(entity: str) -> MigrationError:
    return MigrationError(
        entity,
        f"Supabase Storage is not configured: define the Airflow connection {STORAGE_CONN_ID} "
        f"(e.g. AIRFLOW_CONN_{STORAGE_CONN_ID.upper()}) with the project URL, the service key "
        "and the media root",
        rule="object_copy.configured",
    )


@dataclass(frozen=True)
class CopyOutcome:
    """Counts of one entity's object copy (no names, no paths)."""

    uploaded: int
    skipped: int
    missing: int
    out_of_scope: int
    quarantined_rows: int
    validated_rows: int

    def as_dict(self) -> dict[str, int]:
        """Plain-dict form for XCom and logs."""
        return dict(self.__dict__)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, streamed (constant memory whatever the size)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class ObjectCopier:
    """Copies one row's bytes at a time; shared by the worker threads (httpx is thread-safe)."""

    def __init__(self, settings: StorageSettings) -> None:
        from storage3.exceptions import StorageApiError
        from supabase import create_client

        self._root = settings.media_root.resolve()
        self._api_error = StorageApiError
        self._storage = create_client(settings.url, settings.key).storage
        self._bucket_name = settings.bucket
        self._bucket: SyncBucketProxy = self._storage.from_(settings.bucket)

    def ensure_bucket(self) -> None:
        """Create the (private) bucket unless it exists; tolerate a concurrent creator."""
        try:
            self._storage.get_bucket(self._bucket_name)
        except self._api_error as exc:
            if str(exc.status) not in ("400", "404"):
                raise
            try:
                self._storage.create_bucket(self._bucket_name, options={"public": False})
            except self._api_error as create_error:
                if str(create_error.status) != "409":
                    raise

    def _stored_sha256(self, key: str) -> str | None:
        try:
            info: dict[str, Any] = self._bucket.info(key)
        except self._api_error as exc:
            if str(exc.status) == "404":
                return None
            raise
        metadata = info.get("metadata") or {}
        return metadata.get("sha256") if isinstance(metadata, dict) else None

    def copy(self, row: tuple[int, str, str, str]) -> tuple[int, str, str | None]:
        """Copy one row's object; return ``(legacy id, outcome, sha256)``.

        A source path that leaves the media root (``..`` in a legacy name) is treated as
        missing: the store cannot hold it, and nothing outside the root is ever read.
        """
        legacy_id, relative, key, content_type = row
        source = (self._root / relative).resolve()
        if not source.is_relative_to(self._root) or not source.is_file():
            return legacy_id, MISSING, None
        digest = sha256_of(source)
        if self._stored_sha256(key) == digest:
            return legacy_id, SKIPPED, digest
        with source.open("rb") as handle:
            self._bucket.upload(
                key,
                handle,
                {"content-type": content_type, "upsert": "true", "metadata": {"sha256": digest}},
            )
        return legacy_id, UPLOADED, digest


def _load_scope(conn: Any, entity: EntitySpec, listing: Path) -> sql.Composable:
    """COPY the expected-objects listing into staging; return the table's identifier."""
    scope = qualified(entity.staging_table("object_scope"))
    conn.execute(sql.SQL("drop table if exists {}").format(scope))
    conn.execute(sql.SQL("create unlogged table {} (relative_path text)").format(scope))
    with (
        listing.open(encoding="utf-8") as lines,
        conn.cursor().copy(sql.SQL("copy {} from stdin").format(scope)) as copy,
    ):
        for line in _listed_paths(lines):
            copy.write_row((line,))
    conn.execute(sql.SQL("create index on {} (relative_path)").format(scope))
    return scope


def _listed_paths(lines: Iterable[str]) -> Iterable[str]:
    """Relative paths of a listing: one per line, blank lines and ``#`` comments skipped.

    Streamed line by line (a listing may name every file of a large store); duplicates are
    harmless, the scope is only ever probed with ``exists``.
    """
    for line in lines:
        path = line.rstrip("\r\n")
        if path.strip() and not path.lstrip().startswith("#"):
            yield path


def copy_objects(
    target_dsn: str,
    entity: EntitySpec,
    settings: StorageSettings,
    *,
    limit: QuarantineLimit,
) -> CopyOutcome:
    """Copy the entity's objects, quarantine missing sources, fill the storage columns.

    Raises:
        MigrationError: the entity has no ``object_copy`` spec.
        ValidationFailed: the quarantine (validation plus missing objects) is above ``limit``.
    """
    spec = entity.object_copy
    if spec is None:
        raise MigrationError(entity.name, "entity has no object_copy spec")
    copier = ObjectCopier(settings)
    copier.ensure_bucket()
    validated = qualified(entity.staging_table("validated"))
    objects = qualified(entity.staging_table("objects"))
    key = sql.Identifier(entity.key)
    counts = {UPLOADED: 0, SKIPPED: 0, MISSING: 0}
    with connect(target_dsn, application_name=f"migration:copy:{entity.name}") as conn:
        conn.execute(sql.SQL("drop table if exists {}").format(objects))
        conn.execute(
            sql.SQL(
                "create unlogged table {} (legacy_id bigint primary key, outcome text not null, "
                "sha256 text)"
            ).format(objects)
        )
        scope_filter: sql.Composable = sql.SQL("")
        if settings.expected_objects is not None:
            scope = _load_scope(conn, entity, settings.expected_objects)
            scope_filter = sql.SQL(
                "and exists (select 1 from {scope} as s where s.relative_path = v.{path})"
            ).format(scope=scope, path=sql.Identifier(spec.source_path))
        # One short transaction per batch (keyset paging on the legacy id), not one for the
        # whole copy: a copy of a production media store takes hours, and an open transaction
        # that long would hold back vacuum on the whole target.
        conn.commit()
        next_batch = sql.SQL(
            "select v.{key}, v.{path}, v.{object_key}, v.{content_type} from {validated} as v "
            "where v.{key} > %s {scope_filter} order by v.{key} limit %s"
        ).format(
            key=key,
            path=sql.Identifier(spec.source_path),
            object_key=sql.Identifier(spec.object_key),
            content_type=sql.Identifier(spec.content_type),
            validated=validated,
            scope_filter=scope_filter,
        )
        in_scope, after = 0, -(2**63)
        # Total: the validated rows (each has at most one object); with an expected-objects
        # listing fewer are in scope, and the last line says how many were copied.
        total = int(scalar(conn, sql.SQL("select count(*) from {}").format(validated)))
        progress = Progress(f"object copy {entity.name}", total, unit="objects")
        with ThreadPoolExecutor(max_workers=settings.workers) as pool:
            while batch := conn.execute(next_batch, (after, BATCH_SIZE)).fetchall():
                after = batch[-1][0]
                in_scope += len(batch)
                results = list(pool.map(copier.copy, batch))
                with conn.cursor().copy(sql.SQL("copy {} from stdin").format(objects)) as copy:
                    for result in results:
                        counts[result[1]] += 1
                        copy.write_row(result)
                conn.commit()
                progress.add(len(batch))
        progress.finish()
        out_of_scope = total - in_scope
    return _settle(target_dsn, entity, spec, settings, counts, out_of_scope, limit)


def _settle(
    target_dsn: str,
    entity: EntitySpec,
    spec: ObjectCopySpec,
    settings: StorageSettings,
    counts: dict[str, int],
    out_of_scope: int,
    limit: QuarantineLimit,
) -> CopyOutcome:
    """Quarantine missing sources, rebuild ``__validated``, write the storage columns."""
    objects = qualified(entity.staging_table("objects"))
    if counts[MISSING]:
        with connect(target_dsn, application_name=f"migration:copy:{entity.name}") as conn:
            quarantine.hold_back(
                conn,
                entity,
                rule=spec.missing_rule,
                detail="object_copy: source object missing from the legacy media store",
                failing_rows=sql.SQL(
                    "select legacy_id as {key} from {objects} where outcome = {missing}"
                ).format(
                    key=sql.Identifier(entity.key), objects=objects, missing=sql.Literal(MISSING)
                ),
            )
    quarantined, validated_rows = quarantine.rebuild_validated(target_dsn, entity)
    with connect(target_dsn, application_name=f"migration:copy:{entity.name}") as conn:
        conn.execute(
            sql.SQL(
                """
                update {validated} as v
                set {bucket} = %s, {path} = v.{object_key}, {checksum} = o.sha256
                from {objects} as o
                where o.legacy_id = v.{key} and o.outcome in (%s, %s)
                """
            ).format(
                validated=qualified(entity.staging_table("validated")),
                bucket=sql.Identifier(spec.bucket_column),
                path=sql.Identifier(spec.path_column),
                object_key=sql.Identifier(spec.object_key),
                checksum=sql.Identifier(spec.checksum_column),
                objects=objects,
                key=sql.Identifier(entity.key),
            ),
            (settings.bucket, UPLOADED, SKIPPED),
        )
    outcome = CopyOutcome(
        uploaded=counts[UPLOADED],
        skipped=counts[SKIPPED],
        missing=counts[MISSING],
        out_of_scope=out_of_scope,
        quarantined_rows=quarantined,
        validated_rows=validated_rows,
    )
    log.info("%s: object copy %s", entity.name, outcome.as_dict())
    if limit.exceeded(quarantined, quarantined + validated_rows):
        raise ValidationFailed(
            entity.name,
            f"{quarantined} of {quarantined + validated_rows} rows quarantined after the object "
            f"copy ({counts[MISSING]} source objects missing), above the run's limit (max of "
            f"{limit.allowance} rows and {limit.fraction:.1%}); see migration.quarantine",
            rule=spec.missing_rule,
        )
    return outcome
