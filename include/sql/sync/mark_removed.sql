-- Mark target rows whose legacy row is gone; unmark rows whose legacy row is back.
--   in : {target} entity table, {key} its legacy-id column, {checked} =
--        staging.<entity>__sync_checked (bucket): the id buckets whose legacy ids differ from
--        what the target accounts for (present_buckets.sql), {present} =
--        staging.<entity>__sync_present (id): every primary legacy id of those buckets in the
--        sync's snapshot; %(bits)s bucket width; setting migration.snapshot_at (the snapshot's
--        time: when the row was last seen gone).
--   out: (removed, restored) counts. Rows are never deleted: legacy_removed_at says since when
--        legacy no longer has them. Buckets outside {checked} hold the same ids on both sides.
-- Both lookups go through the key's unique index, one range or one id at a time (the
-- lateral subqueries, fenced by offset 0, keep the planner from joining the whole table: a
-- million-row table took 3 s where its few checked buckets take milliseconds).
-- Idempotent: only rows whose mark is wrong are written; a rerun changes nothing.
with gone as (
    select hit.id
    from {checked} as c
    cross join lateral (
        select t.{key}::bigint as id
        from {target} as t
        where t.{key} >= c.bucket << %(bits)s
            and t.{key} < (c.bucket + 1) << %(bits)s
            and t.legacy_removed_at is null
        offset 0
    ) as hit
    where not exists (select 1 from {present} as p where p.id = hit.id)
),

back as (
    select p.id
    from {present} as p
    cross join lateral (
        select 1
        from {target} as t
        where t.{key} = p.id and t.legacy_removed_at is not null
        offset 0
    ) as marked
),

removed as (
    update {target} as t
    set legacy_removed_at = current_setting('migration.snapshot_at')::timestamptz
    where t.{key} = any(array(select id from gone))
    returning 1
),

restored as (
    update {target} as t
    set legacy_removed_at = null
    where t.{key} = any(array(select id from back))
    returning 1
)

select (select count(*) from removed), (select count(*) from restored)
