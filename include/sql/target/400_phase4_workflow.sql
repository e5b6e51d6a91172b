-- 400_phase4_workflow.sql
-- purpose: phase 4 (workflow) target tables: public.order_states (the seeded catalog),
--          public.order_state_history, public.workflow_categories, public.workflow_templates,
--          public.workflow_template_predecessors, public.workflow_tasks, the audit-trail view
--          public.order_audit_trail; indexes, grants and row level security.
-- needs: 000 (migration.new_id, migration.touch_updated_at), 100 (profiles, order_types, rls
--        helpers), 200 (orders, treatment_plans, files): phase 4 runs after phases 1-3.
-- idempotent: tables "if not exists", the catalog seed upserts only rows that differ, views
--             and triggers "create or replace", policies dropped and recreated; applied at the
--             start of every phase 4 run.
-- conventions: as 100_phase1_core.sql (uuid key, unique legacy id, metadata keeps raw values
--              a repair changed, created_at/updated_at maintained by the database); every
--              foreign-key column is indexed (rollbacks delete parents after children).

-- ---------------------------------------------------------------- order states (catalog)
create table if not exists public.order_states (
    id            uuid primary key default migration.new_id(),
    code          text not null,
    name          text not null,
    description   text,
    legacy_status integer,
    metadata      jsonb not null default '{}'::jsonb,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    constraint order_states_code_key unique (code),
    constraint order_states_legacy_status_key unique (legacy_status),
    constraint order_states_code_format check (code ~ '^[a-z][a-z0-9_]*$'),
    constraint order_states_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.order_states is
    'order workflow states. seeded here (include/transforms/phase4_codes.py mirrors it) from '
    'the observed dispatch_state.status codes 11 and 12; other codes are not mapped.';
comment on column public.order_states.legacy_status is 'the dispatch_state.status code of this state.';

create or replace trigger order_states_touch_updated_at
    before update on public.order_states
    for each row execute function migration.touch_updated_at();

insert into public.order_states as t (code, name, legacy_status, description)
values
    ('treatment_active', 'Treatment active', 11,
     'legacy status 11; read by the production migration as treatment active, elsewhere as '
     'initial assignment/review'),
    ('case_closed', 'Case closed', 12,
     'legacy status 12; read by the production migration as case closed, elsewhere as '
     'advanced processing')
on conflict (code) do update
    set name = excluded.name, legacy_status = excluded.legacy_status,
        description = excluded.description
where (t.name, t.legacy_status, t.description)
    is distinct from (excluded.name, excluded.legacy_status, excluded.description);

-- ---------------------------------------------------------------- order state history
create table if not exists public.order_state_history (
    id                    uuid primary key default migration.new_id(),
    legacy_state_id       integer unique,
    order_id              uuid not null references public.orders (id),
    order_state_id        uuid not null references public.order_states (id),
    is_active             boolean not null,
    changed_at            timestamptz not null,
    actor_id              uuid references public.profiles (id),
    legacy_instruction_id integer,
    legacy_status         integer,
    legacy_actor_id       integer,
    metadata              jsonb not null default '{}'::jsonb,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint order_state_history_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.order_state_history is
    'per-order state changes from dispatch_state: which state, whether it was switched on or off '
    '(dispatch_state."on"), when and by whom. rows without an order are quarantined.';
comment on column public.order_state_history.is_active is 'dispatch_state."on": the state switched on (true) or off.';
comment on column public.order_state_history.actor_id is
    'who changed it; null when the legacy actor is null or not migrated (raw id in legacy_actor_id).';

create index if not exists order_state_history_order_id_idx
    on public.order_state_history (order_id, changed_at);
create index if not exists order_state_history_order_state_id_idx
    on public.order_state_history (order_state_id);
create index if not exists order_state_history_actor_id_idx on public.order_state_history (actor_id);

create or replace trigger order_state_history_touch_updated_at
    before update on public.order_state_history
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- workflow categories
create table if not exists public.workflow_categories (
    id                 uuid primary key default migration.new_id(),
    legacy_category_id integer unique,
    name               text not null,
    parent_id          uuid references public.workflow_categories (id),
    legacy_parent_id   integer,
    metadata           jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    constraint workflow_categories_name_not_blank check (btrim(name) <> ''),
    constraint workflow_categories_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.workflow_categories is
    'task template categories from dispatch_category; parent_id is linked after the load from '
    'legacy_parent_id (load/workflow_categories__link_parent.sql).';

create index if not exists workflow_categories_parent_id_idx on public.workflow_categories (parent_id);

create or replace trigger workflow_categories_touch_updated_at
    before update on public.workflow_categories
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- workflow templates
create table if not exists public.workflow_templates (
    id                 uuid primary key default migration.new_id(),
    legacy_template_id integer unique,
    task_name          text,
    action_name        text,
    text_name          text,
    function           text,
    legacy_function    integer,
    status             integer,
    duration           integer not null default 0,
    category_id        uuid references public.workflow_categories (id),
    legacy_category_id integer,
    order_type_id      uuid references public.order_types (id),
    legacy_course_id   integer,
    is_predefined      boolean not null default false,
    is_read_only       boolean not null default false,
    allowed_extensions text[],
    alerts             jsonb,
    per_jaw            boolean,
    metadata           jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    constraint workflow_templates_function_known check (function in ('process', 'archive', 'update')),
    constraint workflow_templates_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.workflow_templates is
    'workflow task templates from dispatch_template: one workflow step of one order type.';
comment on column public.workflow_templates.function is
    'dispatch_template.function: 1 process, 2 archive, 4 update; null for other codes (raw in legacy_function).';
comment on column public.workflow_templates.status is 'dispatch_template.status as is (1 = active per the production migration).';
comment on column public.workflow_templates.duration is 'dispatch_template.duration as is (unit undocumented, hours in samples).';
comment on column public.workflow_templates.order_type_id is 'the order type (dispatch_course) whose workflow this step belongs to.';
comment on column public.workflow_templates.allowed_extensions is
    'dispatch_template.extensions split on commas, trimmed and lower-cased.';
comment on column public.workflow_templates.alerts is 'dispatch_template.alerts as json (raw text in metadata.legacy_alerts when invalid).';
comment on column public.workflow_templates.per_jaw is 'dispatch_template.separate: the step is done once per arch.';

create index if not exists workflow_templates_category_id_idx on public.workflow_templates (category_id);
create index if not exists workflow_templates_order_type_id_idx on public.workflow_templates (order_type_id);

create or replace trigger workflow_templates_touch_updated_at
    before update on public.workflow_templates
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- template predecessors
create table if not exists public.workflow_template_predecessors (
    id                              uuid primary key default migration.new_id(),
    legacy_predecessor_id           integer unique,
    template_id                     uuid not null references public.workflow_templates (id),
    predecessor_id                  uuid not null references public.workflow_templates (id),
    legacy_template_id              integer,
    legacy_predecessor_template_id  integer,
    in_cycle                        boolean not null default false,
    cycle_template_ids              integer[],
    metadata                        jsonb not null default '{}'::jsonb,
    created_at                      timestamptz not null default now(),
    updated_at                      timestamptz not null default now(),
    constraint workflow_template_predecessors_pair_key unique (template_id, predecessor_id),
    constraint workflow_template_predecessors_cycle_listed
        check (in_cycle = (cycle_template_ids is not null)),
    constraint workflow_template_predecessors_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.workflow_template_predecessors is
    'the template graph from dispatch_template_predecessors: predecessor_id must be done before '
    'template_id. edges on a cycle are kept and flagged (in_cycle), never looped on.';
comment on column public.workflow_template_predecessors.in_cycle is
    'the edge lies on a cycle of the graph (the graph is not a dag there).';
comment on column public.workflow_template_predecessors.cycle_template_ids is
    'legacy ids of the templates on the cycle(s) through this edge (its strongly connected component).';

create index if not exists workflow_template_predecessors_predecessor_id_idx
    on public.workflow_template_predecessors (predecessor_id);

create or replace trigger workflow_template_predecessors_touch_updated_at
    before update on public.workflow_template_predecessors
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- workflow tasks
create table if not exists public.workflow_tasks (
    id                    uuid primary key default migration.new_id(),
    legacy_task_id        integer unique,
    order_id              uuid not null references public.orders (id),
    template_id           uuid not null references public.workflow_templates (id),
    treatment_plan_id     uuid references public.treatment_plans (id),
    file_id               uuid references public.files (id),
    actor_id              uuid references public.profiles (id),
    is_done               boolean not null,
    done_at               timestamptz,
    note                  text,
    jaw                   text,
    legacy_instruction_id integer,
    legacy_template_id    integer,
    legacy_plan_id        integer,
    legacy_file_id        integer,
    legacy_actor_id       integer,
    metadata              jsonb not null default '{}'::jsonb,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint workflow_tasks_jaw_known check (jaw in ('both', 'upper', 'lower')),
    constraint workflow_tasks_metadata_object check (jsonb_typeof(metadata) = 'object')
);

comment on table public.workflow_tasks is
    'per-order workflow task instances from dispatch_task (~1m rows): the order''s step of a '
    'template, whether and when it was done and by whom.';
comment on column public.workflow_tasks.is_done is 'dispatch_task.checked.';
comment on column public.workflow_tasks.note is
    'dispatch_task.text as written; mojibake repaired, original in metadata.legacy_text.';
comment on column public.workflow_tasks.jaw is
    'dispatch_task.jaw: 1 both, 2 upper, 3 lower; null when unset or unknown (raw in metadata.legacy_jaw).';

create index if not exists workflow_tasks_order_id_idx on public.workflow_tasks (order_id);
create index if not exists workflow_tasks_template_id_idx on public.workflow_tasks (template_id);
create index if not exists workflow_tasks_treatment_plan_id_idx on public.workflow_tasks (treatment_plan_id);
create index if not exists workflow_tasks_file_id_idx on public.workflow_tasks (file_id);
create index if not exists workflow_tasks_actor_id_idx on public.workflow_tasks (actor_id);

create or replace trigger workflow_tasks_touch_updated_at
    before update on public.workflow_tasks
    for each row execute function migration.touch_updated_at();

-- ---------------------------------------------------------------- audit trail
-- state changes and task completions of one order, with actor and time, in one place:
-- select * from public.order_audit_trail where order_id = $1 order by occurred_at.
-- security_invoker: a signed-in user sees the rows the base tables' policies show them.
create or replace view public.order_audit_trail with (security_invoker = true) as
select
    h.order_id,
    h.changed_at as occurred_at,
    'state_change'::text as event,
    s.code as detail,
    h.is_active,
    h.actor_id,
    h.legacy_actor_id,
    'dispatch_state'::text as legacy_table,
    h.legacy_state_id as legacy_id
from public.order_state_history as h
join public.order_states as s on s.id = h.order_state_id
union all
select
    t.order_id,
    t.done_at,
    'task_completed'::text,
    tpl.task_name,
    null::boolean,
    t.actor_id,
    t.legacy_actor_id,
    'dispatch_task'::text,
    t.legacy_task_id
from public.workflow_tasks as t
join public.workflow_templates as tpl on tpl.id = t.template_id
where t.is_done and t.done_at is not null;

comment on view public.order_audit_trail is
    'audit trail per order: state changes (order_state_history) and task completions '
    '(workflow_tasks done with a time), each with actor and timestamp and its legacy row.';

-- ---------------------------------------------------------------- grants
revoke all on public.order_states, public.order_state_history, public.workflow_categories,
    public.workflow_templates, public.workflow_template_predecessors, public.workflow_tasks,
    public.order_audit_trail
    from anon;
revoke insert, update, delete, truncate on public.order_states, public.order_state_history,
    public.workflow_categories, public.workflow_templates, public.workflow_template_predecessors,
    public.workflow_tasks
    from authenticated;
grant select, insert, update, delete on public.order_states, public.order_state_history,
    public.workflow_categories, public.workflow_templates, public.workflow_template_predecessors,
    public.workflow_tasks
    to service_role;
grant select on public.order_states, public.order_state_history, public.workflow_categories,
    public.workflow_templates, public.workflow_template_predecessors, public.workflow_tasks,
    public.order_audit_trail
    to authenticated, service_role;

-- ---------------------------------------------------------------- row level security
alter table public.order_states enable row level security;
alter table public.order_state_history enable row level security;
alter table public.workflow_categories enable row level security;
alter table public.workflow_templates enable row level security;
alter table public.workflow_template_predecessors enable row level security;
alter table public.workflow_tasks enable row level security;

do $$
declare
    table_name text;
begin
    foreach table_name in array array[
        'order_states', 'order_state_history', 'workflow_categories', 'workflow_templates',
        'workflow_template_predecessors', 'workflow_tasks'
    ] loop
        execute format('drop policy if exists %I on public.%I', table_name || '_service_role_all', table_name);
        execute format(
            'create policy %I on public.%I for all to service_role using (true) with check (true)',
            table_name || '_service_role_all', table_name
        );
    end loop;
    -- reference data: every signed-in user reads it.
    foreach table_name in array array[
        'order_states', 'workflow_categories', 'workflow_templates', 'workflow_template_predecessors'
    ] loop
        execute format('drop policy if exists %I on public.%I', table_name || '_select_authenticated', table_name);
        execute format(
            'create policy %I on public.%I for select to authenticated using (true)',
            table_name || '_select_authenticated', table_name
        );
    end loop;
end
$$;

-- per-order rows: staff, the order's doctor and the order's patient.
drop policy if exists order_state_history_select_authenticated on public.order_state_history;
create policy order_state_history_select_authenticated on public.order_state_history
    for select to authenticated
    using (
        (select public.is_staff())
        or exists (
            select 1
            from public.orders o
            where o.id = order_state_history.order_id
              and (select public.current_profile_id()) in (o.doctor_id, o.patient_id)
        )
    );

drop policy if exists workflow_tasks_select_authenticated on public.workflow_tasks;
create policy workflow_tasks_select_authenticated on public.workflow_tasks
    for select to authenticated
    using (
        (select public.is_staff())
        or exists (
            select 1
            from public.orders o
            where o.id = workflow_tasks.order_id
              and (select public.current_profile_id()) in (o.doctor_id, o.patient_id)
        )
    );
