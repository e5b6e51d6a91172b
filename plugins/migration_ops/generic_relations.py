"""Django generic relations rendered for the transform SQL: by content type *name*, set-based.

A generic relation (``dispatch_record.target_type_id`` + ``target_id``) can point at any
model. Which ``(app_label, model)`` fills which explicit foreign key is configuration
(:class:`~include.entities.spec.GenericRelation` entries on the entity spec); this module
turns it into two temporary tables inside the transform's transaction:

``ref_generic_relations (app_label, model, fk_column)``
    the configuration itself. The transform joins the staged ``django_content_type`` to it
    by ``(app_label, model)``, so a content-type *id* never appears in code: ids differ
    between databases (production has dispatch.patient at 11, a fresh copy would not).

``generic_targets (app_label, model, legacy_id, target_id)``
    every staged legacy id of each related table, with the id of the target row it became
    (``NULL`` when that row is not in the target: quarantined or not migrated upstream). A
    ``target_id`` that has no row here does not exist in the legacy database at all.

Both are built with one ``INSERT ... SELECT`` per relation; nothing passes through Python.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from include.entities.spec import EntitySpec
from include.transforms.reference import ReferenceTable
from migration_ops.db import qualified
from migration_ops.errors import MigrationError


def reference_table(entity: EntitySpec) -> ReferenceTable:
    """The entity's relation configuration as the code map ``ref_generic_relations``."""
    return ReferenceTable(
        name="ref_generic_relations",
        description=f"generic relations of {entity.name}: (app_label, model) → foreign-key column",
        columns=(("app_label", "text"), ("model", "text"), ("fk_column", "text")),
        rows=tuple((r.app_label, r.model, r.fk_column) for r in entity.generic_relations),
    )


def create_targets(conn: psycopg.Connection[Any], entity: EntitySpec) -> None:
    """Create and fill the temporary table ``generic_targets`` (dropped at commit).

    Raises:
        MigrationError: a relation's legacy table is not among the entity's staged sources
            (rule ``spec.generic_relation_staged``), or a parent key is not unique (the
            primary key refuses the fan-out).
    """
    staged = {source.table for source in entity.sources}
    missing = sorted({r.legacy_table for r in entity.generic_relations} - staged)
    if missing:
        raise MigrationError(
            entity.name,
            f"generic relation tables {missing} are not staged: add their ids to the sources",
            rule="spec.generic_relation_staged",
        )
    conn.execute(
        """
        create temporary table generic_targets (
            app_label text   not null,
            model     text   not null,
            legacy_id bigint not null,
            target_id uuid,
            primary key (app_label, model, legacy_id)
        ) on commit drop
        """
    )
    for relation in entity.generic_relations:
        conn.execute(
            sql.SQL(
                """
                insert into generic_targets (app_label, model, legacy_id, target_id)
                select %s, %s, s.id, p.id
                from {staged} as s
                left join {parent} as p on p.{parent_key} = s.id
                """
            ).format(
                staged=qualified(entity.staging_table(relation.legacy_table)),
                parent=qualified(relation.parent_table),
                parent_key=sql.Identifier(relation.parent_key),
            ),
            (relation.app_label, relation.model),
        )
    conn.execute("analyze generic_targets")
