-- dedup/record.sql
-- purpose: record one run's de-duplication of an entity, set-based, from the temporary tables
--          the step staged: dedup_pairs (scored pairs: band link/review, scores, agreement
--          flags) and dedup_clusters (every candidate with its cluster id; alone: its own).
--   members  -> migration.dedup_members, each with its survivor (itself when alone): the
--               candidates are this run's staged rows and the target's unstaged ones, so
--               a run that staged only a delta still sees every patient. survivorship (documented
--               rule): most non-empty linkage fields ({completeness}), then most recent
--               activity ({activity}), then the lowest legacy id.
--   links    -> migration.dedup_links (upsert; last_run_id refreshed, an unlink undone by a
--               later reviewer link is linked again).
--   review   -> migration.dedup_review: this run's middle band; pairs no longer in it leave the
--               queue (the band is recomputed every run, decisions stay in dedup_decisions).
-- placeholders (psycopg sql): {transformed} staging table, {target} target table, {key} the
--   legacy id column of both,
--   {completeness}, {activity} expressions from the entity's DedupSpec.
-- settings: migration.run_id, migration.entity.
-- idempotent: rerunning the same run replaces its members and refreshes the same pairs.
-- no phi: ids, scores and agreement flags only.

delete from migration.dedup_members
where run_id = current_setting('migration.run_id')
  and entity = current_setting('migration.entity');

insert into migration.dedup_members (run_id, entity, legacy_id, survivor_legacy_id, completeness)
select
    current_setting('migration.run_id'),
    current_setting('migration.entity'),
    ranked.legacy_id,
    first_value(ranked.legacy_id) over (
        partition by ranked.cluster_id
        order by ranked.completeness desc, ranked.activity desc nulls last, ranked.legacy_id
    ),
    ranked.completeness
from (
    select c.legacy_id, c.cluster_id, r.completeness, r.activity
    from dedup_clusters as c
    join (
        select {key} as legacy_id, ({completeness})::smallint as completeness, ({activity}) as activity
        from {transformed}
        union all
        select {key}, ({completeness})::smallint, ({activity})
        from {target} as g
        where not exists (select 1 from {transformed} as s where s.{key} = g.{key})
    ) as r on r.legacy_id = c.legacy_id
) as ranked;

insert into migration.dedup_links as l (
    entity, legacy_id_l, legacy_id_r, match_probability, match_weight, agreement, linked_by,
    first_run_id, last_run_id
)
select
    current_setting('migration.entity'), p.id_l, p.id_r, p.match_probability, p.match_weight,
    p.agreement, p.linked_by, current_setting('migration.run_id'),
    current_setting('migration.run_id')
from dedup_pairs as p
where p.band = 'link'
on conflict (entity, legacy_id_l, legacy_id_r) do update set
    match_probability = excluded.match_probability,
    match_weight = excluded.match_weight,
    agreement = excluded.agreement,
    linked_by = excluded.linked_by,
    last_run_id = excluded.last_run_id,
    unlinked_at = null;

delete from migration.dedup_review as r
where r.entity = current_setting('migration.entity')
  and not exists (
      select 1 from dedup_pairs as p
      where p.band = 'review' and p.id_l = r.legacy_id_l and p.id_r = r.legacy_id_r
  );

insert into migration.dedup_review (
    entity, legacy_id_l, legacy_id_r, match_probability, match_weight, agreement,
    first_run_id, last_run_id
)
select
    current_setting('migration.entity'), p.id_l, p.id_r, p.match_probability, p.match_weight,
    p.agreement, current_setting('migration.run_id'), current_setting('migration.run_id')
from dedup_pairs as p
where p.band = 'review'
on conflict (entity, legacy_id_l, legacy_id_r) do update set
    match_probability = excluded.match_probability,
    match_weight = excluded.match_weight,
    agreement = excluded.agreement,
    last_run_id = excluded.last_run_id;
