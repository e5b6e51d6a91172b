"""Build the sandbox legacy database: production-shaped tables with the documented defects.

One call drops and recreates the legacy tables of ``include/sql/legacy/schema.sql`` in
schema ``public`` and fills them at a chosen scale of the production volumes, then adds
keys, Django's deferrable foreign keys and indexes (``constraints.sql``) and ANALYZEs.
Everything happens in a single transaction, so a failed build leaves the previous
sandbox (or nothing) behind, never half a database, and COPY can use FREEZE because
the tables were created in that same transaction.

Rows are streamed with psycopg's ``copy.write_row`` from generators; only compact
skeletons of the parent tables (ids, times, links) are held in memory. A ``sandbox``
schema records what was built: ``build_info`` (seed, scale, counts), ``injected_defects``
(one row per defect instance) and ``media_manifest`` (files that have bytes in the media
store, including the ones whose bytes are deliberately missing).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from include.sandbox import activity, content_types, orders, people, workflow
from include.sandbox.common import BUILT_AT, DefectLog
from include.sandbox.volumes import scaled_volumes

log = logging.getLogger(__name__)

#: Bump when a change to the generator changes the rows it writes: ``sandbox_exists``
#: then reports the old sandbox as stale and ``make demo`` rebuilds it.
GENERATOR_VERSION = 4

SQL_DIR = Path(__file__).resolve().parents[1] / "sql" / "legacy"
_MEDIA_MARKER = ".sandbox-media"

#: Columns written per legacy table, in load order (which is also the order of the counts).
COLUMNS: dict[str, tuple[str, ...]] = {
    "django_content_type": ("id", "app_label", "model"),
    "auth_permission": ("id", "name", "content_type_id", "codename"),
    "auth_group": ("id", "name"),
    "auth_user": (
        "id", "password", "last_login", "is_superuser", "username", "first_name", "last_name",
        "email", "is_staff", "is_active", "date_joined",
    ),
    "auth_user_groups": ("id", "user_id", "group_id"),
    "dispatch_office": (
        "id", "doctor_id", "name", "address", "apt", "city", "state", "zip", "country", "phone",
        "tax_rate", "valid", "sq_customer_id", "emails",
    ),
    "dispatch_office_doctors": ("id", "office_id", "user_id"),
    "dispatch_doctorsetting": (
        "id", "user_id", "clinical_preferences", "sq_customer_id", "promised_payment", "credit",
        "tier_type", "tier_finish", "installment_payments", "baa_agreed_at", "eula_agreed_at",
        "company_account",
    ),
    "dispatch_usersetting": ("id", "user_id", "emails", "require_2fa"),
    "dispatch_course": ("id", "name", "type", "customization"),
    "dispatch_product": (
        "id", "name", "description", "free", "deleted", "customization", "type", "substitute",
        "course_id",
    ),
    "dispatch_patient": (
        "id", "user_id", "doctor_id", "office_id", "birthdate", "sex", "status", "archived",
        "suspended", "schemes", "suffix", "submitted_at", "updated_at",
    ),
    "dispatch_jaw": ("id", "bond_teeth", "extract_teeth", "reason", "product_id", "labial"),
    "dispatch_instruction": (
        "id", "patient_id", "course_id", "status", "submitted_at", "updated_at", "notes",
        "complaint", "conditions", "objective", "scanner_notes", "exports", "price", "model",
        "scanner", "cbct", "comprehensive", "accept_extraction", "deleted", "order",
        "upper_jaw_id", "lower_jaw_id", "suffix",
    ),
    "dispatch_project": (
        "id", "uid", "name", "size", "type", "status", "creator_id", "created_at", "public",
    ),
    "dispatch_plan": ("id", "instruction_id", "project_id", "notes", "number", "name", "original"),
    "dispatch_record": (
        "id", "target_id", "type", "created_at", "text", "author_id", "target_type_id",
        "group_id", "public",
    ),
    "dispatch_file": (
        "id", "uid", "name", "ext", "size", "type", "instruction_id", "created_at",
        "description", "product_id", "parameters", "record_id", "status",
    ),
    "dispatch_record_attachments": ("id", "record_id", "file_id"),
    "dispatch_comment": ("id", "plan_id", "author_id", "text", "created_at"),
    "dispatch_state": ("id", "status", "on", "changed_at", "actor_id", "instruction_id"),
    "dispatch_category": ("id", "name", "parent_id"),
    "dispatch_template": (
        "id", "task_name", "action_name", "text_name", "function", "status", "duration",
        "category_id", "course_id", "predefined", "read_only", "extensions", "alerts", "separate",
    ),
    "dispatch_template_predecessors": ("id", "from_template_id", "to_template_id"),
    "dispatch_task": (
        "id", "instruction_id", "template_id", "plan_id", "file_id", "actor_id", "checked",
        "done_at", "text", "jaw",
    ),
}  # fmt: skip
#: The legacy tables the sandbox builds.
LEGACY_TABLES: tuple[str, ...] = tuple(COLUMNS)

_SANDBOX_DDL = """
DROP SCHEMA IF EXISTS sandbox CASCADE;
CREATE SCHEMA sandbox;
COMMENT ON SCHEMA sandbox IS 'What include.sandbox built into this legacy database (tests only)';
CREATE TABLE sandbox.injected_defects (
    defect     text    NOT NULL,
    table_name text    NOT NULL,
    legacy_id  integer NOT NULL,
    related_id integer
);
COMMENT ON COLUMN sandbox.injected_defects.related_id IS
    'the other row the instance is about: the original of a duplicate_patient (the truth)';
