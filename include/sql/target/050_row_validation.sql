-- 050_row_validation.sql
-- purpose: the row-level proof legacy ↔ target (issue 18, decision 0010):
--   * migration.row_validation: per run (a phase run, or a verify_target run) and entity, how
--     many legacy rows were compared with the target, how they came out, and by which method;
--   * migration.row_findings: the rows that did not match, by legacy id and column name only
--     (kind 'mismatch' names the column, 'missing' and 'unexpected' the row). Never a value.
-- needs: 010_migration_schema.sql (the migration schema).
-- applied: by row validation before it records when its newest column (row_validation.method)
--   is missing (migration_ops.audit.row_validation._schema_current: a new column here must
--   move that check to it), and by verify_target, the sign-off and the archive.
-- idempotent: objects are created only when missing; a rerun of one (run, entity) replaces its
--   own rows in the caller's transaction (delete + insert), never another run's.

create table if not exists migration.row_validation (
    run_id        text        not null,
    entity        text        not null,
    phase         smallint    not null,
    mode          text        not null check (mode in ('after_load', 'verify_target')),
    compared_rows bigint      not null,
    matched_rows  bigint      not null,
    mismatched_rows bigint    not null,
    missing_rows  bigint      not null,
    unexpected_rows bigint    not null,
    snapshot_at   timestamptz,
    seconds       numeric     not null default 0,
    recorded_at   timestamptz not null default now(),
    primary key (run_id, entity),
    constraint row_validation_balances
        check (compared_rows = matched_rows + mismatched_rows + missing_rows)
);
comment on table migration.row_validation is
    'Row-level comparison legacy (through the transform) vs target per run/entity; counts only.';

-- Which path proved it: 'checksum' (both sides' count and XOR of row hashes agreed, so every
-- row matched; audit/row_checksums.sql) or 'row_by_row' (they differed, or the target's key is
-- not unique: every row's hash joined by legacy id, findings by id and column). Rows recorded
-- before the column existed were all row by row.
alter table migration.row_validation
    add column if not exists method text not null default 'row_by_row'
        check (method in ('checksum', 'row_by_row'));

create table if not exists migration.row_findings (
    run_id      text   not null,
    entity      text   not null,
    legacy_id   bigint not null,
    kind        text   not null check (kind in ('mismatch', 'missing', 'unexpected')),
    column_name text   not null default '',
    primary key (run_id, entity, legacy_id, kind, column_name)
);
comment on table migration.row_findings is
    'Rows that failed the row-level comparison: legacy id, kind and column name; no values.';

-- Report archives: each run's report directory as a tar.gz where the backups are (local
-- directory or S3), pruned by the backups' rotation policy (migration_ops.audit.archive).
create table if not exists migration.report_archives (
    archive_id  bigint generated always as identity primary key,
    run_id      text        not null,
    location    text        not null,
    archived_at timestamptz not null default now(),
    pruned_at   timestamptz
);
comment on table migration.report_archives is
    'Where each run''s report archive is kept (beside the backups); pruned_at once rotated out.';
