-- The rows of the buckets whose fingerprint differs: (table, id, typed hash, entity rows).
--   in : {legacy} the legacy table, {hashed} as in legacy_row_buckets.sql, {primary_ids} the
--        array of entity rows (primary legacy ids) a row belongs to, %(table)s its name,
--        %(bits)s bucket width, %(buckets)s the differing buckets.
--   out: one line per row of those buckets, streamed into staging.<entity>__sync_hashes.
-- Idempotent: a read of the snapshot; writes nothing. No value leaves legacy: ids and hashes.
select %(table)s, id, hash_record_extended(row({hashed}), 0), {primary_ids}
from {legacy}
where (id::bigint >> %(bits)s) = any(%(buckets)s)
