"""The privileges the project needs on the target, checked against the connecting role.

On Supabase the project connects as ``postgres``, which is no superuser. Everything the
phases, backups, verification and both rollback modes do fits what that role has; the list
(``include/sql/preflight/target_privileges.sql``) says which privilege each step needs and
why, so a check names what is missing before a run fails half-way: ``make preflight`` (the
``preflight`` DAG, and phase 1's first task) reports :func:`missing_target_privileges` as its
``target privileges`` check (:func:`migration_ops.audit.preflight.target_checks`).
"""

from __future__ import annotations

from dataclasses import dataclass

from migration_ops.db import connect, read_sql


@dataclass(frozen=True)
class Privilege:
    """One needed privilege: what, whether the connecting role has it, and what needs it."""

    privilege: str
    granted: bool
    needed_for: str


def target_privileges(target_dsn: str) -> list[Privilege]:
    """Every privilege the project needs on the target, with whether it is granted."""
    with connect(target_dsn, application_name="migration:privileges") as conn:
        rows = conn.execute(read_sql("preflight/target_privileges.sql")).fetchall()
    return [Privilege(str(p), bool(g), str(n)) for p, g, n in rows]


def missing_target_privileges(target_dsn: str) -> list[Privilege]:
    """The needed privileges the connecting role lacks (empty: it has them all)."""
    return [p for p in target_privileges(target_dsn) if not p.granted]
