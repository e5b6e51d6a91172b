-- The `migration` schema: the audit trail of every run, read by auditors and by the gates.
--   in : nothing (DDL only); applied by the first phase run and every backup, again only when
--        its text changed (see schema_fingerprints below).
--   out: runs, checkpoints, quarantine, validation_results, reconciliation, audit_log,
--        schema_fingerprints.
-- Idempotent: every object is created only when missing; nothing is ever dropped here, and
-- a rollback never deletes from these tables (history is evidence), except
-- schema_fingerprints, which only saves work.

create schema if not exists migration;
create schema if not exists staging;

-- One row per phase DAG run. `as_of` is the run's reference time (set once, at the start),
-- used by rules that compare with "now" so a rerun of the same run decides the same way.
create table if not exists migration.runs (
    run_id       text primary key,
    phase        smallint    not null,
    dag_id       text        not null,
    status       text        not null default 'running'
        check (status in ('running', 'validated', 'failed')),
    as_of        timestamptz not null default now(),
    started_at   timestamptz not null default now(),
    finished_at  timestamptz,
    triggered_by text,
    params       jsonb       not null default '{}'
);
create index if not exists runs_phase_started_idx on migration.runs (phase, started_at desc);
comment on table migration.runs is
    'One row per phase run; status = validated only when every entity reconciled and passed its suite.';

-- Per run and entity: how far it got, and the counts each step produced.
create table if not exists migration.checkpoints (
    run_id           text        not null references migration.runs (run_id),
    entity           text        not null,
    phase            smallint    not null,
    stage            text        not null
        check (stage in ('extracted', 'transformed', 'validated', 'loaded', 'reconciled', 'failed')),
    source_rows      bigint,
    transformed_rows bigint,
    quarantined_rows bigint,
    merged_rows      bigint      not null default 0,
    loaded_rows      bigint,
    inserted_rows    bigint,
    updated_rows     bigint,
    unchanged_rows   bigint,
    watermark        jsonb       not null default '{}',
    validation_success boolean,
    updated_at       timestamptz not null default now(),
    primary key (run_id, entity)
);
comment on table migration.checkpoints is
    'Progress and counts per run and entity; a retried task overwrites its own stage, never another run.';

-- Rows that broke a row-level rule. One row per (entity, legacy id, rule): a rerun refreshes
-- last_run_id instead of adding a duplicate; a row that later passes gets resolved_at.
-- `detail` names the rule and column, never the offending value (no PHI).
create table if not exists migration.quarantine (
    quarantine_id   bigint generated always as identity primary key,
    entity          text        not null,
    legacy_id       bigint      not null,
    rule            text        not null,
    detail          text        not null,
    first_run_id    text        not null,
    last_run_id     text        not null,
    first_seen_at   timestamptz not null default now(),
    last_seen_at    timestamptz not null default now(),
    resolved_at     timestamptz,
    resolved_run_id text,
    unique (entity, legacy_id, rule)
);
create index if not exists quarantine_last_run_idx on migration.quarantine (last_run_id, entity);
comment on table migration.quarantine is
    'Legacy rows held back, with the rule they broke; ids and rule names only, no values.';

-- Row-local verdicts of the suite (issue 15/20): a row-local expectation's verdict is a function
-- of the row's transformed content and the suite, so a held-back row that comes back unchanged
-- (same hash, same suite) keeps its verdict without Great Expectations. A cache, not evidence:
-- migration.quarantine is the history. Hashes and rule names only, never values.
create table if not exists migration.row_verdicts (
    entity        text        not null,
    legacy_id     bigint      not null,
    suite_sha256  text        not null,
    row_hash      bigint      not null,
    rules         text[]      not null,
    details       text[]      not null,
    judged_run_id text        not null,
    judged_at     timestamptz not null default now(),
    primary key (entity, legacy_id)
);
comment on table migration.row_verdicts is
    'row-local suite failures of held-back rows by (suite sha256, 64-bit hash of the transformed row): carried over while both are unchanged.';

