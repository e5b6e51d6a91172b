-- 200_phase2_relationships.sql
-- purpose: phase 2 (relationships) target tables: public.doctor_offices, public.jaws,
--          public.orders, public.projects, public.treatment_plans, public.files; their enum
--          types, indexes, the patient lookup view the transforms resolve patients through,
--          grants and row level security.
-- needs: 000_supabase_compat.sql (roles, migration.new_id, migration.touch_updated_at) and
--        100_phase1_core.sql (profiles, offices, order_types, current_profile_id, is_staff).
-- idempotent: types guarded, tables and indexes "if not exists", the view and policies
--             replaced; applied at the start of every phase 2 run.
-- conventions: as in 100: uuid primary key from migration.new_id(); legacy_<table>_id integer
--              unique (upsert key and lineage; null on rows the application creates later,
--              the suites prove every migrated row has it); raw legacy ids of resolved parents kept beside
--              the foreign keys; metadata jsonb keeps raw values a repair changed or dropped;
--              flags text[] names what a human should review (unknown codes, missing links);
--              created_at/updated_at maintained by the database.

-- ---------------------------------------------------------------- enum types
do $$
begin
    if to_regtype('public.order_status') is null then
        create type public.order_status as enum ('no_product', 'submitted', 'approved', 'shipped');
    end if;
    if to_regtype('public.project_type') is null then
        create type public.project_type as enum ('unspecified', 'treatment_plan');
    end if;
    if to_regtype('public.project_status') is null then
        create type public.project_status as enum ('active');
    end if;
end
$$;

comment on type public.order_status is
    'order status from dispatch_instruction.status (0 no_product, 1 submitted, 2 approved, '
    '4 shipped); other codes are null with the raw code in orders.legacy_status.';
comment on type public.project_type is
    'project type from dispatch_project.type (0 unspecified, 3 treatment_plan); other codes are '
    'null with the raw code in projects.legacy_type.';
comment on type public.project_status is
    'project status from dispatch_project.status (0 active); other codes are null with the raw '
    'code in projects.legacy_status.';

-- ---------------------------------------------------------------- patient lookup
-- how a legacy dispatch_patient id finds its profile: the profile's own patient row, or one of
-- the extra patient rows merged into it (metadata.other_legacy_patient_ids, phase 1). phase 2
-- resolves every patient reference through this view, never through a cached map, so a patient
-- merged by de-duplication still resolves: de-duplication extends this view, not the transforms.
create or replace view migration.legacy_patient_profile as
select p.legacy_patient_id, p.id as profile_id
from public.profiles as p
where p.legacy_patient_id is not null
union all
select extra.legacy_patient_id::integer, p.id
from public.profiles as p
cross join lateral jsonb_array_elements_text(p.metadata -> 'other_legacy_patient_ids')
    as extra (legacy_patient_id)
where p.metadata ? 'other_legacy_patient_ids';

comment on view migration.legacy_patient_profile is
    'dispatch_patient.id -> profile id: the lineage every phase 2 patient reference resolves through.';

