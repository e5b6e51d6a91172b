-- transform/offices.sql
-- purpose: shape every staged dispatch_office row as a public.offices row (one row per
--          office, valid or not), repairing what has one right answer and keeping the rest:
--   * tax_rate: values > 1 are percentages (10.2500 = 10.25 %) -> divided by 100, raw value
--     in metadata.legacy_tax_rate. a rate still outside [0, 1) (negative, exactly 1, >= 100 %)
--     stays as it is: the suite quarantines the row (rule offices.tax_rate_fraction).
--   * country: free text -> iso 3166-1 alpha-2 through ref_country, matched on the ascii
--     letters of the text, lower-cased ('U.S.A.', ' usa ', 'United States' -> 'US'). null or
--     blank -> null. unrecognised text -> null code, raw text in metadata.legacy_country: not
--     quarantined, because an office without a known country is still a valid customer (the
--     country is informational; tax and orders do not depend on it) and dropping it would
--     orphan its patients. respelled values also keep their raw text in metadata.
--   * text columns: trimmed, blank -> null. valid -> is_valid, emails (a flag) ->
--     email_notifications, doctor_id -> legacy_owner_user_id (raw lineage, no fk here).
-- inputs: staging.offices__dispatch_office; temp table ref_country (include.transforms.reference).
-- output: staging.offices__transformed, columns and types of public.offices (tax_rate is
--         numeric(10,6) in both: wide enough for any legacy numeric(8,4) value).
-- idempotent: reads only staged rows and code maps, drops and rebuilds its output; no ids,
--             no timestamps, no now(): the same input always gives the same rows.

drop table if exists staging.offices__transformed;

create unlogged table staging.offices__transformed as
with
source as (
    select o.*
    from staging.offices__dispatch_office as o
),

-- one row per office: ref_country has one row per key, so the left join cannot fan out.
repaired as (
    select
        s.*,
        case when s.tax_rate > 1 then s.tax_rate / 100 else s.tax_rate end as tax_fraction,
        nullif(btrim(s.country), '') as raw_country,
        r.country_code
    from source as s
    left join ref_country as r
        on r.country_key = nullif(lower(regexp_replace(s.country, '[^A-Za-z]+', '', 'g')), '')
)

select
    r.id::integer as legacy_office_id,
    nullif(btrim(r.name), '')::text as name,
    nullif(btrim(r.address), '')::text as address,
    nullif(btrim(r.apt), '')::text as apartment,
    nullif(btrim(r.city), '')::text as city,
    nullif(btrim(r.state), '')::text as state,
    nullif(btrim(r.zip), '')::text as zip_code,
    r.country_code::text as country_code,
    nullif(btrim(r.phone), '')::text as phone,
    r.tax_fraction::numeric(10, 6) as tax_rate,
    r.valid::boolean as is_valid,
    r.emails::boolean as email_notifications,
    nullif(btrim(r.sq_customer_id), '')::text as square_customer_id,
    r.doctor_id::integer as legacy_owner_user_id,
    jsonb_strip_nulls(jsonb_build_object(
        'legacy_tax_rate', case when r.tax_fraction is distinct from r.tax_rate then r.tax_rate end,
        'legacy_country', case when r.raw_country is distinct from r.country_code then r.raw_country end
    ))::jsonb as metadata
from repaired as r;
