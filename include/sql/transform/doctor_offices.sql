-- transform/doctor_offices.sql
-- purpose: shape every staged dispatch_office_doctors row (the office <-> doctor m2m) as a
--          public.doctor_offices link, one row per m2m row:
--   * doctor resolved through profiles.legacy_user_id = user_id, office through
--     offices.legacy_office_id = office_id (the target's lineage, never a cached map); a
--     parent that is not in the target (quarantined in phase 1, or missing) leaves a null fk,
--     so the suite quarantines the link (doctor_offices.doctor_resolves / .office_resolves);
--   * legacy_link = '<office id>:<user id>' is the upsert key this entity shares with
--     office_owners (an office's owner, dispatch_office.doctor_id): both legacy rows of one
--     (doctor, office) pair land on the same link. ownership and the primary office are set by
--     office_owners, never here, so the two entities never overwrite each other's columns.
-- inputs: staging.doctor_offices__dispatch_office_doctors; public.profiles, public.offices.
-- output: staging.doctor_offices__transformed, columns and types of public.doctor_offices.
-- idempotent: reads only staged rows and target lineage; drops and rebuilds its output; no ids,
--             no now(): the same input always gives the same rows.

drop table if exists staging.doctor_offices__transformed;

create unlogged table staging.doctor_offices__transformed as
select
    m.id::integer as legacy_office_doctor_id,
    concat(m.office_id, ':', m.user_id)::text as legacy_link,
    m.user_id::integer as legacy_doctor_user_id,
    m.office_id::integer as legacy_office_id,
    doctor.id::uuid as doctor_id,
    office.id::uuid as office_id
from staging.doctor_offices__dispatch_office_doctors as m
left join public.profiles as doctor on doctor.legacy_user_id = m.user_id
left join public.offices as office on office.legacy_office_id = m.office_id;
