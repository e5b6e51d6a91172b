"""Reports kept where the backups are, with the same retention.

When ``MIGRATION_REPORTS_ARCHIVE`` is true, each run's report directory is packed into
``report-<run dir>.tar.gz`` and handed to the backups' store (:func:`backup.configured_store`:
the local backup directory, or S3 when ``MIGRATION_BACKUP_S3_BUCKET`` is set), recorded in
``migration.report_archives``, and the archives are rotated by the backups' policy
(``MIGRATION_BACKUP_KEEP_*``). Reports hold no legacy values, so the archives hold none.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from include.transforms.rotation import BackupEntry, RotationPolicy, backups_to_prune
from migration_ops import backup
from migration_ops.audit.row_validation import ensure_schema
from migration_ops.db import connect


def enabled() -> bool:
    """Whether reports are archived beside the backups (``MIGRATION_REPORTS_ARCHIVE``)."""
    return os.environ.get("MIGRATION_REPORTS_ARCHIVE", "").lower() in ("1", "true", "yes")


def archive(target_dsn: str, run_id: str, out: Path) -> str:
    """Pack ``out`` and store it where the backups go; record it; rotate. Returns its location."""
    packed = backup.work_dir() / f"report-{out.name}.tar.gz"
    with tarfile.open(packed, "w:gz") as tar:
        tar.add(out, arcname=out.name)
    location = backup.configured_store().put(packed, packed.name)
    with connect(target_dsn, application_name="migration:report:archive") as conn:
        ensure_schema(conn)
        conn.execute(
            "insert into migration.report_archives (run_id, location) values (%s, %s)",
            (run_id, location),
        )
    prune(target_dsn)
    return location


def prune(target_dsn: str, policy: RotationPolicy | None = None) -> list[int]:
    """Remove the archives the backups' rotation policy no longer keeps; return their ids."""
    policy = policy or backup.rotation_policy()
    with connect(target_dsn, application_name="migration:report:archive") as conn:
        rows = conn.execute(
            "select archive_id, archived_at, location from migration.report_archives "
            "where pruned_at is null"
        ).fetchall()
    entries = [BackupEntry(int(r[0]), r[1], True) for r in rows]
    pruned = sorted(backups_to_prune(entries, policy))
    locations = {int(r[0]): str(r[2]) for r in rows}
    for archive_id in pruned:
        backup.store_for(locations[archive_id]).remove(locations[archive_id])
        with connect(target_dsn, application_name="migration:report:archive") as conn:
            conn.execute(
                "update migration.report_archives set pruned_at = now() where archive_id = %s",
                (archive_id,),
            )
    return pruned
