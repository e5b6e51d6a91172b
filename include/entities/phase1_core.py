"""Phase 1 (core): offices, profiles, order types. Nothing here depends on another phase."""

from __future__ import annotations

from include.entities.spec import (
    DedupSpec,
    DirectColumn,
    EntitySpec,
    PhaseSpec,
    Rollback,
    SourceTable,
)

OFFICES = EntitySpec(
    name="offices",
    phase=1,
    description="Every dispatch_office (valid as a flag); tax rate as a fraction, ISO country.",
    sources=(
        SourceTable(
            "dispatch_office",
            (
                "id",
                "doctor_id",
                "name",
                "address",
                "apt",
                "city",
                "state",
                "zip",
                "country",
                "phone",
                "tax_rate",
                "valid",
                "sq_customer_id",
                "emails",
            ),
        ),
    ),
    transform_sql="transform/offices.sql",
    suite="offices.json",
    target_table="public.offices",
    key="legacy_office_id",
    reference_tables=("ref_country",),
)

PROFILES = EntitySpec(
    name="profiles",
    phase=1,
    description="Every auth_user, typed by groups, flags, patient row; patient fields merged in.",
    sources=(
        SourceTable(
            "auth_user",
            (
                "id",
                "last_login",
                "is_superuser",
                "username",
                "first_name",
                "last_name",
                "email",
                "is_staff",
                "is_active",
                "date_joined",
            ),
        ),
        SourceTable(
            "auth_user_groups", ("id", "user_id", "group_id"), primary_columns=("user_id",)
        ),
        SourceTable(
            "dispatch_patient",
            (
                "id",
                "user_id",
                "doctor_id",
                "office_id",
                "birthdate",
                "sex",
                "status",
                "archived",
                "suspended",
                "schemes",
                "suffix",
                "submitted_at",
                "updated_at",
            ),
            # has updated_at, but a cursor cannot see a child row deleted: content comparison
            primary_columns=("user_id",),
        ),
    ),
    # auth_user.password never rests in staging: it goes straight into the target at load.
    direct_columns=(DirectColumn("auth_user", "id", "password", "password_hash"),),
    transform_sql="transform/profiles.sql",
    suite="profiles.json",
    target_table="public.profiles",
    key="legacy_user_id",
    parents=("offices",),
    reference_tables=("ref_group_profile_type", "ref_sex", "ref_patient_status"),
    post_load_sql=("load/profiles__link_care_team.sql", "load/profiles__link_duplicates.sql"),
    # Patients registered twice are linked to one survivor, never deleted (docs/dedup.md).
    dedup=DedupSpec(
        fields=(
            ("first_name", "first_name"),
            ("last_name", "last_name"),
            ("birthdate", "date_of_birth"),
            ("sex", "nullif(gender::text, 'unknown')"),
            ("email", "email"),
            ("doctor", "legacy_doctor_user_id"),
            ("office", "legacy_office_id"),
        ),
        candidates="profile_type = 'patient' and not is_test_account",
        activity="greatest(patient_updated_at, patient_submitted_at, last_login_at, date_joined)",
    ),
)

ORDER_TYPES = EntitySpec(
    name="order_types",
    phase=1,
    description="dispatch_course merged into the standard order types; legacy_course_id kept.",
    sources=(SourceTable("dispatch_course", ("id", "name", "type", "customization")),),
    transform_sql="transform/order_types.sql",
    suite="order_types.json",
    target_table="public.order_types",
    key="legacy_course_id",
    upsert_key="code",
    reference_tables=("ref_course_order_type",),
    # The standard types are seeded by 100_phase1_core.sql and course rows merge into them:
    # a rollback empties the table, the next run seeds and merges again.
    rollback=Rollback(all_rows=True),
)

PHASE_1 = PhaseSpec(
    number=1,
    name="core",
    title="Core: offices, profiles, order types",
    entities=(OFFICES, PROFILES, ORDER_TYPES),
    schema_sql=(
        "target/000_supabase_compat.sql",
        "target/010_migration_schema.sql",
        "target/020_backups.sql",
        "target/030_run_integrity.sql",
        "target/040_sync.sql",
        "target/100_phase1_core.sql",
        "target/110_dedup.sql",
    ),
)
