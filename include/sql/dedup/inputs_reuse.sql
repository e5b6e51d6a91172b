-- dedup/inputs_reuse.sql
-- purpose: a run whose de-duplication inputs are unchanged (migration.dedup_inputs holds the same
--          fingerprint) takes the clusters of the run that computed them instead of running
--          Splink again: Splink, the decisions and the survivorship rule would give the same.
--   members -> this run's migration.dedup_members become a copy of the memo run's (every
--              candidate with its survivor), so the load re-links exactly as that run decided,
--              idempotently (also when that run's own load was killed before it applied them).
--   review  -> the review band is the memo run's, unchanged: its rows' last_run_id moves to this
--              run, as a recomputation would have refreshed it (the run's dedup report lists them).
--   dedup_links are left as they are: the same pairs, the same scores.
-- settings: migration.run_id (this run), migration.entity, migration.dedup_reused_run_id (the run
--   the memo names; this run itself when its step is retried: its rows are kept, not copied).
-- idempotent: this run's members are replaced, never added to; rerunning copies the same rows.
-- no phi: ids only.

delete from migration.dedup_members
where run_id = current_setting('migration.run_id')
  and entity = current_setting('migration.entity')
  and run_id <> current_setting('migration.dedup_reused_run_id');

insert into migration.dedup_members (run_id, entity, legacy_id, survivor_legacy_id, completeness)
select current_setting('migration.run_id'), m.entity, m.legacy_id, m.survivor_legacy_id,
       m.completeness
from migration.dedup_members as m
where m.run_id = current_setting('migration.dedup_reused_run_id')
  and m.entity = current_setting('migration.entity')
  and m.run_id <> current_setting('migration.run_id');

update migration.dedup_review
set last_run_id = current_setting('migration.run_id')
where entity = current_setting('migration.entity')
  and last_run_id <> current_setting('migration.run_id');
