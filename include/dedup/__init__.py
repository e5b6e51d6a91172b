"""De-duplication model configuration (plain data; the engine is ``migration_ops.dedup``)."""
