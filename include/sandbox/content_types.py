"""``django_content_type`` rows numbered the way Django numbers them, differently per seed.

Django inserts a content type per model at ``migrate`` time, in app order: the contrib apps
first, then the project's app; models removed later keep their (stale) rows unless someone
runs ``remove_stale_contenttypes``, and rows deleted by it leave gaps. So the ids are an
accident of one database's history: production has dispatch.patient at 11 and a user
target at 58 (§1a dispatch_record), a fresh copy would not. The sandbox shuffles the order
of the ``dispatch`` models with the seed and puts dispatch.patient at
:func:`content_type_id_offset`, so two seeds give different ids and any code that
hard-codes an id fails its tests instead of silently mis-resolving records in production.
"""

from __future__ import annotations

from include.sandbox.common import stream

#: Contrib content types, created first and in this order by every Django project.
CONTRIB: tuple[tuple[str, str], ...] = (
    ("admin", "logentry"),
    ("auth", "permission"),
    ("auth", "group"),
    ("auth", "user"),
    ("contenttypes", "contenttype"),
    ("sessions", "session"),
)

PATIENT = ("dispatch", "patient")

#: Current models of the ``dispatch`` app (tables in the production inventory, §0 / §1a).
DISPATCH_MODELS: tuple[str, ...] = (
    "office", "patient", "instruction", "jaw", "project", "plan", "file", "record", "comment",
    "state", "category", "template", "task", "course", "product", "doctorsetting",
    "usersetting", "note", "notification", "action", "payment", "operation", "offer",
    "discount", "purchase", "ware", "role", "agent", "instance", "storage", "globalsetting",
    "bracket", "event", "link", "reading", "language", "client", "client3d", "master", "order",
)  # fmt: skip

#: Removed models whose content types stayed behind (names that §0 shows do not exist as
#: tables but that old code and reports still use). Records may point at them (§1c #16).
STALE_MODELS: tuple[str, ...] = ("case", "message", "doctor", "shipment", "casefile")

#: Apps installed after ``dispatch`` (§0: django-allauth and django-otp tables exist).
LATER: tuple[tuple[str, str], ...] = (
    ("account", "emailaddress"),
    ("account", "emailconfirmation"),
    ("otp_email", "emaildevice"),
)

#: Namesakes: third-party apps whose models share their name with a model the migration
#: maps (a custom-user app's ``user``, a project-management app's ``project``) or one it does
#: not (django-filer's ``file``). Real Django databases have such pairs; the production
#: inventory (§0) names none, so these are an assumption. Records point at them (defect
#: ``record_target_namesake_model``) with ids that exist in the same-named mapped table, so
#: a generic relation resolved on ``model`` alone would load them against the wrong row.
NAMESAKES: tuple[tuple[str, str], ...] = (
    ("users", "user"),
    ("projects", "project"),
    ("filer", "file"),
)

_BLOCK: tuple[tuple[str, str], ...] = tuple(
    ("dispatch", model) for model in (*DISPATCH_MODELS, *STALE_MODELS)
)


def content_type_id_offset(seed: int) -> int:
    """Position of dispatch.patient among the ``dispatch`` content types for ``seed``.

    Seeds that differ modulo the number of dispatch content types (45) always give
    dispatch.patient different ids.
    """
    return seed % len(_BLOCK)


def content_type_rows(seed: int) -> list[tuple[int, str, str]]:
    """``(id, app_label, model)`` rows in creation order, with seed-dependent ids and gaps."""
    rng = stream(seed, "django_content_type")
    block = [ct for ct in _BLOCK if ct != PATIENT]
    rng.shuffle(block)
    block.insert(content_type_id_offset(seed), PATIENT)
    ordered = [*CONTRIB, *block]
    rows = [(number, app, model) for number, (app, model) in enumerate(ordered, start=1)]
    next_id = len(rows) + 1
    for app, model in (*LATER, *NAMESAKES):
        next_id += rng.randint(0, 3)  # ids of content types deleted since
        rows.append((next_id, app, model))
        next_id += 1
    return rows


def permission_rows(content_types: list[tuple[int, str, str]]) -> list[tuple[int, str, int, str]]:
    """``auth_permission`` rows: Django's four default permissions per content type."""
    rows: list[tuple[int, str, int, str]] = []
    for content_type_id, _app, model in content_types:
        for action in ("add", "change", "delete", "view"):
            rows.append(
                (len(rows) + 1, f"Can {action} {model}", content_type_id, f"{action}_{model}")
            )
    return rows
