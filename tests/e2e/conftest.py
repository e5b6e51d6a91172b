"""End-to-end fixtures: one sandbox legacy database per session, fresh targets per test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from include.entities.spec import PhaseSpec
from include.sandbox.generator import build_sandbox, sandbox_exists
from migration_ops import local_env, pipeline, runs
from migration_ops.runs import RunContext

#: Small but complete: every injected defect class has at least one instance at this scale.
SCALE = 0.01
SEED = 11


@pytest.fixture(scope="session")
def sandbox_dsn(pg_socket: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sandbox legacy database, built once (and kept between sessions while unchanged)."""
    dsn = local_env.ensure_database(pg_socket, "e2e_legacy")
    if not sandbox_exists(dsn, SCALE, SEED):
        build_sandbox(dsn, scale=SCALE, seed=SEED, media_dir=tmp_path_factory.mktemp("media"))
    return dsn


def run_phase(legacy_dsn: str, target_dsn: str, phase: PhaseSpec, run_id: str) -> RunContext:
    """One phase run through the same step functions the DAG tasks call."""
    runs.apply_schema(target_dsn, phase)
    run = runs.begin_run(target_dsn, phase, run_id, triggered_by="pytest", params={})
    for entity in phase.ordered():
        pipeline.run_entity(legacy_dsn, target_dsn, run, entity)
    runs.finish_run(target_dsn, run, phase)
    return run


@pytest.fixture
def migrate() -> Callable[..., RunContext]:
    """The :func:`run_phase` helper, as a fixture."""
    return run_phase
