-- backup/record_reuse.sql
-- purpose: a pre-phase backup that takes no new dump: a manifest row, status verified, that
--          stands for the file of the backup it reuses (%(base)s, itself possibly a reuse),
--          as of the reuse check's snapshot (snapshot_at, xid_horizon): public was proven
--          unchanged between the two. reused_from names the backup whose dump and test
--          restore the file comes from; row_counts, restored_counts and verification_skipped
--          are that file's.
-- inputs: %(base)s bigint, %(phase)s, %(reason)s, %(triggered_by)s, %(checked_at)s
--         timestamptz, %(horizon)s (xid8 as text).
-- idempotent: no; each call records one backup request (a retry records another row, as a
--             retried dump does). Returns nothing when the base is no longer verified.
insert into migration.backups
    (database, phase, reason, triggered_by, status, location, size_bytes, sha256, row_counts,
     restored_counts, extensions, server_version, pg_dump_version, snapshot_at, started_at,
     finished_at, verified_at, verification_skipped, xid_horizon, public_schema_md5,
     reused_from)
select 'target', %(phase)s, %(reason)s, %(triggered_by)s, 'verified', b.location, b.size_bytes,
       b.sha256, b.row_counts, b.restored_counts, b.extensions, b.server_version,
       b.pg_dump_version, %(checked_at)s, %(checked_at)s, now(), b.verified_at,
       b.verification_skipped, %(horizon)s::xid8, b.public_schema_md5,
       coalesce(b.reused_from, b.backup_id)
from migration.backups as b
where b.backup_id = %(base)s and b.status = 'verified' and b.pruned_at is null
returning backup_id
