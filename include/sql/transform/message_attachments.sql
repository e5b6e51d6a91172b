-- transform/message_attachments.sql
-- purpose: shape every staged dispatch_record_attachments row as a public.message_attachments
--          row (one per attachment): the message is the migrated record (legacy_record_id),
--          the file the migrated file (legacy_file_id). A record or file that is not in the
--          target (quarantined in this phase or in phase 2) leaves its foreign key null and the
--          suite quarantines the attachment under the rule naming which one is missing
--          (message_attachments.message_migrated, message_attachments.file_migrated); a later
--          run loads it once both exist. Raw ids are kept as lineage.
-- inputs: staging.message_attachments__dispatch_record_attachments; public.messages (loaded by
--         this phase's messages entity first), public.files.
-- output: staging.message_attachments__transformed, columns and types of
--         public.message_attachments (minus id and timestamps).
-- idempotent: reads only staged rows and loaded parents; drops and rebuilds its output.

drop table if exists staging.message_attachments__transformed;

create unlogged table staging.message_attachments__transformed as
select
    a.id::integer as legacy_record_attachment_id,
    m.id::uuid as message_id,
    f.id::uuid as file_id,
    a.record_id::integer as legacy_record_id,
    a.file_id::integer as legacy_file_id,
    '{}'::jsonb as metadata
from staging.message_attachments__dispatch_record_attachments as a
left join public.messages as m on m.legacy_record_id = a.record_id
left join public.files as f on f.legacy_file_id = a.file_id;
