-- 100_phase1_core.sql
-- purpose: phase 1 (core) target tables: public.offices, public.profiles, public.order_types,
--          their enum types, indexes, the standard order types, grants and row level security.
-- needs: 000_supabase_compat.sql (roles, auth.*, migration.new_id, migration.touch_updated_at).
-- idempotent: types and policies are guarded or dropped and recreated, tables "if not exists",
--             seeds "on conflict do nothing"; applied at the start of every phase 1 run.
-- conventions: uuid primary key from migration.new_id(); legacy_<table>_id integer unique (the
--              upsert key and the lineage); metadata jsonb keeps raw legacy values that a repair
--              rule changed or dropped; created_at/updated_at maintained by the database.

-- ---------------------------------------------------------------- enum types
do $$
begin
    if to_regtype('public.profile_type') is null then
        create type public.profile_type as enum (
            'patient', 'doctor', 'technician', 'master', 'admin',
            'sales_person', 'support_agent', 'unclassified'
        );
    end if;
    if to_regtype('public.gender') is null then
        create type public.gender as enum ('male', 'female', 'other', 'unknown');
    end if;
    if to_regtype('public.patient_status') is null then
        create type public.patient_status as enum ('active', 'on_hold', 'archived');
    end if;
end
$$;

comment on type public.profile_type is
    'who a profile is. typed from auth groups, then flags, then a dispatch_patient row; '
    'unclassified = no rule applied (never guessed).';
comment on type public.gender is 'patient gender from dispatch_patient.sex (1 male, 2 female, 0 other).';
comment on type public.patient_status is
    'patient status from dispatch_patient.status (1/4 active, 2 on_hold, 10 archived).';

