-- transform/projects.sql
-- purpose: shape every staged dispatch_project row (a 3-d asset) as a public.projects row, one
--          row per project, linked to its order through the plans that use it (dispatch_plan;
--          a project row has no instruction column, legacy-system.md §1a):
--   * the distinct instructions of the project's plans: exactly one -> that order, resolved
--     through orders.legacy_instruction_id (an order that is not in the target quarantines the
--     project: projects.order_resolves, via _unresolved_instruction_id); none -> order_id null,
--     flagged 'no_plan'; several -> null, flagged 'several_orders' with the instruction ids in
--     metadata.legacy_instruction_ids (never picked: §1c #20). several plans of one order
--     sharing a project (revisions) is the normal case and links to that order;
--   * type via ref_project_type (0 unspecified, 3 treatment_plan), status via
--     ref_project_status (0 active); other codes -> null, flagged 'type_unknown' /
--     'status_unknown', raw codes always in legacy_type / legacy_status;
--   * creator through profiles.legacy_user_id; no creator (most projects, §1c #25) -> null; a
--     creator who is not in the target quarantines the project (projects.creator_resolves);
--   * name trimmed, blank -> null (numeric-string names kept as they are).
-- inputs: staging.projects__dispatch_project, staging.projects__dispatch_plan (id, instruction,
--         project); temp tables ref_project_type, ref_project_status; public.orders,
--         public.profiles.
-- output: staging.projects__transformed, columns and types of public.projects, plus helper
--         columns (_unresolved_*) that the suite reads and the load ignores.
-- idempotent: reads only staged rows, code maps and target lineage; drops and rebuilds its
--             output; no ids, no now().

drop table if exists staging.projects__transformed;

create unlogged table staging.projects__transformed as
with
plan_orders as (
    select
        p.project_id,
        array_agg(distinct p.instruction_id order by p.instruction_id) as instruction_ids
    from staging.projects__dispatch_plan as p
    group by p.project_id
),

linked as (
    select
        pr.*,
        po.instruction_ids,
        case when cardinality(po.instruction_ids) = 1 then po.instruction_ids[1] end
            as single_instruction_id
    from staging.projects__dispatch_project as pr
    left join plan_orders as po on po.project_id = pr.id
),

resolved as (
    select
        l.*,
        o.id as order_uuid,
        creator.id as creator_uuid,
        rt.project_type,
        rs.project_status
    from linked as l
    left join public.orders as o on o.legacy_instruction_id = l.single_instruction_id
    left join public.profiles as creator on creator.legacy_user_id = l.creator_id
    left join ref_project_type as rt on rt.type = l.type
    left join ref_project_status as rs on rs.status = l.status
)

select
    r.id::integer as legacy_project_id,
    r.uid::uuid as legacy_uid,
    r.order_uuid::uuid as order_id,
    r.single_instruction_id::integer as legacy_instruction_id,
    r.creator_uuid::uuid as creator_id,
    r.creator_id::integer as legacy_creator_user_id,
    nullif(btrim(r.name), '')::text as name,
    r.size::bigint as size_bytes,
    r.project_type::public.project_type as project_type,
    r.type::integer as legacy_type,
    r.project_status::public.project_status as project_status,
    r.status::integer as legacy_status,
    r.public::boolean as is_public,
    r.created_at::timestamptz as legacy_created_at,
    array_remove(array[
        case when r.project_type is null then 'type_unknown' end,
        case when r.project_status is null then 'status_unknown' end,
        case when r.instruction_ids is null then 'no_plan' end,
        case when cardinality(r.instruction_ids) > 1 then 'several_orders' end
    ], null)::text[] as flags,
    jsonb_strip_nulls(jsonb_build_object(
        'legacy_instruction_ids',
            case when cardinality(r.instruction_ids) > 1 then to_jsonb(r.instruction_ids) end
    ))::jsonb as metadata,
    (case
        when r.single_instruction_id is not null and r.order_uuid is null
            then r.single_instruction_id
    end)::integer as _unresolved_instruction_id,
    (case
        when r.creator_id is not null and r.creator_uuid is null then r.creator_id
    end)::integer as _unresolved_creator_user_id
from resolved as r;
