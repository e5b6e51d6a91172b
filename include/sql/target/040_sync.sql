-- 040_sync.sql
-- purpose: the nightly sync's memory of legacy, in the migration schema (ids and hashes only):
--   * migration.sync_cursors: per entity and source table, the updated_at cursor and the id
--     high-water mark the last sync committed;
--   * migration.sync_row_hashes: per entity, source table and legacy id, the 64-bit typed hash
--     (hash_record_extended) of the copied columns as last loaded, and the entity rows
--     (primary ids) that row belongs to, so a row deleted from a child table still re-derives
--     its entity row. Their bit_xor per bucket of ids is what a sync compares first;
--   * migration.checkpoints.removed_rows: rows marked legacy_removed_at by a sync.
-- needs: 010_migration_schema.sql.
-- applied: at the start of every sync run (the sync phase's schema_sql).
-- idempotent: created only when missing; the sync's load advances the rows in the same
--             transaction as the data they describe, so they never run ahead of the target.

create table if not exists migration.sync_cursors (
    entity        text        not null,
    source_table  text        not null,
    cursor_at     timestamptz,
    high_water_id bigint,
    run_id        text        not null,
    updated_at    timestamptz not null default now(),
    primary key (entity, source_table)
);
comment on table migration.sync_cursors is
    'Nightly sync cursors per entity and legacy table: updated_at cursor and id high-water mark.';

create table if not exists migration.sync_row_hashes (
    entity       text     not null,
    source_table text     not null,
    legacy_id    bigint   not null,
    row_hash     bigint   not null,
    primary_ids  bigint[] not null,
    primary key (entity, source_table, legacy_id)
);
comment on table migration.sync_row_hashes is
    'Typed 64-bit hash of each legacy row''s copied columns as last synced (content change detection); no values.';

-- The first syncs kept md5 text: such hashes can never match the typed ones, so they are
-- forgotten (the next sync reads those tables whole once and stores the new hashes).
do $$
begin
    if exists (
        select 1 from pg_catalog.pg_attribute
        where attrelid = 'migration.sync_row_hashes'::regclass and attname = 'row_hash'
            and atttypid = 'text'::regtype
    ) then
        truncate migration.sync_row_hashes;
        alter table migration.sync_row_hashes alter column row_hash type bigint using null;
    end if;
end
$$;

alter table migration.checkpoints add column if not exists removed_rows bigint not null default 0;
