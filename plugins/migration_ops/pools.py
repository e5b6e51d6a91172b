"""Airflow pools that keep parallel entity groups from overrunning the databases.

Entities of a phase that do not depend on each other run at the same time on the workers;
every step that writes to the target takes a slot of ``migration_target``, so the number of
concurrent sessions the migration opens on the target is bounded by the pool, not by how
many workers happen to be up. Sizing is explained in ``docs/deployment.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: Pool of every per-entity step (transform, validate, copy_objects, load, checkpoint).
TARGET_POOL = "migration_target"

#: Slots when ``MIGRATION_TARGET_POOL_SLOTS`` is not set: enough for the widest phase's
#: independent entities, few enough for a small Supabase instance's connection limit.
DEFAULT_TARGET_SLOTS = 4


def target_slots() -> int:
    """Slots of :data:`TARGET_POOL` (``MIGRATION_TARGET_POOL_SLOTS`` overrides the default)."""
    return int(os.environ.get("MIGRATION_TARGET_POOL_SLOTS", DEFAULT_TARGET_SLOTS))


def pools() -> dict[str, dict[str, object]]:
    """The pools in the format ``airflow pools import`` reads."""
    return {
        TARGET_POOL: {
            "slots": target_slots(),
            "description": "concurrent migration steps against the target database",
            "include_deferred": False,
        }
    }


def write_pool_file(path: Path) -> Path:
    """Write :func:`pools` as JSON for ``airflow pools import`` and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pools(), indent=2), encoding="utf-8")
    return path
