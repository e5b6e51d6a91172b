-- preflight/target_state.sql
-- purpose: what the preflight needs to know of the target: whether its sessions can write,
--          which wanted extensions are installed or available, its size (what a backup must hold).
-- inputs: none; runs as the role the project connects as.
-- idempotent: a read-only query; it changes nothing.
select
    current_setting('transaction_read_only') = 'on' or pg_is_in_recovery() as read_only,
    array(
        select extname::text from pg_catalog.pg_extension
        where extname in ('vector', 'pgcrypto') order by extname
    ) as extensions,
    array(
        select name::text from pg_catalog.pg_available_extensions
        where name in ('vector', 'pgcrypto') order by name
    ) as available,
    pg_database_size(current_database()) as database_bytes,
    current_setting('server_version_num')::int / 10000 as server_major
