-- transform/order_types.sql
-- purpose: shape every staged dispatch_course row as a public.order_types row (one row per
--          course), merged into the seeded standard types by code:
--   * code via ref_course_order_type (1 main, 2 refinement, 3 replacement, 4 any, 7 invoice,
--     8 merchandise); any other course id -> 'course_<id>' (kept, never folded into main).
--   * is_order_type from the same map: only main, refinement and replacement are orders
--     (legacy-system.md §1a, the human-written prompt); unmapped courses -> false.
--   * name trimmed; blank -> the map's name for a known course, else null so the suite
--     quarantines the row (rule order_types.name_present).
--   * customization parsed with migration.try_jsonb: invalid json -> null, raw text in
--     metadata.legacy_customization; dispatch_course.type kept raw (legacy_course_type).
-- inputs: staging.order_types__dispatch_course; temp table ref_course_order_type.
-- output: staging.order_types__transformed, columns and types of public.order_types. the load
--         upserts on code, so course 1 updates the seeded 'main' row and sets its legacy id.
-- idempotent: reads only staged rows and the code map; drops and rebuilds its output; no
--             ids, no now().

drop table if exists staging.order_types__transformed;

create unlogged table staging.order_types__transformed as
with
source as (
    select c.*
    from staging.order_types__dispatch_course as c
),

-- one row per course: ref_course_order_type has one row per course id.
mapped as (
    select
        s.*,
        r.code as known_code,
        r.name as known_name,
        r.is_order_type as known_is_order_type,
        nullif(btrim(s.customization), '') as raw_customization,
        migration.try_jsonb(nullif(btrim(s.customization), '')) as customization_json
    from source as s
    left join ref_course_order_type as r on r.course_id = s.id
)

select
    coalesce(m.known_code, 'course_' || m.id)::text as code,
    coalesce(nullif(btrim(m.name), ''), m.known_name)::text as name,
    coalesce(m.known_is_order_type, false)::boolean as is_order_type,
    m.id::integer as legacy_course_id,
    m.type::integer as legacy_course_type,
    nullif(m.customization_json, 'null'::jsonb)::jsonb as customization,
    jsonb_strip_nulls(jsonb_build_object(
        'legacy_customization',
            case when m.raw_customization is not null and m.customization_json is null
                then m.raw_customization
            end,
        'legacy_name',
            case when nullif(btrim(m.name), '') is null and m.known_name is not null
                then m.name
            end
    ))::jsonb as metadata
from mapped as m;