-- Great Expectations outcome per run, entity and pass ("transformed": all rows before
-- quarantine; "validated": the rows that will load). Results are reduced to counts.
create table if not exists migration.validation_results (
    run_id      text        not null references migration.runs (run_id),
    entity      text        not null,
    pass        text        not null check (pass in ('transformed', 'validated')),
    suite       text        not null,
    success     boolean     not null,
    evaluated   integer     not null,
    failed      integer     not null,
    results     jsonb       not null,
    recorded_at timestamptz not null default now(),
    primary key (run_id, entity, pass)
);
comment on table migration.validation_results is
    'GX suite results per run/entity/pass: expectation, column, rule, success, unexpected counts.';
-- Which rows a pass judged (issue 20): every transformed row on a first load or after the
-- suite changed (its sha256 differs from the last successful pass), else the changed ones.
alter table migration.validation_results
    add column if not exists suite_sha256 text,
    add column if not exists entity_rows bigint,
    add column if not exists judged_rows bigint,
    add column if not exists carried_rows bigint;
comment on column migration.validation_results.judged_rows is
    'rows the row-local expectations judged: entity_rows, or the rows that would change the target.';
comment on column migration.validation_results.carried_rows is
    'held-back rows that came back unchanged and kept their recorded verdict (migration.row_verdicts).';

-- The auditor's invariant, enforced by the database itself.
create table if not exists migration.reconciliation (
    run_id           text        not null references migration.runs (run_id),
    phase            smallint    not null,
    entity           text        not null,
    source_rows      bigint      not null,
    loaded_rows      bigint      not null,
    merged_rows      bigint      not null,
    quarantined_rows bigint      not null,
    recorded_at      timestamptz not null default now(),
    primary key (run_id, entity),
    constraint reconciliation_balances
        check (source_rows = loaded_rows + merged_rows + quarantined_rows)
);
comment on table migration.reconciliation is
    'Per run and entity: source = loaded + merged + quarantined, always (checked by constraint).';

-- Who triggered what, when, with which parameters.
create table if not exists migration.audit_log (
    audit_id bigint generated always as identity primary key,
    at       timestamptz not null default now(),
    actor    text        not null,
    action   text        not null,
    phase    smallint,
    run_id   text,
    params   jsonb       not null default '{}'
);
comment on table migration.audit_log is 'Append-only log of migration actions (runs, rollbacks, restores).';

-- Which DDL files were applied, as the exact text's sha256, so an unchanged file is not run
-- again on every phase run (migration_ops.schema). catalog_state is an md5 over the objects
-- of public and migration (schema/catalog_state.sql) after the last application: when the
-- catalog no longer matches it (a table dropped, a restore), every file is applied again.
-- Rollbacks empty this table; deleting its rows is always safe (the files are idempotent).
create table if not exists migration.schema_fingerprints (
    file          text        primary key,
    sha256        text        not null,
    catalog_state text        not null,
    applied_at    timestamptz not null default now()
);
comment on table migration.schema_fingerprints is
    'DDL file (path under include/sql) -> sha256 of the text applied and the catalog state after; '
    'a file runs again when either differs.';

-- When each pipeline step of a run started and ended, per entity (entity '' for the phase's
-- extract): the report's time chart. Recorded by the step itself (migration_ops.step_timings),
-- so steps of entities that run in parallel each keep their own wall-clock span. A retried
-- step overwrites its own row.
create table if not exists migration.step_timings (
    run_id      text        not null references migration.runs (run_id) on delete cascade,
    entity      text        not null,
    step        text        not null,
    started_at  timestamptz not null,
    finished_at timestamptz not null,
    succeeded   boolean     not null,
    primary key (run_id, entity, step),
    constraint step_timings_ordered check (finished_at >= started_at)
);
comment on table migration.step_timings is
    'Per run, entity and step: wall-clock start and end as the step recorded them. No values.';
