-- Fingerprint the legacy ids of an entity's primary table per bucket (deletes, legacy side).
--   in : {legacy} the primary table, %(bits)s bucket width.
--   out: (bucket, rows, fingerprint): bit_xor of each id's 64-bit hash, streamed to staging.
--        present_buckets.sql compares it with the ids the target accounts for; only the
--        differing buckets' ids are streamed (ids only).
-- Idempotent: a read of the snapshot; writes nothing.
select (id::bigint >> %(bits)s) as bucket, count(*) as rows,
       bit_xor(hashint8extended(id::bigint, 0)) as fingerprint
from {legacy}
group by 1
