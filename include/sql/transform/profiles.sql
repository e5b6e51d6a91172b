-- transform/profiles.sql
-- purpose: shape every staged auth_user row as a public.profiles row (one row per user), typed
--          and with the user's dispatch_patient fields merged in.
--   typing (legacy-system.md §1b, final rule), first match wins:
--     0. a dispatch_patient row and a valid suffix (4 letters/digits) -> patient, whatever the
--        groups or flags (a patient's account also put in the doctors' group is a patient);
--     1. the staff and doctor groups (ref_group_profile_type.ahead_of_flags: 2 doctor,
--        11 technician, 4 admin, 5 master); several -> the highest group id; unmapped groups
--        are ignored;
--     2. flags: is_superuser -> master, else is_staff -> admin;
--     3. the patients' group (1) -> patient: §1b lists it after the flags, so a superuser or
--        staff account that is also in group 1 is master or admin;
--     4. a dispatch_patient row -> patient;
--     5. otherwise 'unclassified': never guessed (the legacy scripts disagreed: patient in one,
--        admin in another), left for a human.
--   user fields: email trimmed and lower-cased, '' -> null, not an e-mail address -> null with
--     the raw value in metadata.legacy_email; names trimmed, blank or 'null' -> null; test
--     accounts flagged (is_test_account), never dropped; a blank username is kept as null so
--     the suite quarantines the row (rule profiles.username_present).
--   patient fields, from the user's patient row (the lowest dispatch_patient.id when there are
--     several; the others listed in metadata.other_legacy_patient_ids):
--     birthdate before 1900-01-01 or after the run's as_of -> null, raw in metadata;
--     sex via ref_sex, status via ref_patient_status: unknown codes -> null, raw in metadata
--     (also status 4, which shares 'active' with 1); schemes parsed with migration.try_jsonb,
--     invalid json -> null, raw text in metadata; suffix must be 4 letters/digits, else null
--     with the raw value in metadata; doctor and office ids kept raw (legacy_doctor_user_id,
--     legacy_office_id): load/profiles__link_care_team.sql resolves them after the upsert.
-- auth_user.password is not staged (see the spec's direct_columns): it never rests here.
-- inputs: staging.profiles__auth_user, staging.profiles__auth_user_groups,
--         staging.profiles__dispatch_patient; temp tables ref_group_profile_type, ref_sex,
--         ref_patient_status; setting migration.as_of (the run's snapshot time).
-- output: staging.profiles__transformed, columns and types of public.profiles (minus id,
--         auth_user_id, the resolved fks and the timestamps the table maintains).
-- idempotent: reads only staged rows, code maps and migration.as_of; drops and rebuilds its
--             output; no ids, no now(): the same input always gives the same rows.

drop table if exists staging.profiles__transformed;

create unlogged table staging.profiles__transformed as
with
run as (
    select (current_setting('migration.as_of')::timestamptz at time zone 'UTC')::date as as_of_date
),

users as (
    select u.*
    from staging.profiles__auth_user as u
),

-- the type given by groups, once for the groups ranked ahead of the flags and once for those
-- after them: in each, the mapped group with the highest id.
group_type as (
    select distinct on (g.user_id, r.ahead_of_flags)
        g.user_id,
        r.ahead_of_flags,
        g.group_id,
        r.profile_type
    from staging.profiles__auth_user_groups as g
    join ref_group_profile_type as r on r.group_id = g.group_id
    order by g.user_id, r.ahead_of_flags, g.group_id desc
),

user_groups as (
    select
        g.user_id,
        array_agg(distinct g.group_id order by g.group_id) as group_ids
    from staging.profiles__auth_user_groups as g
    group by g.user_id
),

-- one patient row per user: the lowest id; the other ids are reported, not merged.
patient_ids as (
    select
        p.user_id,
        min(p.id) as patient_id,
        array_agg(p.id order by p.id) as all_patient_ids
    from staging.profiles__dispatch_patient as p
    group by p.user_id
),

patients as (
    select
        p.*,
        pi.all_patient_ids[2:] as other_patient_ids,
        nullif(btrim(p.schemes), '') as raw_schemes,
        migration.try_jsonb(nullif(btrim(p.schemes), '')) as schemes_json,
        nullif(btrim(p.suffix), '') as raw_suffix,
        rs.gender,
        rs.sex as known_sex,
        rps.patient_status,
        rps.canonical as status_canonical
    from patient_ids as pi
    join staging.profiles__dispatch_patient as p on p.id = pi.patient_id
    left join ref_sex as rs on rs.sex = p.sex
    left join ref_patient_status as rps on rps.status = p.status
),

cleaned as (
    select
        u.*,
        lower(btrim(u.email, E' \t\r\n')) as email_clean,
        case
            when lower(btrim(u.first_name)) in ('', 'null') then null
            else btrim(u.first_name)
        end as first_name_clean,
        case
            when lower(btrim(u.last_name)) in ('', 'null') then null
            else btrim(u.last_name)
        end as last_name_clean
    from users as u
),

typed as (
    select
        c.*,
        coalesce(
            case when pt.id is not null and pt.raw_suffix ~ '^[[:alnum:]]{4}$' then 'patient' end,
            gt.profile_type,
            case when c.is_superuser then 'master' when c.is_staff then 'admin' end,
            ga.profile_type,
            case when pt.id is not null then 'patient' end,
            'unclassified'
        ) as profile_type,
        -- the group that typed the user (a flag outranks the groups after it)
        coalesce(
            gt.group_id,
            case when not coalesce(c.is_superuser or c.is_staff, false) then ga.group_id end
        ) as typing_group_id,
        ug.group_ids,
        c.email_clean ~ '^[a-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&''*+/=?^_`{|}~-]+)*@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$'
            as email_valid,
        pt.id as patient_id,
        pt.other_patient_ids,
        pt.doctor_id as patient_doctor_user_id,
        pt.office_id as patient_office_id,
        pt.birthdate,
        pt.sex,
        pt.known_sex,
        pt.gender,
        pt.status,
        pt.patient_status,
        pt.status_canonical,
        pt.archived,
        pt.suspended,
        pt.raw_schemes,
        pt.schemes_json,
        pt.raw_suffix,
        pt.submitted_at as patient_submitted_at,
        pt.updated_at as patient_updated_at
    from cleaned as c
    left join group_type as gt on gt.user_id = c.id and gt.ahead_of_flags
    left join group_type as ga on ga.user_id = c.id and not ga.ahead_of_flags
    left join user_groups as ug on ug.user_id = c.id
    left join patients as pt on pt.user_id = c.id
)

select
    t.id::integer as legacy_user_id,
    t.patient_id::integer as legacy_patient_id,
    t.profile_type::public.profile_type as profile_type,
    (case when btrim(t.username) = '' then null else t.username end)::text as username,
    (case when t.email_valid then t.email_clean end)::text as email,
    t.first_name_clean::text as first_name,
    t.last_name_clean::text as last_name,
    t.is_active::boolean as is_active,
    t.is_staff::boolean as is_staff,
    t.is_superuser::boolean as is_superuser,
    (
        -- internal domains mark test accounts only on customer-side profiles: brius staff
        -- (technicians, masters, admins) legitimately use @brius.com addresses.
        coalesce(
            t.email_clean ~ '@([a-z0-9-]+\.)*(brius|mechanodontics)\.com$'
            and t.profile_type in ('doctor', 'patient', 'unclassified'),
            false
        )
        or concat_ws(' ', lower(t.username), t.email_clean, lower(t.first_name), lower(t.last_name))
            ~ '(^|[^a-z])demo([^a-z]|$)'
    )::boolean as is_test_account,
    t.last_login::timestamptz as last_login_at,
    t.date_joined::timestamptz as date_joined,
    (case
        when t.birthdate >= date '1900-01-01' and t.birthdate <= run.as_of_date then t.birthdate
    end)::date as date_of_birth,
    t.gender::public.gender as gender,
    t.patient_status::public.patient_status as patient_status,
    t.archived::boolean as archived,
    t.suspended::boolean as suspended,
    nullif(t.schemes_json, 'null'::jsonb)::jsonb as schemes,
    (case when t.raw_suffix ~ '^[[:alnum:]]{4}$' then t.raw_suffix end)::text as patient_suffix,
    t.patient_submitted_at::timestamptz as patient_submitted_at,
    t.patient_updated_at::timestamptz as patient_updated_at,
    t.patient_doctor_user_id::integer as legacy_doctor_user_id,
    t.patient_office_id::integer as legacy_office_id,
    jsonb_strip_nulls(jsonb_build_object(
        'legacy_email',
            case when t.email_clean <> '' and not t.email_valid then t.email end,
        'legacy_group_ids',
            case
                when t.group_ids is distinct from array[t.typing_group_id] then to_jsonb(t.group_ids)
            end,
        'other_legacy_patient_ids',
            case when cardinality(t.other_patient_ids) > 0 then to_jsonb(t.other_patient_ids) end,
        'legacy_birthdate',
            case
                when t.birthdate < date '1900-01-01' or t.birthdate > run.as_of_date
                    then to_jsonb(t.birthdate::text)
            end,
        'legacy_sex',
            case when t.sex is not null and t.known_sex is null then to_jsonb(t.sex) end,
        'legacy_status',
            case
                when t.status is not null and t.status_canonical is not true then to_jsonb(t.status)
            end,
        'legacy_schemes',
            case when t.raw_schemes is not null and t.schemes_json is null then t.raw_schemes end,
        'legacy_suffix',
            case when t.raw_suffix is not null and t.raw_suffix !~ '^[[:alnum:]]{4}$' then t.raw_suffix end
    ))::jsonb as metadata
from typed as t
cross join run;
