-- transform/embed_projects.sql
-- purpose: one queue row per staged project: legacy project id and the md5 of its builder
--          text (migration.project_embedding_text).
-- inputs: staging.embed_projects__projects (target rows, staged by the phase 5 extract).
-- idempotent: drops and recreates its output.
drop table if exists staging.embed_projects__transformed;
create unlogged table staging.embed_projects__transformed as
select
    'projects'::text as entity,
    s.id as row_id,
    s.legacy_project_id::bigint as source_key,
    md5(coalesce(migration.project_embedding_text(
        s.name, s.project_type::text, s.project_status::text
    ), '')) as content_hash
from staging.embed_projects__projects as s;
