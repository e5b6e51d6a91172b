"""A killed `make migrate` converges: kill it at a moment, run it again, compare with a clean load.

Slow by nature (each case is a partial and a full run of phases 1–2 through Airflow), so it is
the ``slow`` tier: ``make test-slow``, which ``.ci/run`` runs after ``make test``.
"""

from __future__ import annotations

import re

import pytest

from include.entities import get_phase
from migration_ops import local_env, runs
from migration_ops.db import connect, scalar
from tests.e2e.conftest import run_phase
from tests.e2e.kill_harness import (
    comparable,
    kill_at,
    migrate_env,
    run_to_end,
    status_asset_disagreements,
)

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.slow]

THROUGH = 2


@pytest.fixture(scope="module")
def clean_load(pg_socket, sandbox_dsn, supabase_storage) -> dict:
    """Phases 1–2 loaded once, without interruption: what every killed run must converge to."""
    target = local_env.ensure_supabase_database(pg_socket, "e2e_kill_reference", recreate=True)
    for number in range(1, THROUGH + 1):
        run_phase(sandbox_dsn, target, get_phase(number), f"reference-{number}")
    return comparable(target, THROUGH)


@pytest.mark.parametrize("point", ["backup", "extract", "load", "after-phase-1"])
def test_killed_migrate_converges_on_the_next_run(
    tmp_path, pg_socket, clean_load, point, supabase_storage
) -> None:
    target_db = f"e2e_kill_{point.replace('-', '_')}"
    target = local_env.ensure_supabase_database(pg_socket, target_db, recreate=True)
    env = migrate_env(tmp_path, pg_socket, "e2e_legacy", target_db)
    server = local_env.dsn(pg_socket, "postgres")

    outcome = kill_at(env, server, target, point=point, through=THROUGH)
    if point == "load":  # killed while the load waited inside its transaction
        assert re.fullmatch(r"killed at load: \w+ checkpoint left at validated", outcome), outcome
    else:
        assert outcome == f"killed at {point}", "the moment to kill at never came"

    assert run_to_end(env, THROUGH) == 0, "the next run finishes with no manual step"
    metadata = local_env.dsn(pg_socket, f"{target_db}_airflow")
    assert status_asset_disagreements(target, metadata) == [], "validated exactly when published"
    if point == "after-phase-1":
        with connect(target) as conn:
            killed = conn.execute(
                "select status, published_at is not null, status_reason from migration.runs "
                "where phase = 1 order by started_at limit 1"
            ).fetchone()
        assert killed[:2] == ("validated", True) or (
            killed[:2] == ("failed", False) and killed[2].startswith("unpublished: validated")
        ), killed
    for number in range(1, THROUGH + 1):
        assert runs.latest_run_status(target, number) == "validated"
    assert comparable(target, THROUGH) == clean_load
    with connect(target) as conn:
        left_running = scalar(conn, "select count(*) from migration.runs where status = 'running'")
        staged = scalar(conn, "select count(*) from pg_tables where schemaname = 'staging'")
        scratch = scalar(
            conn, "select count(*) from pg_database where datname like 'migration_verify_%'"
        )
    assert scratch == 0, "no copy of the target outlives a killed verification"
    assert left_running == 0, "the killed run is recognised as abandoned, not left running"
    assert staged == 0, "nothing of the killed run stays in staging"
