-- Hash every compared row on both sides: legacy (through the transform) and target.
--   in : {legacy} staged rows in target shape (__validated after a load; __transformed in
--        verify_target, minus the rows held in quarantine: {legacy_filter}), {target} table,
--        {key} legacy-id column, {legacy_columns} the mapped columns cast to the target's
--        types, {target_columns} the same columns of the target, {universe} every legacy id
--        of the entity in the snapshot (the transformed rows), {target_filter} which target
--        rows are in scope (not marked legacy_removed_at; after a sync, only its delta).
--   out: temporary tables rv_legacy, rv_target, rv_universe (legacy id, md5): ids and hashes,
--        never values; dropped at commit.
-- Idempotent: temporary tables of the caller's transaction; nothing persistent is written.
-- Casting the legacy side to the target's types makes both texts equal exactly when the
-- values the upsert would write equal the values the target holds.
create temporary table rv_legacy on commit drop as
select s.{key}::bigint as legacy_id, md5(row({legacy_columns})::text) as h
from {legacy} as s
where s.{key} is not null {legacy_filter};

create temporary table rv_target on commit drop as
select t.{key}::bigint as legacy_id, md5(row({target_columns})::text) as h
from {target} as t
where t.{key} is not null {target_filter};

create temporary table rv_universe on commit drop as
select distinct u.{key}::bigint as legacy_id
from {universe} as u
where u.{key} is not null;

create index on rv_legacy (legacy_id);
create index on rv_target (legacy_id);
create index on rv_universe (legacy_id);
analyze rv_legacy;
analyze rv_target;
analyze rv_universe;
