-- Compare the hashed rows by legacy id (set-based) and list the rows that do not match.
--   in : rv_legacy, rv_target, rv_universe (row_hashes.sql); %(run_id)s, %(entity)s,
--        %(max_findings)s the most findings kept per kind (counts are always complete).
--   out: rv_outcome (legacy_id, kind) for every non-matching row; one row of counts
--        (compared, matched, mismatched, missing, unexpected).
-- Idempotent: reads the temporary tables only; the caller records the results.
create temporary table rv_outcome on commit drop as
select l.legacy_id, case when t.legacy_id is null then 'missing' else 'mismatch' end as kind
from rv_legacy as l
left join rv_target as t on t.legacy_id = l.legacy_id
where t.legacy_id is null or t.h <> l.h
union all
select t.legacy_id, 'unexpected'
from rv_target as t
where not exists (select 1 from rv_universe as u where u.legacy_id = t.legacy_id);

select
    (select count(*) from rv_legacy) as compared,
    (select count(*) from rv_legacy) - count(*) filter (where kind <> 'unexpected') as matched,
    count(*) filter (where kind = 'mismatch') as mismatched,
    count(*) filter (where kind = 'missing') as missing,
    count(*) filter (where kind = 'unexpected') as unexpected
from rv_outcome;
