-- transform/files.sql
-- purpose: shape every staged dispatch_file row as a public.files row (metadata only; the
--          bytes are copied by the object-copy step after validation), one row per file:
--   * real extension: dispatch_file.ext (its last dot-separated segment), else the name's last
--     segment: include.transforms.mime.REAL_EXTENSION_SQL, verbatim; mime type from it through
--     ref_mime_type, application/octet-stream when unknown, flagged 'extension_unknown';
--   * file_name: the trimmed name plus '.<ext>' unless the name already ends with it, so the
--     legacy double extension '..._l.stl.stl' becomes '..._l.stl' (legacy-system.md §1c #21):
--     include.transforms.mime.DISPLAY_NAME_SQL, verbatim; when it differs from the legacy
--     concatenation name || '.' || ext, that raw text is kept in metadata.legacy_file_name;
--   * order through orders.legacy_instruction_id; no instruction (plan files, attachments:
--     about half the rows) -> null; an instruction whose order is not in the target quarantines
--     the file (files.order_resolves, via _unresolved_instruction_id);
--   * parameters parsed with migration.try_jsonb; invalid json -> null, raw text in
--     metadata.legacy_parameters; description trimmed, blank -> null; product, record and
--     status kept raw (record links are phase 3's message attachments);
--   * storage_bucket, storage_path, sha256 are null here: the object-copy step fills them for
--     the files whose bytes it stored (or found stored with the same sha-256);
--   * helper columns for that step: _source_path, where the legacy media store keeps the bytes
--     (files/<uid[0:2]>/<uid>/<name>.<ext>, the legacy concatenation: the same rule as
--     include.sandbox.media_relative_path, proven equal by the tests), and _object_key, the key
--     in the storage bucket (<uid>/<file_name> with anything but letters, digits, '.', '_' and
--     '-' replaced by '_', which every supabase storage key accepts).
-- inputs: staging.files__dispatch_file; temp table ref_mime_type; public.orders.
-- output: staging.files__transformed, columns and types of public.files, plus helper columns
--         (_*) that the suite and the object copy read and the load ignores.
-- idempotent: reads only staged rows, code maps and target lineage; drops and rebuilds its
--             output; no ids, no now().

drop table if exists staging.files__transformed;

create unlogged table staging.files__transformed as
with
-- materialized: the two name rules are scalar subqueries, and every later reference to
-- display_name would run its subquery again (3.0 s -> 1.8 s on 330,000 files)
named as materialized (
    select
        f.*,
        (select case when seg ~ '^[A-Za-z0-9]{1,10}$' then lower(seg) end from (select case when regexp_replace(btrim(coalesce(ext, '')), '^.*\.', '') <> '' then regexp_replace(btrim(coalesce(ext, '')), '^.*\.', '') when strpos(btrim(coalesce(name, '')), '.') > 0 then regexp_replace(btrim(coalesce(name, '')), '^.*\.', '') else '' end as seg) as real_extension) as real_extension,
        (select case when e = '' or right(lower(stem collate "C"), length(e) + 1) = '.' || lower(e collate "C") then stem else stem || '.' || e end from (select coalesce(nullif(btrim(coalesce(name, '')), ''), lower(uid::text)) as stem, ltrim(btrim(coalesce(ext, '')), '.') as e) as parts) as display_name,
        coalesce(f.name, '') || case when coalesce(f.ext, '') <> '' then '.' || f.ext else '' end
            as legacy_file_name,
        translate(coalesce(nullif(f.name, ''), lower(f.uid::text)), '/\', '__') as source_stem,
        nullif(btrim(f.parameters), '') as raw_parameters,
        migration.try_jsonb(nullif(btrim(f.parameters), '')) as parameters_json
    from staging.files__dispatch_file as f
),

resolved as (
    select
        n.*,
        o.id as order_uuid,
        m.mime_type as known_mime_type,
        regexp_replace(n.display_name, '[^A-Za-z0-9._-]+', '_', 'g') as key_name
    from named as n
    left join public.orders as o on o.legacy_instruction_id = n.instruction_id
    left join ref_mime_type as m on m.extension = n.real_extension
)

select
    r.id::integer as legacy_file_id,
    r.uid::uuid as legacy_uid,
    r.order_uuid::uuid as order_id,
    r.instruction_id::integer as legacy_instruction_id,
    r.display_name::text as file_name,
    r.real_extension::text as extension,
    coalesce(r.known_mime_type, 'application/octet-stream')::text as mime_type,
    r.size::bigint as size_bytes,
    r.type::integer as legacy_type,
    nullif(btrim(r.description), '')::text as description,
    nullif(r.parameters_json, 'null'::jsonb)::jsonb as parameters,
    r.product_id::integer as legacy_product_id,
    r.record_id::integer as legacy_record_id,
    r.status::integer as legacy_status,
    r.created_at::timestamptz as uploaded_at,
    null::text as storage_bucket,
    null::text as storage_path,
    null::text as sha256,
    array_remove(array[
        case when r.known_mime_type is null then 'extension_unknown' end
    ], null)::text[] as flags,
    jsonb_strip_nulls(jsonb_build_object(
        'legacy_file_name',
            case when r.display_name <> r.legacy_file_name then r.legacy_file_name end,
        'legacy_parameters',
            case when r.raw_parameters is not null and r.parameters_json is null
                then r.raw_parameters
            end
    ))::jsonb as metadata,
    (case
        when r.instruction_id is not null and r.order_uuid is null then r.instruction_id
    end)::integer as _unresolved_instruction_id,
    (
        'files/' || left(lower(r.uid::text), 2) || '/' || lower(r.uid::text) || '/'
        || case when r.source_stem in ('.', '..') then lower(r.uid::text) else r.source_stem end
        || case when coalesce(r.ext, '') <> '' then '.' || translate(r.ext, '/\', '__') else '' end
    )::text as _source_path,
    (
        lower(r.uid::text) || '/'
        || case when r.key_name in ('.', '..') then lower(r.uid::text) else r.key_name end
    )::text as _object_key
from resolved as r;
