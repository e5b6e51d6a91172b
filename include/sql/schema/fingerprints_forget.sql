-- schema/fingerprints_forget.sql
-- purpose: forget every DDL fingerprint, so the next phase run applies its DDL files again.
--          Rollbacks call it before they change anything: a restore puts back public as the
--          backup had it (objects of older files, or none), and a delete empties tables the
--          DDL files seed (order types), which only a new application seeds again.
-- inputs: none (the caller first checks that migration.schema_fingerprints exists).
-- idempotent: deleting from an empty table deletes nothing.
delete from migration.schema_fingerprints
