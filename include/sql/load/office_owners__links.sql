-- load/office_owners__links.sql
-- purpose: once the ownership links of the run are upserted, (1) take the ownership mark off a
--          link whose office now has another owner, and (2) choose every doctor's primary
--          office among all of their links (m2m and ownership alike).
--   (1) an office that changed owner: the upsert has put legacy_owner_office_id on the new
--       owner's link; the old link still carries it (the unique constraint is deferred to
--       commit for exactly this). an old link that also has an m2m row keeps the link and
--       loses the mark; an old ownership-only link has no legacy source left and is deleted
--       (it was derived from dispatch_office, which stays migrated as public.offices).
--   (2) primary office, one per doctor with any link: an office the doctor owns, then the
--       office with most of the doctor's patients (profiles whose patient_doctor_id and
--       patient_office_id are that pair, phase 1's care-team link), then the lowest legacy
--       office id. deterministic, so a rerun chooses the same office.
-- inputs: staging.office_owners__validated (this run's ownership links), public.doctor_offices,
--         public.profiles.
-- runs: after the office_owners upsert, in the same transaction (EntitySpec.post_load_sql).
-- idempotent: set-based; only rows whose mark or primary flag differ are written, so a rerun
--             writes nothing. links the application creates (legacy_link null) are never
--             deleted, though they take part in the primary choice.

delete from public.doctor_offices as d
using staging.office_owners__validated as v
where d.legacy_owner_office_id = v.legacy_owner_office_id
  and d.legacy_link <> v.legacy_link
  and d.legacy_office_doctor_id is null;

update public.doctor_offices as d
set legacy_owner_office_id = null
from staging.office_owners__validated as v
where d.legacy_owner_office_id = v.legacy_owner_office_id
  and d.legacy_link <> v.legacy_link;

-- the primary choice is computed once, then cleared before it is set: the one-primary-per-
-- doctor index is checked row by row, so a doctor whose primary moves must pass through "none".
create temporary table office_owners__primary on commit drop as
with patients as (
    select p.patient_doctor_id as doctor_id, p.patient_office_id as office_id, count(*) as patients
    from public.profiles as p
    where p.patient_doctor_id is not null and p.patient_office_id is not null
    group by p.patient_doctor_id, p.patient_office_id
)

select
    d.id,
    row_number() over (
        partition by d.doctor_id
        order by d.is_owner desc, coalesce(pt.patients, 0) desc, d.legacy_office_id nulls last, d.id
    ) = 1 as is_primary
from public.doctor_offices as d
left join patients as pt on pt.doctor_id = d.doctor_id and pt.office_id = d.office_id;

update public.doctor_offices as d
set is_primary = false
from office_owners__primary as r
where r.id = d.id and d.is_primary and not r.is_primary;

update public.doctor_offices as d
set is_primary = true
from office_owners__primary as r
where r.id = d.id and not d.is_primary and r.is_primary;
