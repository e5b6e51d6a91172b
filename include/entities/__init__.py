"""Registry of the migration phases and their entity specs."""

from __future__ import annotations

from include.entities.phase1_core import PHASE_1
from include.entities.phase2_relationships import PHASE_2
from include.entities.phase3_communication import PHASE_3
from include.entities.phase4_workflow import PHASE_4
from include.entities.phase5_ai import PHASE_5, SYNC_COMPLETED
from include.entities.spec import EntitySpec, PhaseSpec

#: Phases in order; a phase may only run once the one before it has validated.
PHASES: tuple[PhaseSpec, ...] = (PHASE_1, PHASE_2, PHASE_3, PHASE_4, PHASE_5)

#: The phases that move legacy rows (1–4); phase 5 embeds what they loaded.
LEGACY_PHASES: tuple[PhaseSpec, ...] = tuple(
    phase
    for phase in PHASES
    if all(source.origin == "legacy" for entity in phase.entities for source in entity.sources)
)

#: The nightly sync: every entity of phases 1–4, in phase order, restricted to what changed
#: (``migration.runs.phase`` 0). It may run once phase 4 has validated; phase 5 follows the
#: changes through its enqueue triggers.
SYNC = PhaseSpec(
    number=0,
    name="sync",
    title="Nightly incremental sync of phases 1-4",
    entities=tuple(entity for phase in LEGACY_PHASES for entity in phase.entities),
    schema_sql=(
        "target/010_migration_schema.sql",
        "target/020_backups.sql",
        "target/030_run_integrity.sql",
        "target/040_sync.sql",
        # the profiles' de-duplication step runs in the sync too: its tables (the memo of its
        # inputs, migration.dedup_inputs, came after phase 1 on deployed targets)
        "target/110_dedup.sql",
    ),
    dag="incremental_sync",
    asset=SYNC_COMPLETED,
)


def get_phase(number: int) -> PhaseSpec:
    """Return the phase with this number (0: the sync)."""
    for phase in (*PHASES, SYNC):
        if phase.number == number:
            return phase
    raise KeyError(f"no migration phase {number}; known: {[p.number for p in PHASES]}")


def get_entity(name: str) -> EntitySpec:
    """Return the entity spec with this name, from any phase."""
    for phase in PHASES:
        for entity in phase.entities:
            if entity.name == name:
                return entity
    raise KeyError(f"no entity spec named {name!r}")
