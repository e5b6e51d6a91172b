-- Buckets whose legacy fingerprint differs from the hashes the last sync stored.
--   in : {buckets} = staging.<entity>__sync_buckets (source_table, bucket, rows, fingerprint)
--        as legacy_row_buckets.sql streamed them; migration.sync_row_hashes;
--        %(entity)s, %(table)s, %(bits)s.
--   out: the differing buckets (new, changed, emptied) into {differing} (source_table, bucket).
-- Idempotent: reads state, writes only the entity's unlogged staging of this run.
insert into {differing} (source_table, bucket)
select %(table)s, coalesce(l.bucket, o.bucket)
from (select bucket, rows, fingerprint from {buckets} where source_table = %(table)s) as l
full join (
    select legacy_id >> %(bits)s as bucket, count(*) as rows, bit_xor(row_hash) as fingerprint
    from migration.sync_row_hashes
    where entity = %(entity)s and source_table = %(table)s
    group by 1
) as o on o.bucket = l.bucket
where l.rows is distinct from o.rows or l.fingerprint is distinct from o.fingerprint