-- ---------------------------------------------------------------- offices
create table if not exists public.offices (
    id                   uuid primary key default migration.new_id(),
    legacy_office_id     integer unique,
    name                 text,
    address              text,
    apartment            text,
    city                 text,
    state                text,
    zip_code             text,
    country_code         text,
    phone                text,
    tax_rate             numeric(10, 6) not null default 0,
    is_valid             boolean not null default true,
    email_notifications  boolean not null default true,
    square_customer_id   text,
    legacy_owner_user_id integer,
    metadata             jsonb not null default '{}'::jsonb,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint offices_country_code_iso check (country_code ~ '^[A-Z]{2}$'),
    constraint offices_tax_rate_fraction check (tax_rate >= 0 and tax_rate < 1),
    constraint offices_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.offices is
    'customer practices (clinics) from dispatch_office, valid or not (is_valid). '
    'tax_rate is a fraction, country_code iso 3166-1 alpha-2; raw legacy values in metadata.';
comment on column public.offices.legacy_office_id is 'dispatch_office.id (upsert key, lineage).';
comment on column public.offices.tax_rate is
    'fraction in [0, 1): legacy values > 1 were percentages and are divided by 100.';
comment on column public.offices.country_code is
    'iso 3166-1 alpha-2; null when the legacy text is null or unrecognised (raw in metadata).';
comment on column public.offices.is_valid is 'dispatch_office.valid (only valid offices were used in legacy).';
comment on column public.offices.email_notifications is 'dispatch_office.emails: a flag, not an address.';
comment on column public.offices.legacy_owner_user_id is
    'dispatch_office.doctor_id (auth_user id of the owning doctor), raw lineage.';

create or replace trigger offices_touch_updated_at
    before update on public.offices
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- profiles
create table if not exists public.profiles (
    id                    uuid primary key default migration.new_id(),
    legacy_user_id        integer unique,
    legacy_patient_id     integer unique,
    auth_user_id          uuid unique,
    profile_type          public.profile_type not null default 'unclassified',
    username              text not null,
    password_hash         text,
    email                 text,
    first_name            text,
    last_name             text,
    is_active             boolean not null default true,
    is_staff              boolean not null default false,
    is_superuser          boolean not null default false,
    is_test_account       boolean not null default false,
    last_login_at         timestamptz,
    date_joined           timestamptz not null default now(),
    -- patient fields (from dispatch_patient; null on profiles without a patient row)
    date_of_birth         date,
    gender                public.gender,
    patient_status        public.patient_status,
    archived              boolean,
    suspended             boolean,
    schemes               jsonb,
    patient_suffix        text,
    patient_submitted_at  timestamptz,
    patient_updated_at    timestamptz,
    legacy_doctor_user_id integer,
    legacy_office_id      integer,
    patient_doctor_id     uuid references public.profiles (id) on delete set null,
    patient_office_id     uuid references public.offices (id) on delete set null,
    metadata              jsonb not null default '{}'::jsonb,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    -- deferred: an incremental run may swap two usernames inside one upsert statement.
    constraint profiles_username_key unique (username) deferrable initially deferred,
    constraint profiles_username_not_blank check (btrim(username) <> ''),
    constraint profiles_patient_suffix_format check (patient_suffix ~ '^[[:alnum:]]{4}$'),
    constraint profiles_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.profiles is
    'every person: one row per auth_user (patients, doctors, technicians, staff), typed by '
    'profile_type; patient fields merged from dispatch_patient; raw legacy values in metadata.';
comment on column public.profiles.legacy_user_id is 'auth_user.id (upsert key, lineage).';
comment on column public.profiles.legacy_patient_id is
    'dispatch_patient.id of the user''s patient row (lowest id when several; others in metadata).';
comment on column public.profiles.auth_user_id is
    'supabase auth.users id once the person has an account; not migrated, drives rls.';
comment on column public.profiles.password_hash is
    'auth_user.password (django hash) for a later auth import; not readable through the api.';
comment on column public.profiles.email is 'trimmed, lower-cased; null when absent or invalid (raw in metadata).';
comment on column public.profiles.is_test_account is
    'internal-domain customer account (@brius.com, @mechanodontics.com) or a demo account.';
comment on column public.profiles.patient_suffix is 'dispatch_patient.suffix: 4-character case code.';
comment on column public.profiles.legacy_doctor_user_id is
    'dispatch_patient.doctor_id (auth_user id), raw lineage; resolved into patient_doctor_id.';
comment on column public.profiles.legacy_office_id is
    'dispatch_patient.office_id, raw lineage; resolved into patient_office_id.';
comment on column public.profiles.patient_doctor_id is 'treating doctor (profile of legacy_doctor_user_id).';
comment on column public.profiles.patient_office_id is 'patient''s office (office of legacy_office_id).';

create index if not exists profiles_patient_doctor_id_idx on public.profiles (patient_doctor_id);
create index if not exists profiles_patient_office_id_idx on public.profiles (patient_office_id);
create index if not exists profiles_email_idx on public.profiles (email);
create index if not exists profiles_profile_type_idx on public.profiles (profile_type);

create or replace trigger profiles_touch_updated_at
    before update on public.profiles
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- order types
create table if not exists public.order_types (
    id                 uuid primary key default migration.new_id(),
    code               text not null,
    name               text not null,
    is_order_type      boolean not null default false,
    legacy_course_id   integer unique,
    legacy_course_type integer,
    customization      jsonb,
    metadata           jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    constraint order_types_code_key unique (code),
    constraint order_types_code_format check (code ~ '^[a-z][a-z0-9_]*$'),
    constraint order_types_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.order_types is
    'order (course) types: the standard types plus every dispatch_course, merged on code; '
    'is_order_type is false for courses that are not orders (any, invoice, merchandise).';
comment on column public.order_types.code is 'stable code: main, refinement, ... or course_<legacy id>.';
comment on column public.order_types.legacy_course_id is 'dispatch_course.id (lineage; null for seeded types).';
comment on column public.order_types.legacy_course_type is 'dispatch_course.type, meaning undocumented.';
comment on column public.order_types.customization is 'dispatch_course.customization as json (raw in metadata when invalid).';

create or replace trigger order_types_touch_updated_at
    before update on public.order_types
    for each row execute function migration.touch_updated_at();

insert into public.order_types (code, name, is_order_type)
values
    ('main', 'Main', true),
    ('refinement', 'Refinement', true),
    ('replacement', 'Replacement', true),
    ('retainer', 'Retainer', true),
    ('emergency', 'Emergency', true)
on conflict (code) do nothing;

-- ---------------------------------------------------------------- rls helpers
-- security definer so that policies on profiles can look the caller up without recursing
-- into profiles' own policies; empty search_path so nothing can be shadowed.
create or replace function public.current_profile_id() returns uuid
language sql stable security definer set search_path = ''
as $$
    select p.id from public.profiles p where p.auth_user_id = (select auth.uid())
$$;
comment on function public.current_profile_id() is 'rls helper: the caller''s profile id (null if none).';

create or replace function public.is_staff() returns boolean
language sql stable security definer set search_path = ''
as $$
    select coalesce((
        select p.is_active
            and p.profile_type in ('technician', 'master', 'admin', 'sales_person', 'support_agent')
        from public.profiles p
        where p.auth_user_id = (select auth.uid())
    ), false)
$$;
comment on function public.is_staff() is 'rls helper: the caller is an active brius employee (not doctor/patient).';

revoke all on function public.current_profile_id(), public.is_staff() from public, anon;
grant execute on function public.current_profile_id(), public.is_staff() to authenticated, service_role;

-- ---------------------------------------------------------------- grants
-- reads go through the api as "authenticated" (rls decides which rows); writes only as
-- service_role (the migration, back-office jobs). anon sees nothing.
revoke all on public.offices, public.profiles, public.order_types from anon;
revoke insert, update, delete, truncate on public.offices, public.profiles, public.order_types
    from authenticated;
grant select, insert, update, delete on public.offices, public.profiles, public.order_types
    to service_role;
grant select on public.offices, public.order_types to authenticated;

-- profiles: every column but password_hash (column grants; recomputed so added columns follow).
do $$
declare
    readable text;
begin
    select string_agg(quote_ident(column_name), ', ' order by ordinal_position)
    into readable
    from information_schema.columns
    where table_schema = 'public' and table_name = 'profiles' and column_name <> 'password_hash';
    revoke select on public.profiles from authenticated;  -- also drops column grants
    execute format('grant select (%s) on public.profiles to authenticated', readable);
end
$$;

-- ---------------------------------------------------------------- row level security
alter table public.offices enable row level security;
alter table public.profiles enable row level security;
alter table public.order_types enable row level security;

drop policy if exists offices_service_role_all on public.offices;
create policy offices_service_role_all on public.offices
    for all to service_role using (true) with check (true);

-- staff read every office; a doctor the offices they own; a patient their own office.
drop policy if exists offices_select_authenticated on public.offices;
create policy offices_select_authenticated on public.offices
    for select to authenticated
    using (
        (select public.is_staff())
        or exists (
            select 1
            from public.profiles p
            where p.auth_user_id = (select auth.uid())
              and (p.patient_office_id = offices.id or p.legacy_user_id = offices.legacy_owner_user_id)
        )
    );

drop policy if exists profiles_service_role_all on public.profiles;
create policy profiles_service_role_all on public.profiles
    for all to service_role using (true) with check (true);

-- own profile; a doctor their patients; staff everyone.
drop policy if exists profiles_select_authenticated on public.profiles;
create policy profiles_select_authenticated on public.profiles
    for select to authenticated
    using (
        auth_user_id = (select auth.uid())
        or patient_doctor_id = (select public.current_profile_id())
        or (select public.is_staff())
    );

drop policy if exists order_types_service_role_all on public.order_types;
create policy order_types_service_role_all on public.order_types
    for all to service_role using (true) with check (true);

-- reference data: every signed-in user reads it.
drop policy if exists order_types_select_authenticated on public.order_types;
create policy order_types_select_authenticated on public.order_types
    for select to authenticated using (true);
