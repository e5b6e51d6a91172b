-- Mark target rows whose legacy row is gone; unmark rows whose legacy row is back.
--   in : {target} entity table, {key} its legacy-id column, {present} =
--        staging.<entity>__sync_present (id): every primary legacy id in the sync's snapshot;
--        setting migration.snapshot_at (the snapshot's time: when the row was last seen gone).
--   out: (removed, restored) counts. Rows are never deleted: legacy_removed_at says since when
--        legacy no longer has them.
-- Idempotent: only rows whose mark is wrong are written; a rerun changes nothing.
with removed as (
    update {target} as t
    set legacy_removed_at = current_setting('migration.snapshot_at')::timestamptz
    where t.{key} is not null
        and t.legacy_removed_at is null
        and not exists (select 1 from {present} as p where p.id = t.{key})
    returning 1
),

restored as (
    update {target} as t
    set legacy_removed_at = null
    where t.legacy_removed_at is not null
        and exists (select 1 from {present} as p where p.id = t.{key})
    returning 1
)

select (select count(*) from removed), (select count(*) from restored)
