-- Mark target rows whose legacy row is gone; unmark rows whose legacy row is back.
--   in : {target} entity table, {key} its legacy-id column, {checked} =
--        staging.<entity>__sync_checked (bucket): the id buckets whose legacy ids differ from
--        what the target accounts for (present_buckets.sql), {present} =
--        staging.<entity>__sync_present (id): every primary legacy id of those buckets in the
--        sync's snapshot; %(bits)s bucket width; setting migration.snapshot_at (the snapshot's
--        time: when the row was last seen gone).
--   out: (removed, restored) counts. Rows are never deleted: legacy_removed_at says since when
--        legacy no longer has them. Buckets outside {checked} hold the same ids on both sides.
-- Idempotent: only rows whose mark is wrong are written; a rerun changes nothing.
with removed as (
    update {target} as t
    set legacy_removed_at = current_setting('migration.snapshot_at')::timestamptz
    from {checked} as c
    where t.{key} >= c.bucket << %(bits)s
        and t.{key} < (c.bucket + 1) << %(bits)s
        and t.legacy_removed_at is null
        and not exists (select 1 from {present} as p where p.id = t.{key})
    returning 1
),

restored as (
    update {target} as t
    set legacy_removed_at = null
    from {present} as p
    where p.id = t.{key} and t.legacy_removed_at is not null
    returning 1
)

select (select count(*) from removed), (select count(*) from restored)
