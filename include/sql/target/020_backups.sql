-- 020_backups.sql
-- purpose: the backup manifest (migration.backups) and the 'rolled_back' run status that
--          rollbacks write, so the gate refuses later phases until the phase validates again.
-- needs: 010_migration_schema.sql (schema migration, table migration.runs).
-- applied: by every backup before it dumps (a backup may run before any phase did) and at the
--          start of every phase run (phase 1's schema_sql).
-- idempotent: the table is created only when missing, later columns added only when missing;
--             the runs status check is replaced only while it does not yet allow 'rolled_back'. Nothing here deletes a row: pruning a
--             backup removes its file and sets pruned_at, the manifest row stays as evidence.

create table if not exists migration.backups (
    backup_id       bigint generated always as identity primary key,
    database        text        not null check (database in ('target', 'legacy')),
    phase           smallint,
    reason          text        not null,
    status          text        not null default 'running'
        check (status in ('running', 'dumped', 'verified', 'failed', 'pruned')),
    location        text,
    size_bytes      bigint,
    sha256          text,
    row_counts      jsonb       not null default '{}',
    restored_counts jsonb,
    extensions      jsonb       not null default '[]',
    server_version  integer,
    pg_dump_version text,
    snapshot_at     timestamptz,
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    verified_at     timestamptz,
    pruned_at       timestamptz,
    error           text,
    triggered_by    text,
    constraint backups_verified_has_file
        check (status <> 'verified' or (location is not null and sha256 is not null and verified_at is not null))
);
-- what a test restore left out because the connecting role may not create it (a non-superuser
-- on supabase): extensions it may not create, other roles' default privileges.
alter table migration.backups
    add column if not exists verification_skipped jsonb not null default '{}';
-- reuse of a verified backup by a pre-phase backup when public was not written since it
-- (migration_ops.backup.reuse_unchanged): the xid horizon of the snapshot a backup (or a reuse
-- check) saw, the md5 of public's schema dump in that snapshot, and which backup's file a
-- reusing row stands for.
alter table migration.backups
    add column if not exists xid_horizon xid8,
    add column if not exists public_schema_md5 text,
    add column if not exists reused_from bigint references migration.backups (backup_id);
create index if not exists backups_restore_point_idx
    on migration.backups (database, status, snapshot_at desc);

comment on table migration.backups is
    'one row per pg_dump backup: where it is, size, sha256, per-table row counts taken in the '
    'dump''s own snapshot, and whether a test restore reproduced them (verified_at).';
comment on column migration.backups.phase is 'phase about to run when the backup was taken (null: scheduled or manual).';
comment on column migration.backups.row_counts is
    '{"schema.table": rows} counted inside the snapshot pg_dump used (--snapshot).';
comment on column migration.backups.restored_counts is
    'the same counts read back from the scratch database the dump was restored into.';
comment on column migration.backups.extensions is
    'extensions of the dumped database ([{"name", "schema"}]): pg_dump --schema leaves them out, '
    'so a test restore creates them first.';
comment on column migration.backups.verification_skipped is
    'what the test restore could not create as the connecting role and left out '
    '({"extensions": [...], "default_privileges": ["<role> <kind>", ...]}); empty: nothing.';
comment on column migration.backups.snapshot_at is 'transaction time of the dump''s snapshot: the state it holds.';
comment on column migration.backups.xid_horizon is
    'pg_snapshot_xmin of the snapshot the dump (or the reuse check) read: every row written by a '
    'transaction from this xid on is newer than that snapshot.';
comment on column migration.backups.public_schema_md5 is
    'md5 of pg_dump --schema-only --schema=public in that snapshot (its \restrict lines left out).';
comment on column migration.backups.reused_from is
    'set: no new dump was taken; public was proven unchanged since the backup named here (same '
    'schema, same row counts, no row written since its xid horizon) and this row stands for its '
    'file, as of snapshot_at. The file''s migration schema is the one of the backup named here.';
comment on column migration.backups.error is 'why the backup failed: tool and rule, never a data value.';

-- rollbacks mark the runs they undid; the gate then sees 'rolled_back', not 'validated'.
do $$
begin
    if not exists (
        select 1
        from pg_constraint
        where conrelid = 'migration.runs'::regclass
          and conname = 'runs_status_check'
          and pg_get_constraintdef(oid) like '%rolled_back%'
    ) then
        alter table migration.runs drop constraint if exists runs_status_check;
        alter table migration.runs add constraint runs_status_check
            check (status in ('running', 'validated', 'failed', 'rolled_back'));
    end if;
end
$$;