CREATE TABLE sandbox.media_manifest (
    file_id       integer PRIMARY KEY,
    relative_path text    NOT NULL,
    size          integer NOT NULL,
    sha256        text    NOT NULL,
    missing       boolean NOT NULL
);
CREATE TABLE sandbox.build_info (
    seed              integer          NOT NULL,
    scale             double precision NOT NULL,
    built_at_fixed    timestamptz      NOT NULL,
    counts            jsonb            NOT NULL,
    generator_version integer          NOT NULL
);
"""


class _Loader:
    """COPYs row streams into tables of one open transaction and counts the rows."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.counts: dict[str, int] = {}

    def copy(
        self, table: str, rows: Iterable[Sequence[object]], columns: Sequence[str] | None = None
    ) -> None:
        started = time.monotonic()
        names = columns or COLUMNS[table]
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FREEZE)").format(
            sql.Identifier(*table.split(".")), sql.SQL(", ").join(sql.Identifier(c) for c in names)
        )
        written = 0
        with self.conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
        self.counts[table] = written
        log.info("%s: %d rows in %.1fs", table, written, time.monotonic() - started)


def build_sandbox(
    dsn: str, *, scale: float = 0.02, seed: int = 7, media_dir: Path | None = None
) -> dict[str, int]:
    """Drop and rebuild the sandbox legacy tables at ``dsn``; return row counts per table.

    Args:
        dsn: libpq connection string of the legacy database (schema ``public`` is used).
        scale: fraction of the production volumes (1.0 = production, ~1.7M rows).
        seed: the same (seed, scale) always gives byte-identical table contents.
        media_dir: when given, small deterministic files are written there for ~2% of the
            dispatch_file rows, at :func:`include.sandbox.media.media_relative_path`.

    Raises:
        ValueError: ``scale`` is not positive, or ``media_dir`` holds a ``files`` tree
            that the sandbox did not write.
    """
    volumes = scaled_volumes(scale)
    if media_dir is not None:
        _prepare_media_dir(media_dir)
    defects = DefectLog()
    started = time.monotonic()
    with psycopg.connect(dsn, application_name="sandbox") as conn:
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        conn.execute(_sql_file("schema.sql"))
        conn.execute(_SANDBOX_DDL)
        loader = _Loader(conn)
        _load(loader, seed, volumes, media_dir, defects)
        loaded = time.monotonic()
        conn.execute(_sql_file("constraints.sql"))
        log.info("keys, foreign keys and indexes: %.1fs", time.monotonic() - loaded)
        counts = {table: loader.counts[table] for table in LEGACY_TABLES}
        loader.copy(
            "sandbox.injected_defects",
            defects.rows,
            ("defect", "table_name", "legacy_id", "related_id"),
        )
        loader.copy(
            "sandbox.build_info",
            [(seed, scale, BUILT_AT, json.dumps(counts), GENERATOR_VERSION)],
            ("seed", "scale", "built_at_fixed", "counts", "generator_version"),
        )
    with psycopg.connect(dsn, autocommit=True, application_name="sandbox") as conn:
        conn.execute(
            sql.SQL("ANALYZE {}").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in LEGACY_TABLES)
            )
        )
    log.info(
        "sandbox built: %d rows, %d defect instances, %.1fs",
        sum(counts.values()),
        len(defects.rows),
        time.monotonic() - started,
    )
    return counts


