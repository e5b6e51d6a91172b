-- schema/fingerprints_record.sql
-- purpose: after DDL files ran (in the caller's transaction): keep the sha256 of each file
--          applied, forget the fingerprints of files that sort after the earliest one applied
--          (later files build on earlier ones: a changed 100 may have dropped what 200 made,
--          so 200 runs again on its next phase run), and stamp every remaining row with the
--          catalog state after the application.
-- inputs: %(files)s text[] and %(shas)s text[] (the files applied, in step; not empty),
--         %(state)s text (schema/catalog_state.sql after the application).
-- idempotent: an upsert by file; the three parts touch disjoint rows, and running it again
--             with the same inputs changes nothing.
with applied as (
    select a.file, a.sha256
    from unnest(%(files)s::text[], %(shas)s::text[]) as a (file, sha256)
),
first_applied as (
    select min(file) as file from applied
),
forgotten as (
    delete from migration.schema_fingerprints as f
    using first_applied as a
    where f.file > a.file and f.file not in (select file from applied)
),
restamped as (
    update migration.schema_fingerprints as f
    set catalog_state = %(state)s
    from first_applied as a
    where f.file < a.file and f.file not in (select file from applied)
)
insert into migration.schema_fingerprints as f (file, sha256, catalog_state, applied_at)
select file, sha256, %(state)s, now()
from applied
on conflict (file) do update
    set sha256 = excluded.sha256, catalog_state = excluded.catalog_state,
        applied_at = excluded.applied_at
