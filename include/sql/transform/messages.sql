-- transform/messages.sql
-- purpose: shape every staged dispatch_record row as a public.messages row (one per record),
--          with the django generic relation (target_type_id, target_id) replaced by an
--          explicit foreign key:
--   * the content type is looked up in the staged django_content_type and matched to the
--     entity's relation configuration (ref_generic_relations) by (app_label, model), never by
--     id: ids differ between databases;
--   * generic_targets holds every legacy id of each configured model with the target row it
--     became, so each record resolves to exactly one case (helper column _target_resolution):
--       null_type          target_type_id is null                   -> messages.target_type_present
--       namesake_type      a content type of another app named like a mapped model (a third-party
--                          users.user beside auth.user): never resolved by model name alone
--                                                                    -> messages.target_type_namesake
--       unknown_type       any other content type the configuration does not map
--                          (sessions.session, stale models) or an id not in django_content_type
--                                                                    -> messages.target_type_mapped
--       missing_in_legacy  no legacy row with that id (dangling)     -> messages.target_exists
--       not_migrated       the legacy row exists, its target row does not (quarantined or not
--                          yet migrated upstream)                    -> messages.target_migrated
--       resolved           the fk column named by the configuration gets the target id
--     the suite quarantines every case but resolved, each under its own rule: never dropped,
--     never guessed;
--   * derived links: a record about an order is also about the order's patient; one about a
--     treatment plan also about its order, project and patient;
--   * type via ref_record_message_type; null and unknown codes -> 'general', raw code kept in
--     legacy_type (phase3_codes.py); the author is the profile of author_id (null when the
--     author is null or not migrated; raw id kept in legacy_author_id);
--   * text kept exactly; the engine's text-repair step fixes mojibake afterwards (original in
--     metadata.legacy_text).
-- inputs: staging.messages__dispatch_record, staging.messages__django_content_type; temp tables
--         ref_record_message_type, ref_generic_relations, generic_targets (built by the engine
--         from the spec's generic_relations and the staged legacy id tables); public.message_types,
--         public.profiles, public.orders, public.treatment_plans.
-- output: staging.messages__transformed, columns and types of public.messages (minus id,
--         legacy_comment_id and the timestamps the table maintains) plus _target_resolution.
-- idempotent: reads only staged rows, code maps and loaded parents; drops and rebuilds its
--             output; no ids, no now(): the same input always gives the same rows.

drop table if exists staging.messages__transformed;

create unlogged table staging.messages__transformed as
with
content_types as (
    select
        ct.id as content_type_id,
        ct.app_label,
        ct.model,
        rel.fk_column,
        exists (
            select from ref_generic_relations as mapped
            where mapped.model = ct.model and mapped.app_label <> ct.app_label
        ) as namesake
    from staging.messages__django_content_type as ct
    left join ref_generic_relations as rel
        on rel.app_label = ct.app_label and rel.model = ct.model
),

resolved as (
    select
        r.*,
        ct.app_label,
        ct.model,
        ct.fk_column,
        gt.target_id as target_uuid,
        case
            when r.target_type_id is null then 'null_type'
            when ct.fk_column is null and ct.namesake then 'namesake_type'
            when ct.fk_column is null then 'unknown_type'
            when gt.legacy_id is null then 'missing_in_legacy'
            when gt.target_id is null then 'not_migrated'
            else 'resolved'
        end as resolution
    from staging.messages__dispatch_record as r
    left join content_types as ct on ct.content_type_id = r.target_type_id
    left join generic_targets as gt
        on gt.app_label = ct.app_label and gt.model = ct.model and gt.legacy_id = r.target_id
),

linked as (
    select
        r.*,
        case when r.fk_column = 'patient_id' then r.target_uuid end as target_patient_id,
        case when r.fk_column = 'recipient_id' then r.target_uuid end as target_recipient_id,
        case when r.fk_column = 'order_id' then r.target_uuid end as target_order_id,
        case when r.fk_column = 'project_id' then r.target_uuid end as target_project_id,
        case when r.fk_column = 'treatment_plan_id' then r.target_uuid end as target_plan_id
    from resolved as r
)

select
    l.id::integer as legacy_record_id,
    mt.id::uuid as message_type_id,
    l.text::text as content,
    l.created_at::timestamptz as sent_at,
    l.public::boolean as is_public,
    author.id::uuid as author_id,
    coalesce(l.target_patient_id, target_order.patient_id, plan_order.patient_id)::uuid as patient_id,
    l.target_recipient_id::uuid as recipient_id,
    coalesce(l.target_order_id, plan.order_id)::uuid as order_id,
    coalesce(l.target_project_id, plan.project_id)::uuid as project_id,
    l.target_plan_id::uuid as treatment_plan_id,
    l.type::integer as legacy_type,
    l.author_id::integer as legacy_author_id,
    (l.app_label || '.' || l.model)::text as legacy_target_type,
    l.target_id::integer as legacy_target_id,
    l.group_id::integer as legacy_group_id,
    '{}'::jsonb as metadata,
    l.resolution::text as _target_resolution
from linked as l
left join ref_record_message_type as rt on rt.record_type = l.type
left join public.message_types as mt on mt.code = coalesce(rt.message_type, 'general')
left join public.profiles as author on author.legacy_user_id = l.author_id
left join public.orders as target_order on target_order.id = l.target_order_id
left join public.treatment_plans as plan on plan.id = l.target_plan_id
left join public.orders as plan_order on plan_order.id = plan.order_id;
