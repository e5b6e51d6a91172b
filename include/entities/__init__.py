"""Registry of the migration phases and their entity specs."""

from __future__ import annotations

from include.entities.phase1_core import PHASE_1
from include.entities.phase2_relationships import PHASE_2
from include.entities.phase3_communication import PHASE_3
from include.entities.phase4_workflow import PHASE_4
from include.entities.phase5_ai import PHASE_5
from include.entities.spec import EntitySpec, PhaseSpec

#: Phases in order; a phase may only run once the one before it has validated.
PHASES: tuple[PhaseSpec, ...] = (PHASE_1, PHASE_2, PHASE_3, PHASE_4, PHASE_5)


def get_phase(number: int) -> PhaseSpec:
    """Return the phase with this number."""
    for phase in PHASES:
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
