"""DDL never waits unbounded behind a backup (found by the Celery tier, 2026-11-28).

A backup holds ACCESS SHARE on every table of the target (its snapshot session) while its
``pg_dump`` runs, and ``pg_dump`` takes the same lock on each table as it reaches it. A DDL
statement that asks for ACCESS EXCLUSIVE meanwhile waits behind the snapshot session, and
``pg_dump``'s request queues behind the waiting DDL: the backup waits for ``pg_dump``,
``pg_dump`` for the DDL, the DDL for the backup, for ever (the sign-off's ``050`` DDL against
an on-demand backup hung the tier for 20 minutes). Now every DDL application bounds its lock
waits, rolls back and starts again. Here a session holding ACCESS SHARE stands for the
backup, a ``lock table … in access share mode`` for ``pg_dump``.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from include.entities import get_phase
from migration_ops import runs, schema
from migration_ops.audit.row_validation import ensure_schema
from migration_ops.db import connect, scalar
from migration_ops.errors import TransientStepError

pytestmark = pytest.mark.e2e

#: What pg_dump does to each table it dumps; it must get it within this while the DDL retries.
DUMP_LOCK = "lock table migration.row_validation in access share mode"


@pytest.fixture
def target(supabase_db, monkeypatch) -> str:
    """Phase 1's schema and 050 applied, then every fingerprint forgotten: 050 applies again."""
    monkeypatch.setenv("MIGRATION_DDL_LOCK_TIMEOUT", "200ms")
    dsn = supabase_db("ddl_locks")
    runs.apply_schema(dsn, get_phase(1))
    ensure_schema(dsn)
    schema.forget(dsn)
    return dsn


def _backup_session(dsn: str) -> psycopg.Connection:
    """A session holding ACCESS SHARE on the row-validation table, as a backup's snapshot does."""
    holder = psycopg.connect(dsn)
    holder.execute("lock table migration.row_validation in access share mode")
    return holder


def test_ddl_gives_way_to_a_running_backup_and_applies_once_it_ends(target, monkeypatch) -> None:
    monkeypatch.setenv("MIGRATION_DDL_BUSY_SECONDS", "60")
    holder = _backup_session(target)
    finished: list[float] = []
    ddl = threading.Thread(target=lambda: (ensure_schema(target), finished.append(time.time())))
    ddl.start()
    try:
        time.sleep(1.0)
        assert ddl.is_alive() and not finished, "the DDL waits while the backup holds its lock"
        with connect(target) as dump:  # pg_dump reaching the table: not queued behind the DDL
            dump.execute("set local lock_timeout = '3s'")
            dump.execute(DUMP_LOCK)
    finally:
        released = time.time()
        holder.rollback()
        holder.close()
    ddl.join(timeout=60)
    assert finished and finished[0] >= released, "applied after the backup let go"
    with connect(target) as conn:
        applied = scalar(
            conn,
            "select count(*) from migration.schema_fingerprints "
            "where file = 'target/050_row_validation.sql'",
        )
    assert applied == 1


def test_ddl_still_busy_at_its_deadline_fails_for_the_task_to_retry(target, monkeypatch) -> None:
    monkeypatch.setenv("MIGRATION_DDL_BUSY_SECONDS", "1")
    holder = _backup_session(target)
    try:
        with pytest.raises(
            TransientStepError, match="^migration:schema:row-validation: the DDL kept waiting"
        ):
            ensure_schema(target)
    finally:
        holder.close()
