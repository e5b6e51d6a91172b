-- 030_run_integrity.sql
-- purpose: what makes a run trustworthy on a live legacy database and after a kill:
--   * migration.runs.snapshot_at / legacy_snapshot: the one legacy snapshot every entity of
--     the run read (its time, and its txid snapshot for the nightly sync's look-back);
--   * migration.runs.owner / heartbeat_at / status_reason: which process drives a running run
--     and when it last did something, so the next run can tell a dead run from a live one;
--   * migration.runs.published_at: when a validated run's Asset was emitted (or at once for a
--     run driven without Airflow); a validated run without it whose process is gone was
--     killed before its Asset, and the next run or gate demotes it to failed;
--   * migration.staged_entities: which run the staging tables of an entity belong to. Every
--     step after extract checks it, so a cleared task of an old run never loads what a newer
--     run staged.
-- needs: 010_migration_schema.sql (migration.runs).
-- applied: at the start of every phase run (phase 1's schema_sql) and by every backup.
-- idempotent: columns and tables are added only when missing; nothing is dropped or rewritten
--   (published_at is backfilled for validated runs once, in the statement that adds it).

alter table migration.runs
    add column if not exists snapshot_at timestamptz,
    add column if not exists legacy_snapshot text,
    add column if not exists owner text,
    add column if not exists heartbeat_at timestamptz,
    add column if not exists status_reason text;

-- Runs validated before published_at existed were published by the publish of their day
-- (status first, Asset right after): they keep counting. Only when the column is new.
do $$
begin
    if not exists (
        select 1 from information_schema.columns
        where table_schema = 'migration' and table_name = 'runs' and column_name = 'published_at'
    ) then
        alter table migration.runs add column published_at timestamptz;
        update migration.runs set published_at = finished_at where status = 'validated';
    end if;
end
$$;

comment on column migration.runs.snapshot_at is
    'time of the legacy snapshot every entity of the run was extracted from (statement start).';
comment on column migration.runs.legacy_snapshot is
    'pg_current_snapshot() of that legacy snapshot (xmin:xmax:xip), for incremental look-back.';
comment on column migration.runs.owner is
    'host:pid of the process that last worked on the run; used to recognise a dead run.';
comment on column migration.runs.status_reason is
    'why a run ended as it did when that is not its own doing (e.g. abandoned by a dead process).';
comment on column migration.runs.published_at is
    'when the validated run was published: its Asset event recorded by Airflow (publish''s '
    'success callback), or at once for a run driven without Airflow. Null on a validated run '
    'whose process is gone: killed before its Asset; demoted to failed by the next run or gate.';

create table if not exists migration.staged_entities (
    entity      text primary key,
    run_id      text        not null references migration.runs (run_id),
    snapshot_at timestamptz,
    staged_at   timestamptz not null default now()
);
comment on table migration.staged_entities is
    'Owner run of each entity''s staging tables; ids only. A row disappears with the tables.';
