-- preflight/legacy_select_privileges.sql
-- purpose: the columns the entity specs read that the legacy role may not SELECT (neither on
--          the whole table nor on the column): a missing grant named before phase 1, instead
--          of an extract failing on "permission denied".
-- inputs: %(tables)s, %(columns)s parallel text arrays: one (table, column) per column the
--         specs read, only tables and columns the catalog has (schema public).
-- output: (table, column) per unreadable column, ordered.
-- idempotent: read-only privilege functions of the connecting role; it changes nothing.
select w.table_name, w.column_name
from unnest(%(tables)s::text[], %(columns)s::text[]) as w (table_name, column_name)
where not has_table_privilege('public.' || quote_ident(w.table_name), 'SELECT')
    and not has_column_privilege(
        'public.' || quote_ident(w.table_name), w.column_name, 'SELECT'
    )
order by w.table_name, w.column_name
