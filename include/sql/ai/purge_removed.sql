-- ai/purge_removed.sql
-- purpose: rows the nightly sync marked legacy_removed_at are gone from legacy: delete their
--          vectors and any queue row the update trigger did not remove already (it was off),
--          as for a deleted row (first thing of every embed run,
--          so the nightly embedding after the sync sees them go). Set-based, one statement.
-- inputs: identifiers {parent} (the embedded table), {vectors}; parameter entity. Returns
--         the number of rows that lost vectors or a queue row. Run only
--         when {parent} has the legacy_removed_at column (it exists once a sync ran).
-- idempotent: a second run finds nothing to delete; a row restored by a later sync has its
--             mark cleared and is queued again by the update trigger.
with removed as (
    select p.id from {parent} as p where p.legacy_removed_at is not null
),
vectors as (
    delete from {vectors} as v using removed as r where v.row_id = r.id
    returning v.row_id
),
queued as (
    delete from migration.embedding_queue as q using removed as r
    where q.entity = %(entity)s and q.row_id = r.id
    returning q.row_id
)
select count(*) from (select row_id from vectors union select row_id from queued) as gone
