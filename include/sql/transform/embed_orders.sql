-- transform/embed_orders.sql
-- purpose: one queue row per staged order: legacy instruction id and the md5 of its builder
--          text (migration.order_embedding_text).
-- inputs: staging.embed_orders__orders (target rows, staged by the phase 5 extract).
-- idempotent: drops and recreates its output.
drop table if exists staging.embed_orders__transformed;
create unlogged table staging.embed_orders__transformed as
select
    'orders'::text as entity,
    s.id as row_id,
    s.legacy_instruction_id::bigint as source_key,
    md5(coalesce(migration.order_embedding_text(
        s.complaint, s.conditions, s.objective, s.notes, s.scanner_notes
    ), '')) as content_hash
from staging.embed_orders__orders as s;
