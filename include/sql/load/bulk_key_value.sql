-- One generated uuid key of a bulk-inserted row: the values of bulk_insert.sql's keys.
-- Why: the key column's default, migration.new_id(), draws strong randomness per row; on a
-- server built without openssl (the embedded one) every draw reads /dev/urandom: 2.4 s of a
-- million-row first load. Here the statement draws once: an rfc 9562 version-7 uuid whose
-- first 96 bits are the statement's (48-bit unix milliseconds, version 7, 12 random bits,
-- variant 10, 30 random bits; an uncorrelated scalar subquery, evaluated once) and whose last
-- 32 bits number the statement's rows (rfc 9562 6.2, method 1: a dedicated counter).
--   in : nothing; row_number() over () of the insert's select.
--   out: a uuid, unique within the statement by construction and time-ordered like uuidv7();
--        a collision with another statement's keys (same millisecond and the same 42 random
--        bits) is refused by the primary key, never silent; past 2^32 rows the cast fails.
-- Idempotent: the insert it belongs to adds only rows the target lacks.
(
    (
        select lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0')
            || '7' || substr(r, 1, 3)
            || to_hex(8 | (('x' || substr(r, 4, 1))::bit(4)::int & 3)) || substr(r, 5, 7)
        from (select replace(pg_catalog.gen_random_uuid()::text, '-', '') as r) as random_draw
    )
    || lpad(to_hex(row_number() over ()), 8, '0')
)::uuid