def _load(
    loader: _Loader, seed: int, volumes: dict[str, int], media_dir: Path | None, defects: DefectLog
) -> None:
    """Plan the skeletons and stream every legacy table, parents before children."""
    cts = content_types.content_type_rows(seed)
    loader.copy("django_content_type", cts)
    loader.copy("auth_permission", content_types.permission_rows(cts))
    loader.copy("auth_group", people.group_rows())

    users = people.plan_users(seed, volumes)
    offices = people.plan_offices(seed, volumes, users, defects)
    patients = people.plan_patients(seed, users, offices, defects)
    first, last = people.assign_names(seed, users, patients, offices)
    loader.copy("auth_user", people.user_rows(seed, users, first, last, defects))
    loader.copy("auth_user_groups", people.user_group_rows(seed, users, defects))
    loader.copy("dispatch_office", people.office_rows(seed, offices, defects))
    loader.copy("dispatch_office_doctors", people.office_doctor_rows(offices))
    loader.copy("dispatch_doctorsetting", people.doctorsetting_rows(seed, users))
    loader.copy("dispatch_usersetting", people.usersetting_rows(seed, users))
    loader.copy("dispatch_course", orders.course_rows())
    loader.copy("dispatch_product", orders.product_rows())
    loader.copy("dispatch_patient", people.patient_rows(seed, patients, users, defects))

    plan = orders.plan_orders(seed, volumes, patients, defects)
    actors = activity.Actors(
        technicians=users.of_role("technician"),
        staff=users.of_role("admin", "master", "staff"),
        doctors=users.of_role("doctor"),
        everyone=users.ids,
        patient_users=[users.ids[i] for i in patients.user_index],
    )
    loader.copy("dispatch_jaw", orders.jaw_rows(seed, plan))
    loader.copy("dispatch_instruction", orders.instruction_rows(seed, plan, patients, defects))
    loader.copy("dispatch_project", orders.project_rows(seed, plan, actors.technicians))
    loader.copy("dispatch_plan", orders.plan_rows(seed, plan))

    attached: list[tuple[int, int]] = []
    ct_ids = {(app, model): ct_id for ct_id, app, model in cts}
    loader.copy(
        "dispatch_record",
        activity.record_rows(
            seed,
            volumes["dispatch_record"],
            volumes["dispatch_record_attachments"],
            ct_ids,
            actors,
            patients,
            plan,
            defects,
            attached,
        ),
    )
    files = activity.FileIndex([0] * len(plan.ids), [0] * len(plan.ids))
    loader.copy(
        "dispatch_file",
        activity.file_rows(
            seed, volumes["dispatch_file"], plan, attached, media_dir, defects, files
        ),
    )
    loader.copy("dispatch_record_attachments", activity.attachment_rows(files))
    loader.copy(
        "dispatch_comment",
        activity.comment_rows(seed, volumes["dispatch_comment"], plan, patients, actors, defects),
    )
    loader.copy(
        "dispatch_state",
        activity.state_rows(seed, volumes["dispatch_state"], plan, actors, defects),
    )

    templates = workflow.templates()
    loader.copy("dispatch_category", workflow.category_rows())
    loader.copy("dispatch_template", workflow.template_rows(templates))
    loader.copy("dispatch_template_predecessors", workflow.predecessor_rows(templates, defects))
    loader.copy(
        "dispatch_task",
        workflow.task_rows(
            seed, volumes["dispatch_task"], plan, patients, files, actors, templates
        ),
    )
    loader.copy(
        "sandbox.media_manifest",
        files.manifest,
        ("file_id", "relative_path", "size", "sha256", "missing"),
    )


def _sql_file(name: str) -> sql.SQL:
    """A project SQL file (fixed text from the repository, never user input)."""
    return sql.SQL((SQL_DIR / name).read_text(encoding="utf-8"))


def _prepare_media_dir(media_dir: Path) -> None:
    """Empty the media tree of an earlier build; refuse to touch one the sandbox did not write."""
    tree = media_dir / "files"
    marker = media_dir / _MEDIA_MARKER
    if tree.exists():
        if not marker.exists():
            raise ValueError(
                f"{tree} exists and was not written by the sandbox; not overwriting it"
            )
        shutil.rmtree(tree)
    media_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        "media store written by include.sandbox; rebuilt on every build\n", encoding="utf-8"
    )


def sandbox_exists(dsn: str, scale: float, seed: int) -> bool:
    """Whether ``dsn`` holds a complete sandbox built by this generator with (scale, seed).

    A build commits in one transaction, so a ``build_info`` row implies every table was
    loaded; the legacy tables are checked too in case someone dropped them since.
    """
    with psycopg.connect(dsn, application_name="sandbox") as conn:
        if conn.execute("select to_regclass('sandbox.build_info')").fetchone() == (None,):
            return False
        info = conn.execute(
            "select seed, scale, generator_version from sandbox.build_info"
        ).fetchone()
        if info != (seed, scale, GENERATOR_VERSION):
            return False
        row = conn.execute(
            "select count(*) from unnest(%s::text[]) as t(name)"
            " where to_regclass('public.' || name) is null",
            (list(LEGACY_TABLES),),
        ).fetchone()
        return row == (0,)


def media_complete(dsn: str, media_dir: Path) -> bool:
    """Whether every manifest file that should have bytes exists in ``media_dir`` with its size."""
    with psycopg.connect(dsn, application_name="sandbox") as conn:
        if conn.execute("select to_regclass('sandbox.media_manifest')").fetchone() == (None,):
            return False
        rows = conn.execute(
            "select relative_path, size from sandbox.media_manifest where not missing"
        ).fetchall()
    return all(
        (media_dir / path).is_file() and (media_dir / path).stat().st_size == size
        for path, size in rows
    )
