-- The columns of one foreign key of the target table, for the per-row violation report.
--   in : %(target)s table ('schema.table'), %(constraint)s the foreign key's name.
--   out: one row (constrained columns, referenced schema, referenced table, referenced
--        columns), columns in key order.
-- Read-only.
select
    array(
        select a.attname::text
        from unnest(c.conkey) with ordinality as k (attnum, position)
        join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.attnum
        order by k.position
    ) as columns,
    n.nspname::text as referenced_schema,
    r.relname::text as referenced_table,
    array(
        select a.attname::text
        from unnest(c.confkey) with ordinality as k (attnum, position)
        join pg_attribute as a on a.attrelid = c.confrelid and a.attnum = k.attnum
        order by k.position
    ) as referenced_columns
from pg_constraint as c
join pg_class as r on r.oid = c.confrelid
join pg_namespace as n on n.oid = r.relnamespace
where c.conrelid = %(target)s::regclass and c.conname = %(constraint)s and c.contype = 'f'
