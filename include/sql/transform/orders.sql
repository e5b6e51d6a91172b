-- transform/orders.sql
-- purpose: shape every staged dispatch_instruction row (the order) as a public.orders row,
--          one row per instruction, soft-deleted ones included:
--   * patient: the profile migration.legacy_patient_profile maps instruction.patient_id to (the
--     target's lineage, which de-duplication extends; never a cached map). no profile -> null
--     patient_id and the suite quarantines the order (orders.patient_resolves);
--   * doctor and office: the patient's (profiles.patient_doctor_id / patient_office_id), since
--     instructions carry neither (legacy-system.md §1c #14). a patient without one gives null,
--     flagged 'doctor_missing' / 'office_missing': never guessed from another order or office;
--   * order type: order_types.legacy_course_id = course_id; a course that is not in the target
--     (quarantined in phase 1) is quarantined here too (orders.order_type_resolves, via the
--     helper column _unresolved_course_id); no course at all -> null, flagged
--     'order_type_missing';
--   * status via ref_order_status (0 no_product, 1 submitted, 2 approved, 4 shipped); any other
--     code -> null, flagged 'status_unknown', raw code always in legacy_status (not quarantined:
--     the order is real, only its status code is unreadable);
--   * jaws: upper_jaw_id / lower_jaw_id resolved through jaws.legacy_jaw_id (raw ids kept); a
--     referenced jaw that is not in the target is quarantined (orders.jaws_resolve, via
--     _unresolved_jaw_id);
--   * order_number = the patient's suffix || '-' || instruction id (legacy-system.md §1a), or
--     the instruction id alone when the patient has no valid suffix (§1c #11);
--   * deleted = true -> deleted_at = updated_at; without updated_at, the deleted_at an earlier
--     run recorded, else the run's as_of (so a rerun keeps the first value): kept, not dropped
--     (§1c #23: the earlier migration excluded them);
--   * exports parsed with migration.try_jsonb; invalid json -> null, raw text in
--     metadata.legacy_exports (§1c #18); free texts trimmed, blank -> null.
-- inputs: staging.orders__dispatch_instruction; temp table ref_order_status; setting
--         migration.as_of; public.profiles (through migration.legacy_patient_profile),
--         public.order_types, public.jaws, public.orders (deleted_at of earlier runs).
-- output: staging.orders__transformed, columns and types of public.orders, plus helper columns
--         (_unresolved_*) that the suite reads and the load ignores.
-- idempotent: reads only staged rows, code maps, target lineage and migration.as_of; drops and
--             rebuilds its output; no ids, no now().

drop table if exists staging.orders__transformed;

create unlogged table staging.orders__transformed as
with
run as (
    select current_setting('migration.as_of')::timestamptz as as_of
),

resolved as (
    select
        i.*,
        pp.profile_id as patient_profile_id,
        patient.patient_suffix,
        patient.patient_doctor_id,
        patient.patient_office_id,
        order_type.id as order_type_uuid,
        upper_jaw.id as upper_jaw_uuid,
        lower_jaw.id as lower_jaw_uuid,
        rs.order_status,
        nullif(btrim(i.exports), '') as raw_exports,
        migration.try_jsonb(nullif(btrim(i.exports), '')) as exports_json,
        existing.deleted_at as recorded_deleted_at
    from staging.orders__dispatch_instruction as i
    left join migration.legacy_patient_profile as pp on pp.legacy_patient_id = i.patient_id
    left join public.profiles as patient on patient.id = pp.profile_id
    left join public.order_types as order_type on order_type.legacy_course_id = i.course_id
    left join public.jaws as upper_jaw on upper_jaw.legacy_jaw_id = i.upper_jaw_id
    left join public.jaws as lower_jaw on lower_jaw.legacy_jaw_id = i.lower_jaw_id
    left join ref_order_status as rs on rs.status = i.status
    left join public.orders as existing on existing.legacy_instruction_id = i.id
)

select
    r.id::integer as legacy_instruction_id,
    (case
        when r.patient_suffix is not null then r.patient_suffix || '-' || r.id
        else r.id::text
    end)::text as order_number,
    r.patient_profile_id::uuid as patient_id,
    r.patient_doctor_id::uuid as doctor_id,
    r.patient_office_id::uuid as office_id,
    r.order_type_uuid::uuid as order_type_id,
    r.order_status::public.order_status as status,
    r.status::integer as legacy_status,
    r.upper_jaw_uuid::uuid as upper_jaw_id,
    r.lower_jaw_uuid::uuid as lower_jaw_id,
    r.patient_id::integer as legacy_patient_id,
    r.course_id::integer as legacy_course_id,
    r.upper_jaw_id::integer as legacy_upper_jaw_id,
    r.lower_jaw_id::integer as legacy_lower_jaw_id,
    nullif(btrim(r.notes), '')::text as notes,
    nullif(btrim(r.complaint), '')::text as complaint,
    nullif(btrim(r.conditions), '')::text as conditions,
    nullif(btrim(r.objective), '')::text as objective,
    nullif(btrim(r.scanner_notes), '')::text as scanner_notes,
    nullif(r.exports_json, 'null'::jsonb)::jsonb as exports,
    r.price::numeric(10, 2) as price,
    r.model::integer as legacy_model,
    r.scanner::integer as legacy_scanner,
    r."order"::integer as legacy_order,
    r.cbct::boolean as cbct,
    r.comprehensive::boolean as comprehensive,
    r.accept_extraction::boolean as accept_extraction,
    nullif(btrim(r.suffix), '')::text as suffix,
    r.submitted_at::timestamptz as submitted_at,
    r.updated_at::timestamptz as legacy_updated_at,
    (case
        when r.deleted then coalesce(r.updated_at, r.recorded_deleted_at, run.as_of)
    end)::timestamptz as deleted_at,
    array_remove(array[
        case when r.order_status is null then 'status_unknown' end,
        case when r.patient_doctor_id is null then 'doctor_missing' end,
        case when r.patient_office_id is null then 'office_missing' end,
        case when r.course_id is null then 'order_type_missing' end
    ], null)::text[] as flags,
    jsonb_strip_nulls(jsonb_build_object(
        'legacy_exports',
            case when r.raw_exports is not null and r.exports_json is null then r.raw_exports end
    ))::jsonb as metadata,
    (case
        when r.course_id is not null and r.order_type_uuid is null then r.course_id
    end)::integer as _unresolved_course_id,
    (case
        when r.upper_jaw_id is not null and r.upper_jaw_uuid is null then r.upper_jaw_id
        when r.lower_jaw_id is not null and r.lower_jaw_uuid is null then r.lower_jaw_id
    end)::integer as _unresolved_jaw_id
from resolved as r
cross join run;