-- ---------------------------------------------------------------- doctor offices
-- one row per (doctor, office) link. two legacy sources feed it and both upsert on
-- legacy_link ('<office id>:<user id>'): a dispatch_office_doctors row (entity doctor_offices,
-- legacy_office_doctor_id) and an office's owner dispatch_office.doctor_id (entity office_owners,
-- legacy_owner_office_id). an owner who also has an m2m row lands on that same link.
create table if not exists public.doctor_offices (
    id                      uuid primary key default migration.new_id(),
    doctor_id               uuid not null references public.profiles (id) on delete cascade,
    office_id               uuid not null references public.offices (id) on delete cascade,
    legacy_link             text,
    legacy_doctor_user_id   integer,
    legacy_office_id        integer,
    legacy_office_doctor_id integer,
    legacy_owner_office_id  integer,
    is_owner                boolean generated always as (legacy_owner_office_id is not null) stored,
    is_primary              boolean not null default false,
    metadata                jsonb not null default '{}'::jsonb,
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now(),
    constraint doctor_offices_legacy_link_key unique (legacy_link),
    constraint doctor_offices_pair_key unique (doctor_id, office_id),
    constraint doctor_offices_legacy_office_doctor_id_key unique (legacy_office_doctor_id),
    -- deferred: when an office changes owner, the new owner's link takes the mark in the upsert
    -- and the post-load step clears it from the old one, in the same transaction.
    constraint doctor_offices_legacy_owner_office_id_key unique (legacy_owner_office_id)
        deferrable initially deferred,
    constraint doctor_offices_legacy_link_format
        check (legacy_link = legacy_office_id || ':' || legacy_doctor_user_id),
    constraint doctor_offices_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.doctor_offices is
    'doctor <-> office links: every dispatch_office_doctors row, plus each office''s owner '
    '(dispatch_office.doctor_id) when no m2m row links them; is_primary marks one office per doctor.';
comment on column public.doctor_offices.legacy_link is
    'dispatch_office.id:auth_user.id of the link (upsert key shared by both legacy sources).';
comment on column public.doctor_offices.legacy_office_doctor_id is 'dispatch_office_doctors.id (lineage).';
comment on column public.doctor_offices.legacy_owner_office_id is
    'dispatch_office.id when this link is that office''s ownership (dispatch_office.doctor_id).';
comment on column public.doctor_offices.is_primary is
    'the doctor''s primary office: an owned office first, then most of the doctor''s patients, '
    'then the lowest legacy office id (load/office_owners__primary_office.sql).';

create unique index if not exists doctor_offices_one_primary_idx
    on public.doctor_offices (doctor_id) where is_primary;
create index if not exists doctor_offices_office_id_idx on public.doctor_offices (office_id);

create or replace trigger doctor_offices_touch_updated_at
    before update on public.doctor_offices
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- jaws
create table if not exists public.jaws (
    id                 uuid primary key default migration.new_id(),
    legacy_jaw_id      integer,
    arch               text,
    bond_teeth         text not null,
    extract_teeth      text not null,
    replacement_reason text,
    is_labial          boolean not null default false,
    legacy_product_id  integer,
    flags              text[] not null default '{}',
    metadata           jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    constraint jaws_legacy_jaw_id_key unique (legacy_jaw_id),
    constraint jaws_arch_check check (arch in ('upper', 'lower')),
    constraint jaws_bond_teeth_format check (bond_teeth ~ '^[01]{16}$'),
    constraint jaws_extract_teeth_format check (extract_teeth ~ '^[01]{16}$'),
    constraint jaws_flags_known check (flags <@ array['unreferenced', 'arch_conflict']::text[]),
    constraint jaws_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.jaws is
    'one arch of an order (dispatch_jaw); orders point at their jaws (upper_jaw_id, lower_jaw_id).';
comment on column public.jaws.arch is
    'upper/lower from the instruction that references the jaw; null when no instruction does '
    '(flag unreferenced) or instructions disagree (flag arch_conflict): never defaulted.';
comment on column public.jaws.bond_teeth is '16-character bit string, one bit per tooth.';
comment on column public.jaws.legacy_product_id is 'dispatch_jaw.product_id (dispatch_product, not migrated).';

create or replace trigger jaws_touch_updated_at
    before update on public.jaws
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- orders
create table if not exists public.orders (
    id                    uuid primary key default migration.new_id(),
    legacy_instruction_id integer,
    order_number          text not null,
    patient_id            uuid not null references public.profiles (id),
    doctor_id             uuid references public.profiles (id),
    office_id             uuid references public.offices (id),
    order_type_id         uuid references public.order_types (id),
    status                public.order_status,
    legacy_status         integer,
    upper_jaw_id          uuid references public.jaws (id),
    lower_jaw_id          uuid references public.jaws (id),
    legacy_patient_id     integer,
    legacy_course_id      integer,
    legacy_upper_jaw_id   integer,
    legacy_lower_jaw_id   integer,
    notes                 text,
    complaint             text,
    conditions            text,
    objective             text,
    scanner_notes         text,
    exports               jsonb,
    price                 numeric(10, 2),
    legacy_model          integer,
    legacy_scanner        integer,
    legacy_order          integer,
    cbct                  boolean not null default false,
    comprehensive         boolean not null default false,
    accept_extraction     boolean not null default false,
    suffix                text,
    submitted_at          timestamptz,
    legacy_updated_at     timestamptz,
    deleted_at            timestamptz,
    flags                 text[] not null default '{}',
    metadata              jsonb not null default '{}'::jsonb,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint orders_legacy_instruction_id_key unique (legacy_instruction_id),
    constraint orders_order_number_key unique (order_number),
    constraint orders_flags_known check (
        flags <@ array['status_unknown', 'doctor_missing', 'office_missing', 'order_type_missing']::text[]
    ),
    constraint orders_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.orders is
    'orders (dispatch_instruction): patient by legacy patient id, doctor and office through the '
    'patient (instructions carry neither), course -> order type; soft-deleted orders kept with '
    'deleted_at.';
comment on column public.orders.order_number is
    'patient suffix || ''-'' || legacy instruction id, or the legacy instruction id alone when the '
    'patient has no valid suffix.';
comment on column public.orders.doctor_id is
    'the patient''s doctor (profiles.patient_doctor_id) at migration time; null when the patient '
    'has none (flag doctor_missing), never guessed.';
comment on column public.orders.office_id is
    'the patient''s office (profiles.patient_office_id); null when the patient has none (flag office_missing).';
comment on column public.orders.status is 'mapped status; null for an undocumented code (flag status_unknown).';
comment on column public.orders.legacy_status is 'dispatch_instruction.status, raw.';
comment on column public.orders.deleted_at is
    'set for dispatch_instruction.deleted: its updated_at, else the first run that saw it deleted.';
comment on column public.orders.legacy_updated_at is
    'dispatch_instruction.updated_at (the watermark candidate for nightly sync).';
comment on column public.orders.exports is 'dispatch_instruction.exports as json (raw text in metadata when invalid).';

create index if not exists orders_patient_id_idx on public.orders (patient_id);
create index if not exists orders_doctor_id_idx on public.orders (doctor_id);
create index if not exists orders_office_id_idx on public.orders (office_id);
create index if not exists orders_order_type_id_idx on public.orders (order_type_id);
create index if not exists orders_upper_jaw_id_idx on public.orders (upper_jaw_id);
create index if not exists orders_lower_jaw_id_idx on public.orders (lower_jaw_id);
create index if not exists orders_legacy_updated_at_idx on public.orders (legacy_updated_at);

create or replace trigger orders_touch_updated_at
    before update on public.orders
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- projects
create table if not exists public.projects (
    id                     uuid primary key default migration.new_id(),
    legacy_project_id      integer,
    legacy_uid             uuid,
    order_id               uuid references public.orders (id),
    legacy_instruction_id  integer,
    creator_id             uuid references public.profiles (id),
    legacy_creator_user_id integer,
    name                   text,
    size_bytes             bigint not null default 0,
    project_type           public.project_type,
    legacy_type            integer,
    project_status         public.project_status,
    legacy_status          integer,
    is_public              boolean not null default false,
    legacy_created_at      timestamptz,
    flags                  text[] not null default '{}',
    metadata               jsonb not null default '{}'::jsonb,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now(),
    constraint projects_legacy_project_id_key unique (legacy_project_id),
    constraint projects_legacy_uid_key unique (legacy_uid),
    constraint projects_size_bytes_not_negative check (size_bytes >= 0),
    constraint projects_flags_known check (
        flags <@ array['type_unknown', 'status_unknown', 'no_plan', 'several_orders']::text[]
    ),
    constraint projects_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.projects is
    '3-d assets (dispatch_project: scans, models, treatment plans), linked to their order through '
    'the plans that use them (dispatch_plan); several plans may share a project.';
comment on column public.projects.order_id is
    'the one order whose plans use this project; null when no plan uses it (flag no_plan) or plans '
    'of several orders do (flag several_orders, their ids in metadata.legacy_instruction_ids).';
comment on column public.projects.legacy_uid is 'dispatch_project.uid (the 3-d asset id).';
comment on column public.projects.legacy_created_at is 'dispatch_project.created_at.';

create index if not exists projects_order_id_idx on public.projects (order_id);
create index if not exists projects_creator_id_idx on public.projects (creator_id);

create or replace trigger projects_touch_updated_at
    before update on public.projects
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- treatment plans
create table if not exists public.treatment_plans (
    id                    uuid primary key default migration.new_id(),
    legacy_plan_id        integer,
    order_id              uuid not null references public.orders (id),
    project_id            uuid not null references public.projects (id),
    legacy_instruction_id integer,
    legacy_project_id     integer,
    plan_number           integer,
    name                  text,
    notes                 text,
    is_original           boolean,
    metadata              jsonb not null default '{}'::jsonb,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint treatment_plans_legacy_plan_id_key unique (legacy_plan_id),
    constraint treatment_plans_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.treatment_plans is
    'treatment plan revisions (dispatch_plan, TP1, TP2 ...): one order, one project each; '
    'several plans may share a project.';
comment on column public.treatment_plans.plan_number is 'dispatch_plan.number (TP#).';
comment on column public.treatment_plans.is_original is 'dispatch_plan.original (original vs revision).';

create index if not exists treatment_plans_order_id_idx on public.treatment_plans (order_id);
create index if not exists treatment_plans_project_id_idx on public.treatment_plans (project_id);

create or replace trigger treatment_plans_touch_updated_at
    before update on public.treatment_plans
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- files
create table if not exists public.files (
    id                    uuid primary key default migration.new_id(),
    legacy_file_id        integer,
    legacy_uid            uuid,
    order_id              uuid references public.orders (id),
    legacy_instruction_id integer,
    file_name             text not null,
    extension             text,
    mime_type             text not null,
    size_bytes            bigint not null default 0,
    legacy_type           integer,
    description           text,
    parameters            jsonb,
    legacy_product_id     integer,
    legacy_record_id      integer,
    legacy_status         integer,
    uploaded_at           timestamptz not null default now(),
    storage_bucket        text,
    storage_path          text,
    sha256                text,
    flags                 text[] not null default '{}',
    metadata              jsonb not null default '{}'::jsonb,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint files_legacy_file_id_key unique (legacy_file_id),
    constraint files_legacy_uid_key unique (legacy_uid),
    constraint files_extension_format check (extension ~ '^[a-z0-9]{1,10}$'),
    constraint files_sha256_format check (sha256 ~ '^[0-9a-f]{64}$'),
    constraint files_object_complete check (
        (storage_bucket is null) = (storage_path is null) and (storage_path is null) = (sha256 is null)
    ),
    constraint files_size_bytes_not_negative check (size_bytes >= 0),
    constraint files_flags_known check (flags <@ array['extension_unknown']::text[]),
    constraint files_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.files is
    'file metadata (dispatch_file); the bytes are copied to supabase storage '
    '(storage_bucket/storage_path) with their sha256.';
comment on column public.files.file_name is
    'name as users see it: legacy name + extension without the legacy double extension (x.stl.stl -> x.stl).';
comment on column public.files.extension is 'real extension (dispatch_file.ext, else the name''s last segment).';
comment on column public.files.mime_type is
    'from the real extension; application/octet-stream when unknown (flag extension_unknown).';
comment on column public.files.storage_path is
    'object key in storage_bucket; null while the bytes are not in storage (not copied yet, or '
    'outside the run''s object scope).';
comment on column public.files.sha256 is 'sha-256 of the bytes copied to storage (hex), also in the object''s metadata.';
comment on column public.files.uploaded_at is 'dispatch_file.created_at.';

create index if not exists files_order_id_idx on public.files (order_id);
create index if not exists files_legacy_record_id_idx on public.files (legacy_record_id);

create or replace trigger files_touch_updated_at
    before update on public.files
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- grants
-- as in 100: reads as "authenticated" (rls decides which rows); writes only as service_role.
revoke all on public.doctor_offices, public.jaws, public.orders, public.projects,
    public.treatment_plans, public.files from anon;
revoke insert, update, delete, truncate on public.doctor_offices, public.jaws, public.orders,
    public.projects, public.treatment_plans, public.files from authenticated;
grant select, insert, update, delete on public.doctor_offices, public.jaws, public.orders,
    public.projects, public.treatment_plans, public.files to service_role;
grant select on public.doctor_offices, public.jaws, public.orders, public.projects,
    public.treatment_plans, public.files to authenticated;
revoke all on migration.legacy_patient_profile from public, anon, authenticated;

-- ---------------------------------------------------------------- row level security
alter table public.doctor_offices enable row level security;
alter table public.jaws enable row level security;
alter table public.orders enable row level security;
alter table public.projects enable row level security;
alter table public.treatment_plans enable row level security;
alter table public.files enable row level security;

drop policy if exists doctor_offices_service_role_all on public.doctor_offices;
create policy doctor_offices_service_role_all on public.doctor_offices
    for all to service_role using (true) with check (true);

-- staff read every link; a doctor their own.
drop policy if exists doctor_offices_select_authenticated on public.doctor_offices;
create policy doctor_offices_select_authenticated on public.doctor_offices
    for select to authenticated
    using ((select public.is_staff()) or doctor_id = (select public.current_profile_id()));

drop policy if exists orders_service_role_all on public.orders;
create policy orders_service_role_all on public.orders
    for all to service_role using (true) with check (true);

-- staff read every order; a doctor the orders they treat; a patient their own.
drop policy if exists orders_select_authenticated on public.orders;
create policy orders_select_authenticated on public.orders
    for select to authenticated
    using (
        (select public.is_staff())
        or doctor_id = (select public.current_profile_id())
        or patient_id = (select public.current_profile_id())
    );

-- the order's children: visible exactly when an order they belong to is (orders' policy
-- applies inside these subqueries).
drop policy if exists jaws_service_role_all on public.jaws;
create policy jaws_service_role_all on public.jaws
    for all to service_role using (true) with check (true);

drop policy if exists jaws_select_authenticated on public.jaws;
create policy jaws_select_authenticated on public.jaws
    for select to authenticated
    using (
        (select public.is_staff())
        or exists (
            select 1 from public.orders as o where o.upper_jaw_id = jaws.id or o.lower_jaw_id = jaws.id
        )
    );

drop policy if exists projects_service_role_all on public.projects;
create policy projects_service_role_all on public.projects
    for all to service_role using (true) with check (true);

drop policy if exists projects_select_authenticated on public.projects;
create policy projects_select_authenticated on public.projects
    for select to authenticated
    using (
        (select public.is_staff())
        or exists (select 1 from public.orders as o where o.id = projects.order_id)
    );

drop policy if exists treatment_plans_service_role_all on public.treatment_plans;
create policy treatment_plans_service_role_all on public.treatment_plans
    for all to service_role using (true) with check (true);

drop policy if exists treatment_plans_select_authenticated on public.treatment_plans;
create policy treatment_plans_select_authenticated on public.treatment_plans
    for select to authenticated
    using (
        (select public.is_staff())
        or exists (select 1 from public.orders as o where o.id = treatment_plans.order_id)
    );

drop policy if exists files_service_role_all on public.files;
create policy files_service_role_all on public.files
    for all to service_role using (true) with check (true);

drop policy if exists files_select_authenticated on public.files;
create policy files_select_authenticated on public.files
    for select to authenticated
    using (
        (select public.is_staff())
        or exists (select 1 from public.orders as o where o.id = files.order_id)
    );
