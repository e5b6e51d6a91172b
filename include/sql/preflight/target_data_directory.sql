-- preflight/target_data_directory.sql
-- purpose: where the target server keeps its data (staging tables are written there), so the
--          preflight can measure the free space of that file system when it is this machine's.
-- inputs: none; needs superuser or pg_read_all_settings (else SQLSTATE 42501: "not checked").
-- idempotent: a read-only setting.
select current_setting('data_directory')
