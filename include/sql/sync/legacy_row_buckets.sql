-- Fingerprint a legacy table's rows per bucket of ids, inside the sync's snapshot (legacy side).
--   in : {legacy} the legacy table, {hashed} its copied columns and the array of entity rows
--        each row belongs to, %(bits)s bucket width (ids id >> bits share a bucket).
--   out: (bucket, rows, fingerprint): bit_xor of each row's 64-bit typed hash. Streamed to
--        staging; only buckets whose fingerprint differs from the stored one are read row by
--        row. The per-row hash is the one row_hashes of the differing buckets stream
--        (legacy_row_hashes.sql) and migration.sync_row_hashes keeps.
-- Idempotent: a read of the snapshot; writes nothing. Typed-value hashing does not depend on
-- the session's time zone or date style (a row's text form does).
select (id::bigint >> %(bits)s) as bucket, count(*) as rows,
       bit_xor(hash_record_extended(row({hashed}), 0)) as fingerprint
from {legacy}
group by 1
