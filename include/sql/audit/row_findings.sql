-- Record the non-matching rows of one (run, entity): by legacy id, and for a mismatch by the
-- column(s) that differ. Ids and column names only, never a value.
--   in : rv_outcome (row_counts.sql), {legacy}/{target}/{key} as in row_hashes.sql,
--        {column_checks} one `(column name, s.col::type is distinct from t.col)` per column,
--        %(run_id)s, %(entity)s, %(max_findings)s the most rows kept per kind.
--   out: rows in migration.row_findings.
-- Idempotent: the caller deletes the (run, entity)'s earlier findings in the same transaction.
insert into migration.row_findings (run_id, entity, legacy_id, kind, column_name)
select %(run_id)s, %(entity)s, o.legacy_id, o.kind, ''
from (
    select legacy_id, kind, row_number() over (partition by kind order by legacy_id) as n
    from rv_outcome
    where kind in ('missing', 'unexpected')
) as o
where o.n <= %(max_findings)s;

insert into migration.row_findings (run_id, entity, legacy_id, kind, column_name)
select %(run_id)s, %(entity)s, m.legacy_id, 'mismatch', d.column_name
from (
    select legacy_id from rv_outcome where kind = 'mismatch' order by legacy_id
    limit %(max_findings)s
) as m
join {legacy} as s on s.{key}::bigint = m.legacy_id
join {target} as t on t.{key}::bigint = m.legacy_id
cross join lateral (values {column_checks}) as d (column_name, differs)
where d.differs
on conflict do nothing;
