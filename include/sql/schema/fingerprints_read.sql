-- schema/fingerprints_read.sql
-- purpose: the DDL files applied to this target: per file the sha256 of the exact text that
--          ran and the catalog state (schema/catalog_state.sql) recorded after the last
--          application of any file. Read by migration_ops.schema before applying DDL.
-- inputs: none (the caller first checks that migration.schema_fingerprints exists).
-- idempotent: a read-only query.
select file, sha256, catalog_state
from migration.schema_fingerprints
