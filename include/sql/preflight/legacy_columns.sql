-- preflight/legacy_columns.sql
-- purpose: the legacy catalog of the tables the entity specs read: (table, column, type),
--          compared by the preflight with include/audit/legacy_columns.json (schema drift).
-- inputs: %(tables)s the legacy tables the specs read (schema public).
-- idempotent: a read-only catalog query (runs in a read-only legacy session).
select c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
from pg_catalog.pg_attribute as a
join pg_catalog.pg_class as c on c.oid = a.attrelid
join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relname = any(%(tables)s) and c.relkind in ('r', 'p')
    and a.attnum > 0 and not a.attisdropped
order by c.relname, a.attnum
