-- dedup/inputs_fingerprint.sql
-- purpose: a fingerprint of every row the de-duplication step reads, so that a run whose
--          inputs are those of the last recorded run can reuse its clusters instead of running
--          Splink again (migration_ops.dedup.step; docs/dedup.md, "Unchanged inputs").
--   candidates -> count and bit_xor of one typed hash per candidate: its legacy id, every
--                 linkage field expression (they also give the survivorship's completeness)
--                 and the activity expression (its tie-break), from exactly the query the step
--                 hands to Splink: the staged rows of this run and the target's unstaged rows.
--   decisions  -> count and bit_xor of one typed hash per human decision of the entity (the
--                 pair and link/distinct: what the step applies), unlinks included.
-- placeholders (psycopg sql): {candidates} the step's candidates query (migration_ops.dedup.step,
--   _candidates_query) with the activity as one more column; identifiers and expressions
--   from the entity's DedupSpec, never data.
-- parameters: %(entity)s the entity's name.
-- why typed hashes: hash_record_extended hashes each value with its type's own hash, so a
--   timestamptz hashes its instant (the session's time zone changes nothing; md5 of the row's
--   text would) and a union's rows hash alike whichever branch they come from (one resolved
--   type). bit_xor makes the order irrelevant; with count(*) and 64 bits, two different
--   inputs share a fingerprint by chance about once in 1.8e19.
-- idempotent: a read-only query.
with candidates as (
    {candidates}
),
decisions as (
    select d.legacy_id_l, d.legacy_id_r, d.decision
    from migration.dedup_decisions as d
    where d.entity = %(entity)s
)
select
    (select count(*) from candidates) as candidate_rows,
    (select coalesce(bit_xor(hash_record_extended(row(c.*), 0)), 0) from candidates as c)
        as candidate_hash,
    (select count(*) from decisions) as decision_rows,
    (select coalesce(bit_xor(hash_record_extended(row(d.*), 0)), 0) from decisions as d)
        as decision_hash
