-- ai/bench_messages.sql
-- purpose: make bench only: n synthetic clinical-style messages on one synthetic profile,
--          queued for embedding the way phase 5's load queues them (set-based).
-- inputs: setting migration.bench_messages (n). A scratch benchmark database only.
-- idempotent: clears its own rows first.
delete from migration.embedding_queue where entity = 'messages';
delete from public.messages where legacy_record_id >= 900000000;
insert into public.profiles (legacy_user_id, username, first_name)
values (900000000, 'bench.patient', 'Bench')
on conflict (legacy_user_id) do nothing;
insert into public.messages (legacy_record_id, message_type_id, content, sent_at, patient_id)
select 900000000 + g,
       (select id from public.message_types where code = 'general'),
       (array['Please rescan', 'Intrude', 'Reduce IPR on', 'Add attachments to',
              'Check the bite ramps on', 'Extract'])[1 + g % 6]
       || ' tooth ' || (11 + g % 37) || ' at stage ' || (g % 29)
       || (array[' before printing the trays.', '; the doctor asked for it.',
                 ' and correct the midline.', '. Patient reports discomfort.'])[1 + g % 4],
       now(),
       (select id from public.profiles where legacy_user_id = 900000000)
from generate_series(1, current_setting('migration.bench_messages')::int) as g;
insert into migration.embedding_queue (entity, row_id, source_key, content_hash)
select 'messages', m.id, m.legacy_record_id,
       md5(coalesce(migration.message_embedding_text(m.content), ''))
from public.messages as m
where m.legacy_record_id >= 900000000;
