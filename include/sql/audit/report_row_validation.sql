-- Row-level comparison of one run, per entity, with its findings counted by kind.
--   in : %(run_id)s.
--   out: entity, mode, method ('checksum' | 'row_by_row'), compared, matched, mismatched,
--        missing, unexpected, seconds,
--        first_ids (up to 10 legacy ids with a finding; ids only).
-- Idempotent: a read-only query.
select
    v.entity, v.mode, v.method, v.compared_rows, v.matched_rows, v.mismatched_rows,
    v.missing_rows, v.unexpected_rows, v.seconds::float8,
    coalesce((
        select string_agg(f.kind || ' ' || f.legacy_id
            || case when f.column_name <> '' then '.' || f.column_name else '' end, ', ')
        from (
            select * from migration.row_findings as f
            where f.run_id = v.run_id and f.entity = v.entity
            order by f.kind, f.legacy_id, f.column_name limit 10
        ) as f
    ), '') as first_findings
from migration.row_validation as v
where v.run_id = %(run_id)s
order by v.entity
