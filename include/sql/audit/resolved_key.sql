-- A foreign key the load resolves after its upsert (load/*link*.sql), compared by the legacy id
-- it points at: two expressions, one per side of the row-level comparison (row_hashes.sql,
-- row_checksums.sql, row_findings.sql hash and compare them like the mapped columns).
--   in : {parent} the parent's target table, {parent_key} its legacy-id column, {column} the
--        target's foreign-key column (a uuid of {parent}.id), {expected} the legacy side's
--        expected parent legacy id (a staged raw id such as s.legacy_doctor_user_id, or
--        audit/expected_survivor.sql).
--   out: first the target side (the legacy id of the row the key points at), then the legacy
--        side (the expected legacy id, when that parent is in the target: a parent that is not
--        leaves the key null, as the link does). Ids only, never a value.
-- Idempotent: two scalar subqueries, read-only; each is one unique-index lookup.
(select p.{parent_key}::bigint from {parent} as p where p.id = t.{column})
;
(select p.{parent_key}::bigint from {parent} as p where p.{parent_key} = {expected})
