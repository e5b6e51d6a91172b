-- Buckets of legacy ids whose set differs from the ids the target accounts for.
--   in : {id_buckets} = staging.<entity>__sync_id_buckets (bucket, rows, fingerprint) from
--        legacy_id_buckets.sql; {target} the entity's table, {key} its legacy-id column;
--        migration.quarantine; %(entity)s, %(bits)s.
--   out: {checked} (bucket): buckets where legacy has an id the target does not account for,
--        or the target accounts for an id legacy no longer has. Only these buckets' ids are
--        streamed and only their rows can be marked or unmarked legacy_removed_at.
-- The target accounts for an id when a row carries it and is not marked removed, or when the
-- row is held in quarantine (and not in the target). Both sides are sets (the key is unique,
-- quarantine ids are distinct), so bit_xor cannot cancel a row against itself; two different
-- sets share count and fingerprint by chance about once in 1.8e19.
-- Idempotent: reads the target, writes only the entity's unlogged staging of this run.
insert into {checked} (bucket)
select coalesce(l.bucket, a.bucket)
from {id_buckets} as l
full join (
    select bucket, sum(rows)::bigint as rows, bit_xor(fingerprint) as fingerprint
    from (
        select t.{key}::bigint >> %(bits)s as bucket, count(*) as rows,
               bit_xor(hashint8extended(t.{key}::bigint, 0)) as fingerprint
        from {target} as t
        where t.{key} is not null and t.legacy_removed_at is null
        group by 1
        union all
        select q.legacy_id >> %(bits)s, count(*), bit_xor(hashint8extended(q.legacy_id, 0))
        from (
            select distinct legacy_id from migration.quarantine
            where entity = %(entity)s and resolved_at is null
        ) as q
        where not exists (
            select 1 from {target} as t
            where t.{key} = q.legacy_id and t.legacy_removed_at is null
        )
        group by 1
    ) as accounted
    group by 1
) as a on a.bucket = l.bucket
where l.rows is distinct from a.rows or l.fingerprint is distinct from a.fingerprint
