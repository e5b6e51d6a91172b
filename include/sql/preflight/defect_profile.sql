-- preflight/defect_profile.sql
-- purpose: counts per defect class the transforms handle, on the legacy database, before a
--          run: how many rows each rule family will quarantine or repair. Counts only.
--          One query per block, each headed by a "check" comment naming the defect class and
--          the table; a block whose table or
--          column is missing (schema drift) is reported as not checked.
-- inputs: %(email_pattern)s (include.transforms.patterns.EMAIL_PATTERN),
--         %(mojibake_pattern)s (include.transforms.text_repair.MOJIBAKE_CANDIDATE_PATTERN),
--         %(state_codes)s the dispatch_state.status codes that map to an order state.
-- idempotent: read-only queries (run in a read-only legacy session).

-- check: orphan dispatch_patient
select count(*) from public.dispatch_patient as p
where not exists (select 1 from public.auth_user as u where u.id = p.user_id);

-- check: orphan dispatch_instruction
select count(*) from public.dispatch_instruction as i
where not exists (select 1 from public.dispatch_patient as p where p.id = i.patient_id);

-- check: orphan dispatch_state
select count(*) from public.dispatch_state as s
where s.instruction_id is null
    or not exists (select 1 from public.dispatch_instruction as i where i.id = s.instruction_id);

-- check: orphan dispatch_comment
select count(*) from public.dispatch_comment as c
where not exists (select 1 from public.dispatch_plan as p where p.id = c.plan_id);

-- check: bad_email auth_user
select count(*) from public.auth_user as u
where btrim(u.email) <> '' and lower(btrim(u.email, E' \t\r\n')) !~ %(email_pattern)s;

-- check: unknown_code dispatch_state
select count(*) from public.dispatch_state as s where s.status <> all(%(state_codes)s);

-- check: mis_encoded_text dispatch_record
select count(*) from public.dispatch_record as r where r.text ~ %(mojibake_pattern)s;

-- check: mis_encoded_text dispatch_comment
select count(*) from public.dispatch_comment as c where c.text ~ %(mojibake_pattern)s
