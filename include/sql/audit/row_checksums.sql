-- Fingerprint each side of the row-level comparison: one scan and one aggregate per side, no
-- temporary table, no join (pt-table-checksum style: checksum first, drill down on a difference).
--   in : the names of row_hashes.sql: {legacy} with {legacy_filter} (exactly the rows rv_legacy
--        would hold), {target} with {target_filter} (exactly the rows rv_target would hold,
--        the sync's scope included), {key}, {legacy_columns}, {target_columns} (the mapped
--        columns, the key among them, hashed exactly as row_hashes.sql hashes them).
--   out: one row per statement: (rows, bit_xor of the rows' 64-bit hashes); the legacy side
--        first, then the target side. Counts and hashes only, never a value.
-- Idempotent: two read-only queries.
-- Equal counts and equal fingerprints prove equal sets of (key, row) when the target's key is
-- unique (the caller checks for a unique index, else it goes row by row): XOR is
-- order-independent, and a row can cancel only against an identical row, which a unique key
-- rules out on the target side; on the staged side a duplicated row cancelling itself leaves
-- the staged count above the target's, and a duplicated key with different rows can never
-- equal a target without duplicates. A 64-bit fingerprint reports "equal" for different data
-- by chance about once in 1.8e19 comparisons (2^64), the odds today's per-row hashes
-- already accept for one changed row; any difference runs the full comparison
-- (row_hashes.sql, row_counts.sql, row_findings.sql), which names every row and column.
select count(*), bit_xor(hash_record_extended(row({legacy_columns}), 0))
from {legacy} as s
where s.{key} is not null {legacy_filter};

select count(*), bit_xor(hash_record_extended(row({target_columns}), 0))
from {target} as t
where t.{key} is not null {target_filter};
