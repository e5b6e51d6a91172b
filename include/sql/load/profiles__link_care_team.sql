-- load/profiles__link_care_team.sql
-- purpose: resolve each migrated profile's care team into foreign keys, once every profile of
--          the run exists: patient_doctor_id = the profile of legacy_doctor_user_id,
--          patient_office_id = the office of legacy_office_id (dispatch_patient.doctor_id and
--          .office_id, kept raw by the transform).
--   a legacy id with no target row (doctor quarantined or not migrated, office missing) gives
--   a null fk; the raw id stays on the row, so a later run links it once the parent arrives.
--   a legacy id that went away (patient moved to no doctor) clears the fk: the target mirrors
--   the legacy system.
-- runs: after the profiles upsert, in the same transaction (EntitySpec.post_load_sql).
-- idempotent: set-based; only rows whose resolved fks differ are updated, so a rerun updates
--             nothing and leaves updated_at alone. profiles created outside the migration
--             (legacy_user_id null) are never touched.

with resolved as (
    select
        p.id,
        doctor.id as patient_doctor_id,
        office.id as patient_office_id
    from public.profiles as p
    left join public.profiles as doctor on doctor.legacy_user_id = p.legacy_doctor_user_id
    left join public.offices as office on office.legacy_office_id = p.legacy_office_id
    where p.legacy_user_id is not null
)

update public.profiles as p
set
    patient_doctor_id = r.patient_doctor_id,
    patient_office_id = r.patient_office_id
from resolved as r
where r.id = p.id
  and (
      p.patient_doctor_id is distinct from r.patient_doctor_id
      or p.patient_office_id is distinct from r.patient_office_id
  );
