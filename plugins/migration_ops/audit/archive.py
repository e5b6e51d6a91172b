"""Reports kept where the backups are, with the same retention.

When ``MIGRATION_REPORTS_ARCHIVE`` is true, each run's report directory is packed into
``report-<run dir>.tar.gz`` and handed to the backups' store (:func:`backup.configured_store`:
the local backup directory, or S3 when ``MIGRATION_BACKUP_S3_BUCKET`` is set), recorded in
``migration.report_archives``, and the archives are rotated by the backups' policy
(``MIGRATION_BACKUP_KEEP_*``). Each rewrite of the sign-off summary is archived the same way
(``report-signoff-<time>.tar.gz``, run id ``signoff``) together with the latest preflight page:
the preflight itself writes nothing to either database, so its page travels with the next
sign-off. Reports hold no legacy values, so the archives hold none.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

from include.transforms.rotation import BackupEntry, RotationPolicy, backups_to_prune
from migration_ops import backup
from migration_ops.audit.row_validation import ensure_schema
from migration_ops.db import connect


def enabled() -> bool:
    """Whether reports are archived beside the backups (``MIGRATION_REPORTS_ARCHIVE``)."""
    return os.environ.get("MIGRATION_REPORTS_ARCHIVE", "").lower() in ("1", "true", "yes")


def archive(
    target_dsn: str, run_id: str, out: Path, *, name: str = "", also: Sequence[Path] = ()
) -> str:
    """Pack ``out`` (and ``also``) and store it where the backups go; record it; rotate.

    ``name`` (default: ``out``'s) makes the archive's file name unique where ``out`` is
    rewritten in place (the sign-off page). Returns the archive's location.
    """
    packed = backup.work_dir() / f"report-{name or out.name}.tar.gz"
    with tarfile.open(packed, "w:gz") as tar:
        for directory in (out, *also):
            tar.add(directory, arcname=directory.name)
    location = backup.configured_store().put(packed, packed.name)
    ensure_schema(target_dsn)
    with connect(target_dsn, application_name="migration:report:archive") as conn:
        conn.execute(
            "insert into migration.report_archives (run_id, location) values (%s, %s)",
            (run_id, location),
        )
    prune(target_dsn)
    return location


#: ``migration.report_archives.run_id`` of the sign-off summary's archives.
SIGNOFF = "signoff"


def prune(target_dsn: str, policy: RotationPolicy | None = None) -> list[int]:
    """Remove the archives the backups' rotation policy no longer keeps; return their ids.

    The sign-off's archives and the runs' reports are rotated as two series: a sign-off
    rewritten after a run must not push that run's report out of the same day's slot.
    """
    policy = policy or backup.rotation_policy()
    with connect(target_dsn, application_name="migration:report:archive") as conn:
        rows = conn.execute(
            "select archive_id, archived_at, location, run_id = %s "
            "from migration.report_archives where pruned_at is null",
            (SIGNOFF,),
        ).fetchall()
    pruned = sorted(
        archive_id
        for series in (True, False)
        for archive_id in backups_to_prune(
            [BackupEntry(int(r[0]), r[1], True) for r in rows if r[3] is series], policy
        )
    )
    locations = {int(r[0]): str(r[2]) for r in rows}
    for archive_id in pruned:
        backup.store_for(locations[archive_id]).remove(locations[archive_id])
        with connect(target_dsn, application_name="migration:report:archive") as conn:
            conn.execute(
                "update migration.report_archives set pruned_at = now() where archive_id = %s",
                (archive_id,),
            )
    return pruned
