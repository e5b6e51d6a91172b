-- load/profiles__link_duplicates.sql
-- purpose: point every linked duplicate profile at its cluster's survivor, as this run's
--          de-duplication step decided (migration.dedup_members): merged_into (the survivor's
--          profile) and merged_into_legacy_user_id (its auth_user id, lineage). every profile
--          keeps its row, its legacy ids and its children: linked, not destroyed (decision 0008).
--   only this run's candidates (every row of dedup_members of the run) are touched: one
--   alone in its cluster (distinct, unlinked) gets its link cleared; a profile the step did
--   not see (not a patient, or the step did not run) keeps whatever it had. a survivor with
--   no target row (quarantined, never loaded) leaves merged_into null: the row counts as
--   loaded, not merged, until it arrives.
-- runs: after the profiles upsert, in the same transaction (EntitySpec.post_load_sql); the
--       load counts merged rows after it.
-- idempotent: set-based; only rows whose link differs are updated, so a rerun updates nothing.

with assigned as (
    select
        p.id,
        (case when m.survivor_legacy_id <> m.legacy_id then m.survivor_legacy_id end)::integer
            as survivor_legacy_id,
        s.id as survivor_id
    from migration.dedup_members as m
    join public.profiles as p on p.legacy_user_id = m.legacy_id
    left join public.profiles as s
        on s.legacy_user_id = m.survivor_legacy_id and m.survivor_legacy_id <> m.legacy_id
    where m.run_id = current_setting('migration.run_id')
      and m.entity = 'profiles'
)

update public.profiles as p
set
    merged_into_legacy_user_id = a.survivor_legacy_id,
    merged_into = a.survivor_id
from assigned as a
where a.id = p.id
  and (
      p.merged_into_legacy_user_id is distinct from a.survivor_legacy_id
      or p.merged_into is distinct from a.survivor_id
  );
