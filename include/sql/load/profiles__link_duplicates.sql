-- load/profiles__link_duplicates.sql
-- purpose: point every linked duplicate profile at its cluster's survivor, as this run's
--          de-duplication step decided (migration.dedup_members): merged_into (the survivor's
--          profile) and merged_into_legacy_user_id (its auth_user id, lineage). every profile
--          keeps its row, its legacy ids and its children: linked, not destroyed (decision 0007).
--   a profile this run did not put in a cluster (distinct, unlinked, or the step did not run)
--   is no duplicate: its link is cleared. a survivor with no target row (quarantined, never
--   loaded) leaves merged_into null: the row counts as loaded, not merged, until it arrives.
-- runs: after the profiles upsert, in the same transaction (EntitySpec.post_load_sql); the
--       load counts merged rows after it.
-- idempotent: set-based; only rows whose link differs are updated, so a rerun updates nothing.

with assigned as (
    select
        p.id,
        m.survivor_legacy_id::integer as survivor_legacy_id,
        s.id as survivor_id
    from public.profiles as p
    left join migration.dedup_members as m
        on m.run_id = current_setting('migration.run_id')
        and m.entity = 'profiles'
        and m.legacy_id = p.legacy_user_id
        and m.survivor_legacy_id <> m.legacy_id
    left join public.profiles as s on s.legacy_user_id = m.survivor_legacy_id
    where p.legacy_user_id is not null
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
