-- schema/fingerprints_restamp.sql
-- purpose: record the catalog state after DDL that is not a file (the sync's idempotent
--          legacy_removed_at columns) when no file ran, so that DDL does not count as a
--          foreign change on the next run.
-- inputs: %(state)s text (schema/catalog_state.sql now).
-- idempotent: sets every row to the same value.
update migration.schema_fingerprints
set catalog_state = %(state)s
