-- row_estimate.sql
-- purpose: the planner's row estimate of one table (pg_class.reltuples), the total behind a
--   progress line's percentage and ETA; a catalog read, no scan of the table.
-- inputs: the one parameter, the table as 'schema.table' (resolved with to_regclass; NULL when absent).
-- idempotent: read only.
select c.reltuples::bigint
from pg_catalog.pg_class as c
where c.oid = to_regclass(%s)
