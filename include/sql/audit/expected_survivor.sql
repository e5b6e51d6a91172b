-- The survivor a profile is expected to be merged into (profiles.merged_into), as the latest
-- de-duplication step that saw it decided (migration.dedup_members; load/profiles__link_duplicates.sql
-- writes the link from the same rows). Null when it is alone in its cluster or never a candidate.
--   in : s.{key} the staged profile's legacy user id.
--   out: one bigint (the survivor's legacy user id) or null.
-- Idempotent: a read-only scalar subquery.
(
    select nullif(m.survivor_legacy_id, m.legacy_id)
    from migration.dedup_members as m
    join migration.runs as r on r.run_id = m.run_id
    where m.entity = 'profiles' and m.legacy_id = s.{key}
    order by r.started_at desc
    limit 1
)
