-- backup/scratch_prepare.sql
-- purpose: make a freshly created scratch database ready to receive a target backup for its
--          test restore. Run after target/000_supabase_compat.sql has given it what a Supabase
--          project has before our schema (roles, auth.* helpers, extensions); the dump brings
--          the migration schema itself, so the copy 000 created is removed first.
-- inputs: none; runs only in a scratch database created for one verification.
-- idempotent: drop if exists; the scratch database is dropped after the verification anyway.
drop schema if exists migration cascade;
