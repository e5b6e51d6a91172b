-- Hash every compared row on both sides: legacy (through the transform) and target. Runs only
-- when the two sides' fingerprints (row_checksums.sql) differ, to name the rows that do.
--   in : {legacy} staged rows in target shape (__validated after a load; __transformed in
--        verify_target, minus the rows held in quarantine: {legacy_filter}), {target} table,
--        {key} legacy-id column, {legacy_columns} the mapped columns cast to the target's
--        types, {target_columns} the same columns of the target, {universe} every legacy id
--        of the entity in the snapshot (the transformed rows), {target_filter} which target
--        rows are in scope (not marked legacy_removed_at; after a sync, only its delta).
--        The column lists end with the keys the load resolves after its upsert, each as the
--        legacy id it points at (resolved_key.sql), hashed like any mapped column.
--   out: temporary tables rv_legacy, rv_target, rv_universe (legacy id, hash): ids and hashes,
--        never values; dropped at commit.
-- Idempotent: temporary tables of the caller's transaction; nothing persistent is written.
-- Casting the legacy side to the target's types makes both hashes equal when the values the
-- upsert would write equal the values the target holds: hash_record_extended hashes each typed
-- value with its type's own hash (equal values, equal hashes; 64 bits, so two different rows
-- share one by chance about once in 1.8e19), 4x cheaper than md5 of the row's text.
create temporary table rv_legacy on commit drop as
select s.{key}::bigint as legacy_id, hash_record_extended(row({legacy_columns}), 0) as h
from {legacy} as s
where s.{key} is not null {legacy_filter};

create temporary table rv_target on commit drop as
select t.{key}::bigint as legacy_id, hash_record_extended(row({target_columns}), 0) as h
from {target} as t
where t.{key} is not null {target_filter};

create temporary table rv_universe on commit drop as
select distinct u.{key}::bigint as legacy_id
from {universe} as u
where u.{key} is not null;

-- no indexes: row_counts.sql joins the three whole tables (hash joins); statistics suffice.
analyze rv_legacy;
analyze rv_target;
analyze rv_universe;
