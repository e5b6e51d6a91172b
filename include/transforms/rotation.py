"""Backup rotation: which backups to prune under a daily / weekly / monthly retention policy.

Grandfather-father-son over *verified* backups: the newest backup of each of the ``daily``
most recent days that have one is kept, likewise for the ``weekly`` most recent ISO weeks
and the ``monthly`` most recent months. On top of that the newest verified backup is
always kept (a rotation must never leave the migration without a proven restore point)
and so is every *pinned* backup (the restore points rollback's ``restore`` mode would use).
Backups that failed verification prove nothing and are always pruned; backups still being
taken or verified are never candidates (the caller leaves them out).

Pure and deterministic: no clock, no database, no storage. Buckets are computed in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class RotationPolicy:
    """How many backups to keep per calendar bucket (0 disables a bucket).

    Attributes:
        daily: newest backup of each of this many most recent days with a backup.
        weekly: newest backup of each of this many most recent ISO weeks with a backup.
        monthly: newest backup of each of this many most recent months with a backup.
    """

    daily: int = 7
    weekly: int = 4
    monthly: int = 6

    def __post_init__(self) -> None:
        if min(self.daily, self.weekly, self.monthly) < 0:
            raise ValueError("rotation counts must be zero or positive")


@dataclass(frozen=True)
class BackupEntry:
    """What rotation needs to know about one backup.

    Attributes:
        backup_id: manifest id.
        taken_at: time of the snapshot the backup holds (timezone-aware).
        verified: whether its test restore succeeded; unverified entries are pruned.
    """

    backup_id: int
    taken_at: datetime
    verified: bool


def _newest_per_bucket(
    newest_first: list[BackupEntry], count: int, bucket: Callable[[datetime], Hashable]
) -> set[int]:
    """Ids of the newest entry in each of the ``count`` most recent buckets."""
    kept: set[int] = set()
    seen: set[Hashable] = set()
    for entry in newest_first:
        if len(seen) >= count:
            break
        key = bucket(entry.taken_at.astimezone(UTC))
        if key not in seen:
            seen.add(key)
            kept.add(entry.backup_id)
    return kept


def backups_to_keep(
    entries: Iterable[BackupEntry], policy: RotationPolicy, pinned: Collection[int] = ()
) -> set[int]:
    """Ids of the verified backups the policy keeps (pinned ones included when verified)."""
    verified = sorted(
        (e for e in entries if e.verified), key=lambda e: (e.taken_at, e.backup_id), reverse=True
    )
    if not verified:
        return set()
    kept = {verified[0].backup_id} | {e.backup_id for e in verified if e.backup_id in pinned}
    kept |= _newest_per_bucket(verified, policy.daily, lambda t: t.date())
    kept |= _newest_per_bucket(verified, policy.weekly, lambda t: t.isocalendar()[:2])
    kept |= _newest_per_bucket(verified, policy.monthly, lambda t: (t.year, t.month))
    return kept


def backups_to_prune(
    entries: Iterable[BackupEntry], policy: RotationPolicy, pinned: Collection[int] = ()
) -> set[int]:
    """Ids of the backups whose files rotation removes.

    Args:
        entries: backups that still have a file (finished: verified or failed).
        policy: how many to keep per bucket.
        pinned: ids never to prune (restore points); a pinned failed backup is still
            pruned, since it cannot be restored anyway.

    Returns:
        Every failed backup, plus every verified backup that no bucket keeps. Never the
        newest verified backup, never a pinned verified one.
    """
    listed = list(entries)
    kept = backups_to_keep(listed, policy, pinned)
    return {e.backup_id for e in listed if e.backup_id not in kept}
