-- Advance one entity's sync state in the load's transaction.
--   in : {cursors} = staging.<entity>__sync_cursors (source_table, cursor_at, high_water_id),
--        {hashes} = staging.<entity>__sync_hashes (source_table, legacy_id, row_hash,
--        primary_ids): every row, in this snapshot, of the id buckets of the entity's
--        content-detected tables whose fingerprint differed ({differing}: source_table,
--        bucket); settings migration.entity, migration.run_id, migration.bucket_bits.
--   out: migration.sync_cursors and migration.sync_row_hashes describe exactly what loaded.
-- Idempotent: upserts keyed by (entity, source_table[, legacy_id]); only changed hashes are
-- written (anti-join), rows gone from legacy are deleted (within the differing buckets: the
-- others hold the same rows on both sides); a retried load writes the same state.
insert into migration.sync_cursors as c
    (entity, source_table, cursor_at, high_water_id, run_id)
select current_setting('migration.entity'), s.source_table, s.cursor_at, s.high_water_id,
       current_setting('migration.run_id')
from {cursors} as s
on conflict (entity, source_table) do update set
    cursor_at = excluded.cursor_at, high_water_id = excluded.high_water_id,
    run_id = excluded.run_id, updated_at = now();

insert into migration.sync_row_hashes as h
    (entity, source_table, legacy_id, row_hash, primary_ids)
select current_setting('migration.entity'), s.source_table, s.legacy_id, s.row_hash, s.primary_ids
from {hashes} as s
where not exists (
    select 1 from migration.sync_row_hashes as o
    where o.entity = current_setting('migration.entity') and o.source_table = s.source_table
        and o.legacy_id = s.legacy_id and o.row_hash = s.row_hash
)
on conflict (entity, source_table, legacy_id) do update set
    row_hash = excluded.row_hash, primary_ids = excluded.primary_ids;

-- the stored rows of the differing buckets that legacy no longer has, found one index range
-- per bucket (a join on legacy_id >> bits would read every stored hash of the entity)
delete from migration.sync_row_hashes as o
where o.ctid = any(array(
    select stored.ctid
    from {differing} as d
    cross join lateral (
        select h.ctid, h.legacy_id
        from migration.sync_row_hashes as h
        where h.entity = current_setting('migration.entity')
            and h.source_table = d.source_table
            and h.legacy_id >= d.bucket << current_setting('migration.bucket_bits')::int
            and h.legacy_id < (d.bucket + 1) << current_setting('migration.bucket_bits')::int
        offset 0
    ) as stored
    where not exists (
        select 1 from {hashes} as s
        where s.source_table = d.source_table and s.legacy_id = stored.legacy_id
    )
));
