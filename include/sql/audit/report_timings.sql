-- Time per entity of one run: from the end of the previous entity (or the legacy snapshot)
-- to the entity's last checkpoint, plus the time its row-level comparison took.
--   in : %(run_id)s.
--   out: entity, seconds (wall clock of its task group, approximately), verify_seconds.
-- Idempotent: a read-only query.
with ordered as (
    select c.entity, c.updated_at,
        lag(c.updated_at) over (order by c.updated_at) as previous
    from migration.checkpoints as c
    where c.run_id = %(run_id)s
)
select o.entity,
    extract(epoch from o.updated_at - coalesce(o.previous, r.snapshot_at, r.started_at))::float8,
    coalesce(v.seconds, 0)::float8
from ordered as o
join migration.runs as r on r.run_id = %(run_id)s
left join migration.row_validation as v on v.run_id = %(run_id)s and v.entity = o.entity
order by o.updated_at
