"""Target DDL applied only when it changed: per-file fingerprints kept in the target.

Every phase run (and every backup, for the manifest) starts by applying DDL files that are
all idempotent. Running them again when nothing changed costs time and churns the catalog
(policies and views are dropped and created again). So each application records, in
``migration.schema_fingerprints``, the sha256 of the exact text that ran and an md5 of the
catalog afterwards (``schema/catalog_state.sql``: the oids, names, columns, grants and flags
of every object in ``public`` and ``migration``). A file is skipped only when both still
match:

- its text is unchanged (same sha256), and
- the catalog is as the last application left it: a table dropped by hand, a restore of
  ``public`` (new oids), a changed grant all make every file apply again.

When a file is applied, the fingerprints of the files that sort after it are forgotten: later
files build on earlier ones (``200`` on ``100``), so they run again on their next phase run.
Rollbacks call :func:`forget` before they change anything: a delete empties tables the DDL
seeds (order types), a restore puts back older objects. ``force=True`` applies everything
(tests that prove the files idempotent use it).

The caller owns the transaction and the schema lock (``hashtext('migration.apply_schema')``);
the files, the fingerprints and the catalog state commit or roll back together.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg

from migration_ops.db import connect, read_sql, run_sql_file, scalar
from migration_ops.errors import TransientStepError

log = logging.getLogger(__name__)

#: Where the fingerprints live (created by ``target/010_migration_schema.sql``).
FINGERPRINTS = "migration.schema_fingerprints"

#: How long one DDL statement waits for a lock before the application gives way
#: (``MIGRATION_DDL_LOCK_TIMEOUT``). Why a bound: a backup holds ACCESS SHARE on every table
#: while its ``pg_dump`` runs, and ``pg_dump``'s own lock requests queue behind a DDL statement
#: that waits: unbounded, the two wait for each other for ever (seen in the Celery tier, the
#: sign-off's ``050`` DDL beside an on-demand backup), and every reader of the table queues
#: behind them too.
DDL_LOCK_TIMEOUT = "10s"
#: How long :func:`retry_when_busy` keeps trying before the task fails and Airflow retries it
#: (``MIGRATION_DDL_BUSY_SECONDS``).
DDL_BUSY_SECONDS = 900.0

T = TypeVar("T")


def retry_when_busy(apply: Callable[[], T], what: str) -> T:
    """Run ``apply`` (one whole DDL transaction) again while a lock it needs is held elsewhere.

    ``apply`` must open and end its own transaction: a lock timeout rolls all of it back, so
    it holds nothing while it waits (keeping the locks of files already applied could close
    the same circle with the backup). Waits 1, 2, 4 … 30 s between attempts.

    Raises:
        TransientStepError: still busy after ``MIGRATION_DDL_BUSY_SECONDS``; the task retries.
    """
    deadline = time.monotonic() + float(
        os.environ.get("MIGRATION_DDL_BUSY_SECONDS", DDL_BUSY_SECONDS)
    )
    delay = 1.0
    while True:
        try:
            return apply()
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() + delay > deadline:
                raise TransientStepError(
                    f"{what}: the DDL kept waiting for locks other sessions hold (a backup's "
                    "pg_dump holds every table until it ends); the task will retry"
                ) from None
            log.info("%s: a lock the DDL needs is held elsewhere; again in %.0f s", what, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


def bound_lock_waits(conn: psycopg.Connection[Any]) -> None:
    """Bound every lock wait of the rest of this transaction by :data:`DDL_LOCK_TIMEOUT`."""
    timeout = os.environ.get("MIGRATION_DDL_LOCK_TIMEOUT", DDL_LOCK_TIMEOUT)
    conn.execute("select set_config('lock_timeout', %s, true)", (timeout,))


@dataclass(frozen=True)
class Applied:
    """What one call of :func:`apply_files` did.

    Attributes:
        applied: the files that ran, in order.
        skipped: the files left out because text and catalog were unchanged.
        reason: why files ran (``forced``, ``first application``, ``catalog changed``,
            ``changed``); empty when none did.
    """

    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reason: str = ""


def file_sha256(relative_path: str) -> str:
    """sha256 of the text of ``include/sql/<relative_path>`` (the exact text that runs)."""
    return hashlib.sha256(read_sql(relative_path).encode("utf-8")).hexdigest()


def catalog_state(conn: psycopg.Connection[Any]) -> str:
    """md5 over the objects of ``public`` and ``migration`` (see the SQL file)."""
    return str(scalar(conn, read_sql("schema/catalog_state.sql")))


def _has_fingerprints(conn: psycopg.Connection[Any]) -> bool:
    return scalar(conn, "select to_regclass(%s) is not null", (FINGERPRINTS,)) is True


def _stored(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, str]]:
    """``{file: (sha256, catalog_state)}``; empty when the table does not exist yet."""
    if not _has_fingerprints(conn):
        return {}
    rows = conn.execute(read_sql("schema/fingerprints_read.sql")).fetchall()
    return {str(file): (str(sha), str(state)) for file, sha, state in rows}


def apply(
    target_dsn: str,
    files: Sequence[str],
    *,
    application_name: str,
    force: bool = False,
    then: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> Applied:
    """:func:`apply_files` in a transaction of its own, under the schema lock, retried while busy.

    The one way the project applies target DDL (the phases, the backup manifest, the
    row-validation tables): the advisory lock ``migration.apply_schema`` serialises every DDL
    application (rollbacks take it too), and :func:`retry_when_busy` starts the whole
    transaction again while a lock it needs is held elsewhere.
    """

    def once() -> Applied:
        with connect(target_dsn, application_name=application_name) as conn:
            conn.execute("select pg_advisory_xact_lock(hashtext('migration.apply_schema'))")
            return apply_files(conn, files, force=force, then=then)

    return retry_when_busy(once, application_name)


def apply_files(
    conn: psycopg.Connection[Any],
    files: Sequence[str],
    *,
    force: bool = False,
    then: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> Applied:
    """Apply the DDL files that changed (all of them when forced or the catalog moved).

    Every lock wait of the rest of the transaction is bounded (:func:`bound_lock_waits`): the
    caller runs the whole transaction under :func:`retry_when_busy`.

    Args:
        conn: open connection; the caller owns the transaction and holds the schema lock.
        files: paths under ``include/sql``, in the order they must run.
        force: apply every file whatever the fingerprints say.
        then: more DDL to run after the files, before the catalog state is recorded (the
            sync's ``legacy_removed_at`` columns), so it does not count as a change next time.

    Returns:
        Which files ran and which were skipped.
    """
    bound_lock_waits(conn)
    stored = _stored(conn)
    state = catalog_state(conn) if stored else ""
    reason = "forced" if force else ""
    if stored and any(row_state != state for _, row_state in stored.values()):
        # Something outside these files changed the objects: no fingerprint can be trusted,
        # including those of later phases' files (their tables may be the ones missing).
        conn.execute(read_sql("schema/fingerprints_forget.sql"))
        stored, reason = {}, reason or "catalog changed"
    result = Applied()
    shas: list[str] = []
    for path in files:
        sha = file_sha256(path)
        if not force and not result.applied and stored.get(path, ("", ""))[0] == sha:
            result.skipped.append(path)
            continue
        # From the first file that runs on, every later file of the call runs too.
        reason = reason or ("changed" if path in stored else "first application")
        run_sql_file(conn, path)
        result.applied.append(path)
        shas.append(sha)
    if then is not None:
        then(conn)
    if result.applied and _has_fingerprints(conn):
        conn.execute(
            read_sql("schema/fingerprints_record.sql"),
            {"files": result.applied, "shas": shas, "state": catalog_state(conn)},
        )
    elif then is not None and _has_fingerprints(conn):
        # Only ``then`` ran: keep the fingerprints valid for what it (idempotently) did.
        conn.execute(read_sql("schema/fingerprints_restamp.sql"), {"state": catalog_state(conn)})
    applied = Applied(result.applied, result.skipped, reason if result.applied else "")
    if applied.applied:
        log.info(
            "DDL applied (%s): %s; unchanged, skipped: %s",
            applied.reason,
            ", ".join(applied.applied),
            ", ".join(applied.skipped) or "none",
        )
    else:
        log.info("DDL unchanged, skipped: %s", ", ".join(applied.skipped))
    return applied


def forget(target_dsn: str) -> None:
    """Forget every fingerprint: the next phase run applies its DDL files again."""
    with connect(target_dsn, application_name="migration:schema:forget") as conn:
        if _has_fingerprints(conn):
            conn.execute(read_sql("schema/fingerprints_forget.sql"))
