-- The target's columns whose default is migration.new_id() and that the staging does not fill
-- (the uuid primary keys): the bulk insert fills them with bulk_key_value.sql instead, one
-- random draw per statement rather than one per row (that file says why).
--   in : %(target)s = the target table ('schema.table'), %(staged)s = the staged columns.
--   out: one row per such column, by column number.
-- Read-only.
select a.attname
from pg_catalog.pg_attribute as a
join pg_catalog.pg_attrdef as d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = %(target)s::regclass
    and not a.attisdropped
    and pg_catalog.pg_get_expr(d.adbin, d.adrelid) = 'migration.new_id()'
    and a.attname <> all (%(staged)s::text[])
order by a.attnum
