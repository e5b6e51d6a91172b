-- transform/embed_messages.sql
-- purpose: one queue row per staged message: its legacy key (record id, or the negated
--          comment id) and the md5 of its builder text (migration.message_embedding_text).
-- inputs: staging.embed_messages__messages (target rows, staged by the phase 5 extract).
-- idempotent: drops and recreates its output.
drop table if exists staging.embed_messages__transformed;
create unlogged table staging.embed_messages__transformed as
select
    'messages'::text as entity,
    s.id as row_id,
    coalesce(s.legacy_record_id, -s.legacy_comment_id)::bigint as source_key,
    md5(coalesce(migration.message_embedding_text(s.content), '')) as content_hash
from staging.embed_messages__messages as s;
