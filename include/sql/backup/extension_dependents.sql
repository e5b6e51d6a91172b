-- backup/extension_dependents.sql
-- purpose: what a test restore must leave out with an extension it may not create in the
--          scratch database (Supabase's vector, for a non-superuser): public tables with a
--          column of one of the extension's types, their indexes, and public functions taking
--          or returning such a type (phase 5's *_embeddings tables and match_* functions).
-- inputs: parameter extensions (names). Run on the dumped database.
-- idempotent: read only.
with ext_types as (
    select d.objid as type_oid
    from pg_depend as d
    join pg_extension as e on e.oid = d.refobjid
    where d.classid = 'pg_type'::regclass and d.deptype = 'e'
      and e.extname = any(%(extensions)s::text[])
),
tables as (
    select distinct c.oid, c.relname
    from pg_attribute as a
    join pg_class as c on c.oid = a.attrelid
    where a.atttypid in (select type_oid from ext_types)
      and a.attnum > 0 and not a.attisdropped
      and c.relkind in ('r', 'p') and c.relnamespace = 'public'::regnamespace
)
select 'table' as kind, relname as name from tables
union
select 'index', i.relname
from pg_index as x join pg_class as i on i.oid = x.indexrelid
where x.indrelid in (select oid from tables)
union
select 'function', p.proname
from pg_proc as p
where p.pronamespace = 'public'::regnamespace
  and (p.prorettype in (select type_oid from ext_types)
       or exists (select 1 from unnest(p.proargtypes::oid[]) as t (oid)
                  where t.oid in (select type_oid from ext_types)))
order by 1, 2
