-- transform/treatment_plans.sql
-- purpose: shape every staged dispatch_plan row (a treatment plan revision: TP1, TP2 ...) as a
--          public.treatment_plans row, one row per plan, kept as its own table because several
--          plans may share one project (legacy-system.md §1a, §1c #20):
--   * order through orders.legacy_instruction_id, project through projects.legacy_project_id;
--     both are required (dispatch_plan.instruction_id and project_id are NOT NULL), so a parent
--     that is not in the target quarantines the plan (treatment_plans.order_resolves /
--     .project_resolves) until a later run loads it;
--   * number, original kept; name and notes trimmed, blank -> null.
-- inputs: staging.treatment_plans__dispatch_plan; public.orders, public.projects.
-- output: staging.treatment_plans__transformed, columns and types of public.treatment_plans.
-- idempotent: reads only staged rows and target lineage; drops and rebuilds its output; no ids,
--             no now().

drop table if exists staging.treatment_plans__transformed;

create unlogged table staging.treatment_plans__transformed as
select
    p.id::integer as legacy_plan_id,
    o.id::uuid as order_id,
    pr.id::uuid as project_id,
    p.instruction_id::integer as legacy_instruction_id,
    p.project_id::integer as legacy_project_id,
    p.number::integer as plan_number,
    nullif(btrim(p.name), '')::text as name,
    nullif(btrim(p.notes), '')::text as notes,
    p.original::boolean as is_original
from staging.treatment_plans__dispatch_plan as p
left join public.orders as o on o.legacy_instruction_id = p.instruction_id
left join public.projects as pr on pr.legacy_project_id = p.project_id;
