-- transform/embed_profiles.sql
-- purpose: one queue row per staged profile: legacy user id and the md5 of its builder text
--          (migration.profile_embedding_text).
-- inputs: staging.embed_profiles__profiles (target rows, staged by the phase 5 extract).
-- idempotent: drops and recreates its output.
drop table if exists staging.embed_profiles__transformed;
create unlogged table staging.embed_profiles__transformed as
select
    'profiles'::text as entity,
    s.id as row_id,
    s.legacy_user_id::bigint as source_key,
    md5(coalesce(migration.profile_embedding_text(
        s.profile_type::text, s.first_name, s.last_name, s.patient_status::text
    ), '')) as content_hash
from staging.embed_profiles__profiles as s;
