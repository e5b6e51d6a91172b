-- transform/workflow_tasks.sql
-- purpose: shape every staged dispatch_task row as a public.workflow_tasks row (one per task,
--          ~1m rows at production scale: one set-based statement, hash joins on the parents'
--          legacy ids, no per-row work):
--   * the order (legacy_instruction_id) and the template (legacy_template_id) define a task:
--     when either is not in the target the key is null and the suite quarantines the task
--     under the rule naming which (workflow_tasks.order_migrated, .template_migrated; the
--     earlier migration lost 6,358 tasks of unmigrated orders silently);
--   * plan, file and actor are optional: a missing one leaves the key null with the raw id
--     kept (legacy_plan_id, legacy_file_id, legacy_actor_id), never held back;
--   * checked -> is_done, done_at and text (note) as is (the engine repairs mojibake in the
--     note afterwards, original in metadata.legacy_text); jaw via ref_task_jaw (1 both,
--     2 upper, 3 lower), an unknown code -> null with the raw code in metadata.legacy_jaw.
-- inputs: staging.workflow_tasks__dispatch_task; temp table ref_task_jaw; public.orders,
--         public.workflow_templates (loaded first in this phase), public.treatment_plans,
--         public.files, public.profiles.
-- output: staging.workflow_tasks__transformed, columns and types of public.workflow_tasks
--         (minus id and timestamps).
-- idempotent: reads only staged rows, the code map and loaded parents; drops and rebuilds its
--             output; no ids, no now().

drop table if exists staging.workflow_tasks__transformed;

create unlogged table staging.workflow_tasks__transformed as
select
    t.id::integer as legacy_task_id,
    o.id::uuid as order_id,
    tpl.id::uuid as template_id,
    plan.id::uuid as treatment_plan_id,
    f.id::uuid as file_id,
    actor.id::uuid as actor_id,
    t.checked::boolean as is_done,
    t.done_at::timestamptz as done_at,
    t.text::text as note,
    jaw.label::text as jaw,
    t.instruction_id::integer as legacy_instruction_id,
    t.template_id::integer as legacy_template_id,
    t.plan_id::integer as legacy_plan_id,
    t.file_id::integer as legacy_file_id,
    t.actor_id::integer as legacy_actor_id,
    (case
        when t.jaw is not null and jaw.label is null then jsonb_build_object('legacy_jaw', t.jaw)
        else '{}'::jsonb
    end)::jsonb as metadata
from staging.workflow_tasks__dispatch_task as t
left join public.orders as o on o.legacy_instruction_id = t.instruction_id
left join public.workflow_templates as tpl on tpl.legacy_template_id = t.template_id
left join public.treatment_plans as plan on plan.legacy_plan_id = t.plan_id
left join public.files as f on f.legacy_file_id = t.file_id
left join public.profiles as actor on actor.legacy_user_id = t.actor_id
left join ref_task_jaw as jaw on jaw.jaw = t.jaw;
