-- transform/plan_comments.sql
-- purpose: shape every staged dispatch_comment row as a public.messages row of type
--          'plan_comment' (one per comment), tied to its treatment plan and, through the plan,
--          to the plan's order, project and the order's patient:
--   * the plan is the migrated treatment plan with legacy_plan_id = plan_id; a plan that is
--     not in the target (quarantined or not migrated in phase 2) leaves treatment_plan_id
--     null and the suite quarantines the comment (rule plan_comments.plan_migrated):
--     never dropped, and a later run loads it once the plan arrives;
--   * the author is the profile of author_id (null when not migrated; raw id kept);
--   * lineage as for records: legacy_target_type 'dispatch.plan', legacy_target_id = plan_id;
--   * text kept exactly (null stays null); the engine's text-repair step fixes mojibake
--     afterwards (original in metadata.legacy_text).
-- inputs: staging.plan_comments__dispatch_comment; public.message_types, public.profiles,
--         public.treatment_plans, public.orders.
-- output: staging.plan_comments__transformed, columns and types of public.messages (the ones a
--         plan comment fills: no record columns).
-- idempotent: reads only staged rows and loaded parents; drops and rebuilds its output; no
--             ids, no now().

drop table if exists staging.plan_comments__transformed;

create unlogged table staging.plan_comments__transformed as
select
    c.id::integer as legacy_comment_id,
    mt.id::uuid as message_type_id,
    c.text::text as content,
    c.created_at::timestamptz as sent_at,
    author.id::uuid as author_id,
    o.patient_id::uuid as patient_id,
    plan.order_id::uuid as order_id,
    plan.project_id::uuid as project_id,
    plan.id::uuid as treatment_plan_id,
    c.author_id::integer as legacy_author_id,
    'dispatch.plan'::text as legacy_target_type,
    c.plan_id::integer as legacy_target_id,
    '{}'::jsonb as metadata
from staging.plan_comments__dispatch_comment as c
left join public.message_types as mt on mt.code = 'plan_comment'
left join public.profiles as author on author.legacy_user_id = c.author_id
left join public.treatment_plans as plan on plan.legacy_plan_id = c.plan_id
left join public.orders as o on o.id = plan.order_id;
