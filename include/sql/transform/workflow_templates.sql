-- transform/workflow_templates.sql
-- purpose: shape every staged dispatch_template row as a public.workflow_templates row (one
--          per template):
--   * names kept (trimmed; blank -> null); function via ref_template_function (1 process,
--     2 archive, 4 update), any other code -> null, the raw code always kept (legacy_function);
--     status and duration as is (meanings undocumented beyond status 1 = active);
--   * category: the migrated category with legacy_category_id = category_id; order type: the
--     migrated order type with legacy_course_id = course_id (phase 1). a missing parent leaves
--     the foreign key null with the raw id kept: a template is reference data that every task
--     of its step points at, so it is never held back for a category or course;
--   * extensions 'jpg, PNG' -> {jpg,png} (split on commas, trimmed, lower-cased, blanks dropped);
--     alerts parsed with migration.try_jsonb, invalid json -> null with the raw text in
--     metadata.legacy_alerts; separate -> per_jaw; predefined, read_only as is.
-- inputs: staging.workflow_templates__dispatch_template; temp table ref_template_function;
--         public.workflow_categories (loaded first in this phase), public.order_types.
-- output: staging.workflow_templates__transformed, columns and types of public.workflow_templates
--         (minus id and timestamps).
-- idempotent: reads only staged rows, the code map and loaded parents; drops and rebuilds its
--             output; no ids, no now().

drop table if exists staging.workflow_templates__transformed;

create unlogged table staging.workflow_templates__transformed as
with templates as (
    select
        t.*,
        nullif(btrim(t.alerts), '') as raw_alerts,
        migration.try_jsonb(nullif(btrim(t.alerts), '')) as alerts_json,
        (
            select array_agg(lower(btrim(part)) order by position)
            from unnest(string_to_array(t.extensions, ',')) with ordinality as e (part, position)
            where btrim(part) <> ''
        ) as extension_list
    from staging.workflow_templates__dispatch_template as t
)

select
    t.id::integer as legacy_template_id,
    nullif(btrim(t.task_name), '')::text as task_name,
    nullif(btrim(t.action_name), '')::text as action_name,
    nullif(btrim(t.text_name), '')::text as text_name,
    f.label::text as function,
    t.function::integer as legacy_function,
    t.status::integer as status,
    t.duration::integer as duration,
    c.id::uuid as category_id,
    t.category_id::integer as legacy_category_id,
    ot.id::uuid as order_type_id,
    t.course_id::integer as legacy_course_id,
    t.predefined::boolean as is_predefined,
    t.read_only::boolean as is_read_only,
    t.extension_list::text[] as allowed_extensions,
    nullif(t.alerts_json, 'null'::jsonb)::jsonb as alerts,
    t.separate::boolean as per_jaw,
    jsonb_strip_nulls(jsonb_build_object(
        'legacy_alerts',
            case when t.raw_alerts is not null and t.alerts_json is null then t.raw_alerts end
    ))::jsonb as metadata
from templates as t
left join ref_template_function as f on f.function = t.function
left join public.workflow_categories as c on c.legacy_category_id = t.category_id
left join public.order_types as ot on ot.legacy_course_id = t.course_id;
