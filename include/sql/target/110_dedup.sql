-- 110_dedup.sql
-- purpose: patient de-duplication, linked not destroyed (docs/dedup.md, decision 0008):
--          public.profiles.merged_into (+ its legacy lineage), the view public.profile_persons,
--          and the migration tables the de-duplication step writes: dedup_members (clusters of
--          a run), dedup_links (linked pairs), dedup_review (the middle band, for a human),
--          dedup_decisions (what reviewers and unlink decided; every later run obeys it),
--          dedup_inputs (the fingerprint of the last computed run's inputs, to reuse its clusters),
--          dedup_models (the linkage model the last full run estimated, which syncs apply).
-- needs: 100_phase1_core.sql (public.profiles), 010_migration_schema.sql.
-- idempotent: columns, tables and indexes "if not exists", constraints guarded, view replaced.
-- no phi: the migration tables hold legacy ids, scores and per-field agreement flags only.

-- ---------------------------------------------------------------- profiles: the link
alter table public.profiles add column if not exists merged_into uuid
    references public.profiles (id) on delete set null;
alter table public.profiles add column if not exists merged_into_legacy_user_id integer;

do $$
begin
    if not exists (
        select 1 from pg_constraint where conname = 'profiles_merged_into_not_self'
    ) then
        alter table public.profiles
            add constraint profiles_merged_into_not_self check (merged_into <> id);
    end if;
end
$$;

create index if not exists profiles_merged_into_idx on public.profiles (merged_into);

comment on column public.profiles.merged_into is
    'survivor of this profile''s duplicate cluster (null: not a linked duplicate). the row, its '
    'legacy ids and every child row stay; read a person through public.profile_persons.';
comment on column public.profiles.merged_into_legacy_user_id is
    'auth_user id of the survivor, as the de-duplication step of the last run chose it (lineage).';

-- 100_phase1_core.sql recomputes the column grants before these columns exist on a first run.
grant select (merged_into, merged_into_legacy_user_id) on public.profiles to authenticated;

-- one row per profile: the person it belongs to (the survivor of its cluster, or itself).
create or replace view public.profile_persons with (security_invoker = true) as
select
    p.id as profile_id,
    coalesce(p.merged_into, p.id) as person_id,
    p.merged_into is not null as is_linked_duplicate
from public.profiles as p;

comment on view public.profile_persons is
    'profile -> person: a linked duplicate reads through its survivor (merged_into); join child '
    'rows (orders, messages) on profile_id to see them under person_id.';
revoke all on public.profile_persons from anon;
grant select on public.profile_persons to authenticated, service_role;

-- ---------------------------------------------------------------- migration: evidence
-- the clusters one run found: every candidate with its cluster's survivor (itself when alone).
create table if not exists migration.dedup_members (
    run_id             text     not null references migration.runs (run_id),
    entity             text     not null,
    legacy_id          bigint   not null,
    survivor_legacy_id bigint   not null,
    completeness       smallint not null,
    primary key (run_id, entity, legacy_id)
);
comment on table migration.dedup_members is
    'per run: every candidate and the survivor of its cluster (itself when alone; most complete, '
    'then most recent activity, then lowest legacy id). ids only.';

-- pairs at or above the link threshold (or linked by a reviewer); unlinked_at once undone.
create table if not exists migration.dedup_links (
    entity            text             not null,
    legacy_id_l       bigint           not null,
    legacy_id_r       bigint           not null,
    match_probability double precision,
    match_weight      double precision,
    agreement         jsonb            not null default '{}',
    linked_by         text             not null check (linked_by in ('model', 'reviewer')),
    first_run_id      text             not null,
    last_run_id       text             not null,
    unlinked_at       timestamptz,
    primary key (entity, legacy_id_l, legacy_id_r),
    check (legacy_id_l < legacy_id_r)
);
comment on table migration.dedup_links is
    'linked pairs: match probability, weight and which fields agreed (exact, similar, '
    'different, missing) - never the values.';

-- the middle band: pairs a human decides (migration.dedup_decisions); refreshed every run.
create table if not exists migration.dedup_review (
    entity            text             not null,
    legacy_id_l       bigint           not null,
    legacy_id_r       bigint           not null,
    match_probability double precision not null,
    match_weight      double precision not null,
    agreement         jsonb            not null default '{}',
    first_run_id      text             not null,
    last_run_id       text             not null,
    primary key (entity, legacy_id_l, legacy_id_r),
    check (legacy_id_l < legacy_id_r)
);
comment on table migration.dedup_review is
    'pairs between the review and link thresholds, awaiting a decision in '
    'migration.dedup_decisions; ids, scores and field agreement only.';

create table if not exists migration.dedup_decisions (
    entity      text        not null,
    legacy_id_l bigint      not null,
    legacy_id_r bigint      not null,
    decision    text        not null check (decision in ('link', 'distinct')),
    decided_by  text        not null,
    reason      text        not null default '',
    decided_at  timestamptz not null default now(),
    primary key (entity, legacy_id_l, legacy_id_r),
    check (legacy_id_l < legacy_id_r)
);
comment on table migration.dedup_decisions is
    'human decisions on pairs (review, unlink): link or distinct. the model never overrides them.';

-- the memo of the step: a run whose inputs have this fingerprint reuses run_id's clusters.
create table if not exists migration.dedup_inputs (
    entity      text        primary key,
    fingerprint text        not null,
    run_id      text        not null references migration.runs (run_id),
    outcome     jsonb       not null,
    recorded_at timestamptz not null default now()
);
comment on table migration.dedup_inputs is
    'per entity: sha256 of the last computed de-duplication''s inputs (candidates, decisions, '
    'thresholds, model), the run that recorded its clusters and its counts. hashes and ids only.';

-- ---------------------------------------------------------------- the trained model
-- The linkage model a full run estimated (Splink's settings with λ and the u values of its
-- random pair sample), which the nightly sync applies instead of estimating it again:
-- Splink's own practice (train, save the model, predict on new records with it).
create table if not exists migration.dedup_models (
    entity             text        primary key,
    method             text        not null,
    model              jsonb       not null,
    trained_run_id     text        not null references migration.runs (run_id),
    trained_candidates integer     not null,
    trained_at         timestamptz not null default now()
);
comment on table migration.dedup_models is
    'per entity: the linkage model (settings, lambda, m and u probabilities; no record value) the '
    'last full run estimated, with the method digest it was estimated under; applied by syncs.';
