-- target/500_phase5_ai.sql
-- purpose: phase 5 (AI): the pgvector extension, one documented text builder per embeddable
--          entity (profiles, orders, messages, projects), the embedding queue
--          (migration.embedding_queue, one list partition per entity), the vectors
--          (public.<entity>_embeddings: vector(1024), HNSW cosine index, RLS through the parent
--          row), the PostgREST-callable public.match_<entity>(query_embedding, match_threshold,
--          match_count[, embedding_model]) and the Dify mapping (migration.dify_documents). Statement-level
--          enqueue triggers on the four tables are created DISABLED; phase 5's load enables them
--          (ai/enable_embedding_triggers.sql), its rollback disables them again.
-- inputs: none (applied by phase 5's begin task, after phases 1-4 exist).
-- idempotent: "if not exists" / "create or replace" everywhere; triggers are created only where
--             missing, so a rerun never re-disables triggers phase 5 enabled.

-- ---------------------------------------------------------------- pgvector
-- Supabase has it in schema extensions (installed by supabase_admin); a plain server gets it
-- there too. The rest of this transaction resolves `vector` and its operators through it.
do $$
begin
    if not exists (select 1 from pg_extension where extname = 'vector') then
        create schema if not exists extensions;
        create extension vector with schema extensions;
    end if;
end
$$;
select set_config(
    'search_path',
    'public, migration, '
    || (select extnamespace::regnamespace::text from pg_extension where extname = 'vector')
    || ', pg_catalog',
    true
);

-- ---------------------------------------------------------------- text builders
-- What is embedded, per entity: only columns of the row itself (no joins, so no patient data
-- the row does not already hold); null when the row has nothing to embed (no vector then).
-- Long texts are chunked with overlap by migration_ops.ai.text, not here.
create or replace function migration.message_embedding_text(content text) returns text
language sql immutable parallel safe
as $$ select nullif(btrim(content), '') $$;
comment on function migration.message_embedding_text(text) is
    'messages: the message body, trimmed; null when empty.';

create or replace function migration.order_embedding_text(
    complaint text, conditions text, objective text, notes text, scanner_notes text
) returns text
language sql immutable parallel safe
as $$
    select nullif(concat_ws(E'\n',
        'Complaint: ' || nullif(btrim(complaint), ''),
        'Conditions: ' || nullif(btrim(conditions), ''),
        'Objective: ' || nullif(btrim(objective), ''),
        'Notes: ' || nullif(btrim(notes), ''),
        'Scanner notes: ' || nullif(btrim(scanner_notes), '')
    ), '')
$$;
comment on function migration.order_embedding_text(text, text, text, text, text) is
    'orders: the clinical free text (complaint, conditions, objective, notes, scanner notes), labelled.';

create or replace function migration.profile_embedding_text(
    profile_type text, first_name text, last_name text, patient_status text
) returns text
language sql immutable parallel safe
as $$
    select nullif(concat_ws(' ',
        profile_type,
        nullif(btrim(concat_ws(' ', first_name, last_name)), ''),
        'status ' || patient_status
    ), '')
$$;
comment on function migration.profile_embedding_text(text, text, text, text) is
    'profiles: type, name and patient status (never e-mail, birth date or credentials).';

create or replace function migration.project_embedding_text(
    name text, project_type text, project_status text
) returns text
language sql immutable parallel safe
as $$
    select nullif(concat_ws(' ', nullif(btrim(name), ''), project_type, project_status), '')
$$;
comment on function migration.project_embedding_text(text, text, text) is
    'projects: name, type and status.';

-- a row the nightly sync marked legacy_removed_at is gone from legacy: phase 5 treats it as
-- deleted (no queue row, no vector, no Dify document, never a search hit). Through to_jsonb,
-- because the column exists only once a sync ran (migration_ops.sync.apply adds it).
create or replace function migration.legacy_removed(r anyelement) returns boolean
language sql stable parallel safe as $$ select (to_jsonb(r) ->> 'legacy_removed_at') is not null $$;

-- row adapters: what the generic enqueue trigger calls on a transition-table row.
create or replace function migration.embedding_text(r public.messages) returns text
language sql stable as $$ select migration.message_embedding_text(r.content) $$;
create or replace function migration.embedding_text(r public.orders) returns text
language sql stable as $$
    select migration.order_embedding_text(r.complaint, r.conditions, r.objective, r.notes,
                                          r.scanner_notes)
$$;
create or replace function migration.embedding_text(r public.profiles) returns text
language sql stable as $$
    select migration.profile_embedding_text(r.profile_type::text, r.first_name, r.last_name,
                                            r.patient_status::text)
$$;
create or replace function migration.embedding_text(r public.projects) returns text
language sql stable as $$
    select migration.project_embedding_text(r.name, r.project_type::text, r.project_status::text)
$$;

-- the legacy id a queue row is reconciled and rolled back by (messages from legacy comments:
-- the negated comment id, so the two legacy sources never collide).
create or replace function migration.embedding_source_key(r public.messages) returns bigint
language sql stable as $$ select coalesce(r.legacy_record_id, -r.legacy_comment_id) $$;
create or replace function migration.embedding_source_key(r public.orders) returns bigint
language sql stable as $$ select r.legacy_instruction_id $$;
create or replace function migration.embedding_source_key(r public.profiles) returns bigint
language sql stable as $$ select r.legacy_user_id $$;
create or replace function migration.embedding_source_key(r public.projects) returns bigint
language sql stable as $$ select r.legacy_project_id $$;

-- ---------------------------------------------------------------- queue
create table if not exists migration.embedding_queue (
    entity           text        not null,
    row_id           uuid        not null,
    source_key       bigint,
    content_hash     text        not null,
    status           text        not null default 'pending',
    attempts         integer     not null default 0,
    next_attempt_at  timestamptz not null default now(),
    last_error_class text,
    embedded_hash    text,
    embedding_model  text,
    enqueued_at      timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    primary key (entity, row_id),
    constraint embedding_queue_status_known check (status in ('pending', 'done', 'dead'))
) partition by list (entity);
comment on table migration.embedding_queue is
    'rows whose embeddable text must be (re-)embedded: content_hash = md5 of the builder text; '
    'done when embedded_hash = content_hash; dead after 3 failed attempts (last_error_class).';

-- the enqueue trigger: one statement-level function for every embeddable table (tg_argv[0] is
-- the entity). Set-based over the transition table; a row is re-queued only when the hash of
-- its builder text changed; a row marked legacy_removed_at is not queued and loses its queue
-- row (the embed step purges its vectors: ai/purge_removed.sql). security definer: an API user updating a row may not write the
-- migration schema itself.
create or replace function migration.enqueue_embeddings() returns trigger
language plpgsql security definer set search_path from current
as $$
begin
    if tg_op = 'DELETE' then
        execute 'delete from migration.embedding_queue as q using old_rows as o '
                'where q.entity = $1 and q.row_id = o.id' using tg_argv[0];
        return null;
    end if;
    -- a row the sync just marked legacy_removed_at leaves the queue at once, as a deleted row
    -- does (phase 5's next extract does not stage it; its vectors go in the embed step).
    if tg_op = 'UPDATE' then
        execute format($q$
            delete from migration.embedding_queue as q using new_rows as n
            join %s as p on p.id = n.id
            where q.entity = $1 and q.row_id = p.id and migration.legacy_removed(p)
        $q$, tg_relid::regclass) using tg_argv[0];
    end if;
    -- joined back to the table: its row type picks the entity's builder (the transition
    -- table's rows are anonymous records), and an after-statement trigger sees the new rows.
    execute format($q$
        insert into migration.embedding_queue as q (entity, row_id, source_key, content_hash)
        select $1, p.id, migration.embedding_source_key(p),
               md5(coalesce(migration.embedding_text(p), ''))
        from new_rows as n
        join %s as p on p.id = n.id
        where not migration.legacy_removed(p)
        on conflict (entity, row_id) do update
        set content_hash = excluded.content_hash, source_key = excluded.source_key,
            status = 'pending', attempts = 0, next_attempt_at = now(), last_error_class = null,
            updated_at = now()
        where q.content_hash is distinct from excluded.content_hash
    $q$, tg_relid::regclass) using tg_argv[0];
    return null;
end
$$;

-- ---------------------------------------------------------------- dify mapping
create table if not exists migration.dify_documents (
    entity           text        not null,
    legacy_id        bigint      not null,
    dataset_id       text        not null,
    document_id      text        not null,
    content_hash     text        not null,
    indexing_status  text,
    synced_at        timestamptz not null default now(),
    primary key (entity, legacy_id),
    unique (document_id)
);
-- the indexing batch of the last create or update: a sync interrupted while polling (a 403
-- rate limit, a kill) polls the rows still 'pending' on its next run instead of creating again.
alter table migration.dify_documents add column if not exists indexing_batch text;
comment on table migration.dify_documents is
    'one Dify knowledge document per embeddable row: a rerun with the same content_hash creates '
    'nothing; a changed hash updates the document; a row gone from the target deletes it.';

-- ---------------------------------------------------------------- per entity
do $$
declare
    e record;
begin
    for e in
        select * from (values
            ('messages', 'public.messages', 'message_embeddings',
             'coalesce(p.legacy_record_id, -p.legacy_comment_id)'),
            ('orders', 'public.orders', 'order_embeddings', 'p.legacy_instruction_id'),
            ('profiles', 'public.profiles', 'profile_embeddings', 'p.legacy_user_id'),
            ('projects', 'public.projects', 'project_embeddings', 'p.legacy_project_id')
        ) as v (entity, parent, vectors, legacy_id)
    loop
        execute format(
            'create table if not exists migration.%I partition of migration.embedding_queue '
            'for values in (%L)', 'embedding_queue_' || e.entity, e.entity);
        -- the phase 5 load upserts into the partition by row id.
        execute format('create unique index if not exists %I on migration.%I (row_id)',
            'embedding_queue_' || e.entity || '_row_id_key', 'embedding_queue_' || e.entity);
        execute format(
            'create table if not exists public.%I ('
            '  row_id uuid not null references %s (id) on delete cascade,'
            '  chunk_no integer not null,'
            '  content_hash text not null,'
            '  embedding_model text not null,'
            '  embedding_dim_native integer not null,'
            '  embedding vector(1024) not null,'
            '  created_at timestamptz not null default now(),'
            '  primary key (row_id, chunk_no))', e.vectors, e.parent);
        execute format('create index if not exists %I on public.%I '
            'using hnsw (embedding vector_cosine_ops)', e.vectors || '_hnsw', e.vectors);
        execute format('revoke all on public.%I from anon', e.vectors);
        execute format('revoke insert, update, delete, truncate on public.%I from authenticated',
            e.vectors);
        execute format('grant select on public.%I to authenticated', e.vectors);
        execute format('grant select, insert, update, delete on public.%I to service_role',
            e.vectors);
        execute format('alter table public.%I enable row level security', e.vectors);
        execute format('drop policy if exists %I on public.%I',
            e.vectors || '_service_role_all', e.vectors);
        execute format('create policy %I on public.%I for all to service_role '
            'using (true) with check (true)', e.vectors || '_service_role_all', e.vectors);
        -- a vector is visible exactly when its row is: the parent's own RLS decides.
        execute format('drop policy if exists %I on public.%I',
            e.vectors || '_select_authenticated', e.vectors);
        execute format('create policy %I on public.%I for select to authenticated '
            'using (exists (select 1 from %s as p where p.id = row_id))',
            e.vectors || '_select_authenticated', e.vectors, e.parent);
        -- semantic search as Supabase users call it (supabase.rpc('match_messages', ...)):
        -- security invoker, so RLS of the vectors and of the parent rows applies; the legacy id
        -- is computed inline (API roles have no access to schema migration).
        -- embedding_model: only vectors of the query's model (vectors of two models never
        -- compare; during a provider change both coexist until the queue re-embedded every
        -- row). Null (the 3-argument RPC) compares with every vector; $4, because a column of
        -- that name would win over the parameter's name. The 3-argument form of
        -- earlier versions is dropped: both forms would make a 3-argument call ambiguous.
        execute format('drop function if exists public.%I(vector, float, int)',
            'match_' || e.entity);
        execute format($f$
            create or replace function public.%I(
                query_embedding vector, match_threshold float, match_count int,
                embedding_model text default null
            ) returns table (id uuid, legacy_id bigint, similarity float)
            language sql stable security invoker set search_path from current
            as $body$
                with nearest as (
                    select v.row_id, 1 - (v.embedding <=> query_embedding) as similarity
                    from public.%I as v
                    where v.embedding <=> query_embedding < 1 - match_threshold
                      and ($4 is null or v.embedding_model = $4)
                    order by v.embedding <=> query_embedding
                    limit least(match_count, 200) * 4
                )
                select p.id, (%s)::bigint, max(n.similarity)
                from nearest as n join %s as p on p.id = n.row_id
                where (to_jsonb(p) ->> 'legacy_removed_at') is null
                group by p.id
                order by max(n.similarity) desc, p.id
                limit least(match_count, 200)
            $body$ $f$, 'match_' || e.entity, e.vectors, e.legacy_id, e.parent);
        execute format('revoke all on function public.%I(vector, float, int, text) from anon',
            'match_' || e.entity);
        -- the enqueue triggers: statement level (set-based for bulk syncs), created disabled.
        if not exists (select 1 from pg_trigger
                       where tgrelid = e.parent::regclass and tgname = 'embedding_enqueue_insert') then
            execute format('create trigger embedding_enqueue_insert after insert on %s '
                'referencing new table as new_rows for each statement '
                'execute function migration.enqueue_embeddings(%L)', e.parent, e.entity);
            execute format('create trigger embedding_enqueue_update after update on %s '
                'referencing new table as new_rows for each statement '
                'execute function migration.enqueue_embeddings(%L)', e.parent, e.entity);
            execute format('create trigger embedding_enqueue_delete after delete on %s '
                'referencing old table as old_rows for each statement '
                'execute function migration.enqueue_embeddings(%L)', e.parent, e.entity);
            execute format('alter table %s disable trigger embedding_enqueue_insert', e.parent);
            execute format('alter table %s disable trigger embedding_enqueue_update', e.parent);
            execute format('alter table %s disable trigger embedding_enqueue_delete', e.parent);
        end if;
    end loop;
end
$$;
