-- backup/reuse_candidate.sql
-- purpose: the newest verified, unpruned backup of the target: the only one a pre-phase
--          backup may reuse (migration_ops.backup.reuse_unchanged), and only when it recorded
--          the xid horizon and the schema md5 of its snapshot (older rows did not).
-- inputs: none.
-- idempotent: a read-only query.
select b.backup_id, b.location, b.size_bytes, b.row_counts, b.xid_horizon::text,
       b.public_schema_md5, b.pg_dump_version
from migration.backups as b
where b.database = 'target' and b.status = 'verified' and b.pruned_at is null
order by b.snapshot_at desc, b.backup_id desc
limit 1
