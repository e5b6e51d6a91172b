-- 300_phase3_communication.sql
-- purpose: phase 3 (communication) target tables: public.message_types (the seeded catalog),
--          public.messages (dispatch_record messages and dispatch_comment plan comments, with
--          the django generic relation replaced by explicit foreign keys) and
--          public.message_attachments; indexes, grants and row level security.
-- needs: 000 (migration.new_id, migration.touch_updated_at), 100 (profiles, rls helpers) and
--        200 (orders, projects, treatment_plans, files): phase 3 runs after phases 1-2 validated.
-- idempotent: tables "if not exists", the catalog seed upserts only rows that differ,
--             triggers "create or replace", policies dropped and recreated; applied at the
--             start of every phase 3 run.
-- conventions: as 100_phase1_core.sql (uuid key, unique legacy id, metadata keeps raw values
--              a repair changed, created_at/updated_at maintained by the database).

-- ---------------------------------------------------------------- message types
create table if not exists public.message_types (
    id          uuid primary key default migration.new_id(),
    code        text not null,
    name        text not null,
    description text,
    metadata    jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint message_types_code_key unique (code),
    constraint message_types_code_format check (code ~ '^[a-z][a-z0-9_]*$'),
    constraint message_types_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.message_types is
    'kinds of message. seeded here (include/transforms/phase3_codes.py mirrors it); legacy '
    'dispatch_record.type codes map to them (3 support, 5 clinical_note, 6 general, '
    '8 status_update, null/unknown general), plan comments are plan_comment.';

create or replace trigger message_types_touch_updated_at
    before update on public.message_types
    for each row execute function migration.touch_updated_at();

-- the seed is authoritative for names and descriptions; unchanged rows are not rewritten.
insert into public.message_types as t (code, name, description)
values
    ('general', 'General',
     'patient/case communication (legacy type 6), and records whose type is NULL or unknown'),
    ('status_update', 'Status Update', 'status changes and notices (legacy type 8)'),
    ('question', 'Question', 'a question to the lab or the clinic (no legacy code)'),
    ('instruction', 'Instruction', 'a treatment instruction (no legacy code)'),
    ('clinical_note', 'Clinical Note', 'clinical note or treatment instruction (legacy type 5)'),
    ('support', 'Support', 'user communication: support and questions (legacy type 3)'),
    ('plan_comment', 'Plan Comment', 'a comment on a treatment plan (dispatch_comment)')
on conflict (code) do update set name = excluded.name, description = excluded.description
where (t.name, t.description) is distinct from (excluded.name, excluded.description);

-- ---------------------------------------------------------------- messages
create table if not exists public.messages (
    id                 uuid primary key default migration.new_id(),
    legacy_record_id   integer unique,
    legacy_comment_id  integer unique,
    message_type_id    uuid not null references public.message_types (id),
    content            text,
    sent_at            timestamptz not null,
    is_public          boolean,
    author_id          uuid references public.profiles (id),
    patient_id         uuid references public.profiles (id),
    recipient_id       uuid references public.profiles (id),
    order_id           uuid references public.orders (id),
    project_id         uuid references public.projects (id),
    treatment_plan_id  uuid references public.treatment_plans (id),
    legacy_type        integer,
    legacy_author_id   integer,
    legacy_target_type text,
    legacy_target_id   integer,
    legacy_group_id    integer,
    metadata           jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    -- a message comes from one legacy table at most (application messages: neither).
    constraint messages_one_legacy_source
        check (num_nonnulls(legacy_record_id, legacy_comment_id) <= 1),
    -- what the generic relation pointed at is now an explicit foreign key: at least one.
    constraint messages_has_subject
        check (num_nonnulls(patient_id, recipient_id, order_id, project_id, treatment_plan_id) >= 1),
    constraint messages_legacy_target_type_format
        check (legacy_target_type ~ '^[a-z0-9_]+\.[a-z0-9_]+$'),
    constraint messages_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.messages is
    'messages: every dispatch_record (generic relation target_type_id/target_id resolved by '
    'content type name into patient_id, recipient_id, order_id, project_id or '
    'treatment_plan_id) and every dispatch_comment (plan comments). text kept exactly; '
    'mis-encoded text repaired by the documented rule with the original in metadata.legacy_text.';
comment on column public.messages.legacy_record_id is 'dispatch_record.id (upsert key of records).';
comment on column public.messages.legacy_comment_id is 'dispatch_comment.id (upsert key of plan comments).';
comment on column public.messages.content is
    'the text as written (multilingual); mojibake repaired, original in metadata.legacy_text.';
comment on column public.messages.sent_at is 'dispatch_record.created_at / dispatch_comment.created_at.';
comment on column public.messages.is_public is 'dispatch_record.public (null for plan comments and when unset).';
comment on column public.messages.author_id is
    'author profile; null when the legacy author is null or not migrated (raw id in legacy_author_id).';
comment on column public.messages.patient_id is
    'the patient the message is about: the record''s target, or the patient of its order or plan.';
comment on column public.messages.recipient_id is 'a user-to-user message''s addressee (auth.user target).';
comment on column public.messages.order_id is 'the record''s target order, or the order of the commented plan.';
comment on column public.messages.project_id is 'the record''s target project, or the project of the commented plan.';
comment on column public.messages.treatment_plan_id is 'the commented plan (plan comments) or a dispatch.plan target.';
comment on column public.messages.legacy_type is 'dispatch_record.type as is (undocumented codes kept).';
comment on column public.messages.legacy_target_type is
    'app_label.model of the legacy generic relation target (dispatch.patient, auth.user, ...).';
comment on column public.messages.legacy_target_id is 'the legacy target''s id (dispatch_record.target_id, dispatch_comment.plan_id).';
comment on column public.messages.legacy_group_id is 'dispatch_record.group_id, meaning undocumented.';

create index if not exists messages_patient_id_idx on public.messages (patient_id);
create index if not exists messages_recipient_id_idx on public.messages (recipient_id);
create index if not exists messages_author_id_idx on public.messages (author_id);
create index if not exists messages_order_id_idx on public.messages (order_id);
create index if not exists messages_project_id_idx on public.messages (project_id);
create index if not exists messages_treatment_plan_id_idx on public.messages (treatment_plan_id);
create index if not exists messages_message_type_id_idx on public.messages (message_type_id);

create or replace trigger messages_touch_updated_at
    before update on public.messages
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- message attachments
create table if not exists public.message_attachments (
    id                          uuid primary key default migration.new_id(),
    legacy_record_attachment_id integer unique,
    message_id                  uuid not null references public.messages (id) on delete cascade,
    file_id                     uuid not null references public.files (id),
    legacy_record_id            integer,
    legacy_file_id              integer,
    metadata                    jsonb not null default '{}'::jsonb,
    created_at                  timestamptz not null default now(),
    updated_at                  timestamptz not null default now(),
    constraint message_attachments_message_file_key unique (message_id, file_id),
    constraint message_attachments_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.message_attachments is
    'files attached to messages, from dispatch_record_attachments (record -> migrated file).';
comment on column public.message_attachments.legacy_record_attachment_id is
    'dispatch_record_attachments.id (upsert key, lineage).';

create index if not exists message_attachments_file_id_idx on public.message_attachments (file_id);

create or replace trigger message_attachments_touch_updated_at
    before update on public.message_attachments
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- grants
revoke all on public.message_types, public.messages, public.message_attachments from anon;
revoke insert, update, delete, truncate
    on public.message_types, public.messages, public.message_attachments from authenticated;
grant select, insert, update, delete
    on public.message_types, public.messages, public.message_attachments to service_role;
grant select on public.message_types, public.messages, public.message_attachments to authenticated;

-- ---------------------------------------------------------------- row level security
alter table public.message_types enable row level security;
alter table public.messages enable row level security;
alter table public.message_attachments enable row level security;

drop policy if exists message_types_service_role_all on public.message_types;
create policy message_types_service_role_all on public.message_types
    for all to service_role using (true) with check (true);

-- reference data: every signed-in user reads it.
drop policy if exists message_types_select_authenticated on public.message_types;
create policy message_types_select_authenticated on public.message_types
    for select to authenticated using (true);

drop policy if exists messages_service_role_all on public.messages;
create policy messages_service_role_all on public.messages
    for all to service_role using (true) with check (true);

-- staff read every message; everyone else what they wrote or received, a patient the public
-- messages about them, a doctor the messages about their patients and their orders.
drop policy if exists messages_select_authenticated on public.messages;
create policy messages_select_authenticated on public.messages
    for select to authenticated
    using (
        (select public.is_staff())
        or author_id = (select public.current_profile_id())
        or recipient_id = (select public.current_profile_id())
        or (patient_id = (select public.current_profile_id()) and is_public is not false)
        or exists (
            select 1
            from public.profiles p
            where p.id = messages.patient_id
              and p.patient_doctor_id = (select public.current_profile_id())
        )
        or exists (
            select 1
            from public.orders o
            where o.id = messages.order_id
              and o.doctor_id = (select public.current_profile_id())
        )
    );

drop policy if exists message_attachments_service_role_all on public.message_attachments;
create policy message_attachments_service_role_all on public.message_attachments
    for all to service_role using (true) with check (true);

-- an attachment is visible with its message (the messages policy applies inside the subquery).
drop policy if exists message_attachments_select_authenticated on public.message_attachments;
create policy message_attachments_select_authenticated on public.message_attachments
    for select to authenticated
    using (exists (select 1 from public.messages m where m.id = message_attachments.message_id));
