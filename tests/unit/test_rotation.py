"""Unit and property tests of the backup rotation policy (no database, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.transforms.rotation import (
    BackupEntry,
    RotationPolicy,
    backups_to_keep,
    backups_to_prune,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


def entry(backup_id: int, hours: float, *, verified: bool = True) -> BackupEntry:
    return BackupEntry(backup_id, START + timedelta(hours=hours), verified)


entries_strategy = st.lists(
    st.tuples(st.integers(0, 24 * 400), st.booleans()), min_size=0, max_size=60
).map(lambda rows: [entry(i, h, verified=v) for i, (h, v) in enumerate(rows)])
policies = st.builds(
    RotationPolicy, daily=st.integers(0, 10), weekly=st.integers(0, 6), monthly=st.integers(0, 8)
)


def newest_verified(entries: list[BackupEntry]) -> BackupEntry | None:
    verified = [e for e in entries if e.verified]
    return max(verified, key=lambda e: (e.taken_at, e.backup_id)) if verified else None


@given(entries_strategy, policies)
def test_never_prunes_the_newest_verified_backup(entries, policy) -> None:
    newest = newest_verified(entries)
    pruned = backups_to_prune(entries, policy)
    if newest is not None:
        assert newest.backup_id not in pruned


@given(entries_strategy, policies)
def test_prunes_every_failed_backup_and_only_known_ids(entries, policy) -> None:
    pruned = backups_to_prune(entries, policy)
    assert pruned <= {e.backup_id for e in entries}
    assert {e.backup_id for e in entries if not e.verified} <= pruned


@given(entries_strategy, policies)
def test_keeps_the_newest_backup_of_each_recent_day(entries, policy) -> None:
    kept = backups_to_keep(entries, policy)
    verified = sorted(
        (e for e in entries if e.verified), key=lambda e: (e.taken_at, e.backup_id), reverse=True
    )
    newest_per_day: dict[object, int] = {}
    for e in verified:
        newest_per_day.setdefault(e.taken_at.date(), e.backup_id)
    recent_days = sorted(newest_per_day, reverse=True)[: policy.daily]
    for day in recent_days:
        assert newest_per_day[day] in kept
    # Kept ones number at most one per bucket kind plus the newest.
    assert len(kept) <= policy.daily + policy.weekly + policy.monthly + 1


@given(entries_strategy, policies, st.data())
def test_pinned_verified_backups_are_never_pruned(entries, policy, data) -> None:
    pinned = (
        data.draw(st.sets(st.sampled_from([e.backup_id for e in entries]))) if entries else set()
    )
    pruned = backups_to_prune(entries, policy, pinned)
    for e in entries:
        if e.backup_id in pinned and e.verified:
            assert e.backup_id not in pruned


@given(entries_strategy, policies)
def test_rotation_is_idempotent(entries, policy) -> None:
    pruned = backups_to_prune(entries, policy)
    remaining = [e for e in entries if e.backup_id not in pruned]
    assert backups_to_prune(remaining, policy) == set()


def test_grandfather_father_son_example() -> None:
    # One verified backup every 12 hours for 100 days: 200 backups.
    entries = [entry(i, 12 * i) for i in range(200)]
    kept = backups_to_keep(entries, RotationPolicy(daily=3, weekly=2, monthly=2))
    last = entries[-1]
    days = {e.taken_at.date() for e in entries if e.backup_id in kept}
    assert last.backup_id in kept
    # 3 days, plus the newest of the previous ISO week and of the previous month.
    assert len(kept) == 5, sorted(days)
    assert {e.backup_id for e in entries[-6:] if e.taken_at.hour == 12} <= kept


def test_zero_policy_keeps_only_the_newest_verified() -> None:
    entries = [entry(1, 0), entry(2, 30), entry(3, 60, verified=False)]
    assert backups_to_prune(entries, RotationPolicy(0, 0, 0)) == {1, 3}


def test_negative_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="zero or positive"):
        RotationPolicy(daily=-1)
