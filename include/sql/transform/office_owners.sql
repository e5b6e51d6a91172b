-- transform/office_owners.sql
-- purpose: shape every staged dispatch_office row as the link between the office and its
--          owner (dispatch_office.doctor_id), one row per office, into public.doctor_offices:
--   * an owner who also has a dispatch_office_doctors row for the office shares that row's
--     legacy_link ('<office id>:<owner user id>'), so the upsert marks the existing link as the
--     ownership (legacy_owner_office_id) instead of adding a second one; an owner without an
--     m2m row gets a link of its own. every office therefore has exactly one ownership link;
--   * doctor and office resolved through the target's lineage (profiles.legacy_user_id,
--     offices.legacy_office_id); an unresolved parent leaves a null fk and the suite
--     quarantines the office's ownership (office_owners.doctor_resolves / .office_resolves:
--     e.g. an office quarantined in phase 1 for an impossible tax rate).
--   the post-load step (load/office_owners__links.sql) moves an ownership mark when an office
--   changed owner and recomputes every doctor's primary office.
-- inputs: staging.office_owners__dispatch_office; public.profiles, public.offices.
-- output: staging.office_owners__transformed, columns and types of public.doctor_offices.
-- idempotent: reads only staged rows and target lineage; drops and rebuilds its output; no ids,
--             no now().

drop table if exists staging.office_owners__transformed;

create unlogged table staging.office_owners__transformed as
select
    o.id::integer as legacy_owner_office_id,
    concat(o.id, ':', o.doctor_id)::text as legacy_link,
    o.doctor_id::integer as legacy_doctor_user_id,
    o.id::integer as legacy_office_id,
    doctor.id::uuid as doctor_id,
    office.id::uuid as office_id
from staging.office_owners__dispatch_office as o
left join public.profiles as doctor on doctor.legacy_user_id = o.doctor_id
left join public.offices as office on office.legacy_office_id = o.id;
