-- The backups of one run's phase taken for it: the verified restore point before it began.
--   in : %(run_id)s.
--   out: backup_id, database, status, size_bytes, sha256 (the file's, not data), started_at,
--        verified_at, location.
-- Idempotent: a read-only query.
select b.backup_id, b.database, b.status, b.size_bytes, b.sha256, b.started_at, b.verified_at,
    b.location
from migration.backups as b
join migration.runs as r on r.run_id = %(run_id)s
where b.phase = r.phase
    and b.started_at between r.started_at - interval '6 hours'
        and coalesce(r.finished_at, now())
order by b.started_at desc
limit 5
