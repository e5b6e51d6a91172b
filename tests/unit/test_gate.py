"""The phase gate on a real PostgreSQL: a phase starts only after the previous one validated.

Fast on purpose (one small database, runs inserted by hand): the mutation check runs it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from include.entities import get_phase
from migration_ops import runs
from migration_ops.db import connect
from migration_ops.errors import GateClosed

pytestmark = pytest.mark.e2e

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _record(dsn: str, run_id: str, phase: int, status: str, minutes: int) -> None:
    with connect(dsn) as conn:
        conn.execute(
            "insert into migration.runs (run_id, phase, dag_id, status, started_at, published_at) "
            "values (%s, %s, 'test', %s, %s, now())",
            (run_id, phase, status, T0 + dt.timedelta(minutes=minutes)),
        )


def test_the_gate_follows_the_latest_run_of_the_previous_phase(make_db) -> None:
    dsn = make_db("gate")
    phase_2, phase_3 = get_phase(2), get_phase(3)
    with pytest.raises(GateClosed, match="phase 2 cannot start: phase 1 has never run"):
        runs.check_gate(dsn, phase_2)  # not even the migration schema exists yet
    runs.apply_schema(dsn, get_phase(1))
    runs.check_gate(dsn, get_phase(1))  # phase 1 has no previous phase
    with pytest.raises(GateClosed, match="phase 1 has never run"):
        runs.check_gate(dsn, phase_2)
    _record(dsn, "p1-a", 1, "running", 0)
    with pytest.raises(GateClosed, match="phase 1 latest run is 'running'"):
        runs.check_gate(dsn, phase_2)
    _record(dsn, "p1-b", 1, "validated", 1)
    runs.check_gate(dsn, phase_2)
    with pytest.raises(GateClosed, match="phase 3 cannot start: phase 2 has never run"):
        runs.check_gate(dsn, phase_3)  # phase 1 validated opens phase 2 only
    _record(dsn, "p1-c", 1, "failed", 2)
    with pytest.raises(GateClosed, match="phase 1 latest run is 'failed'"):
        runs.check_gate(dsn, phase_2)  # an earlier validated run does not count
    _record(dsn, "p1-d", 1, "validated", 3)
    runs.check_gate(dsn, phase_2)
    _record(dsn, "p1-e", 1, "rolled_back", 4)
    with pytest.raises(GateClosed, match="phase 1 latest run is 'rolled_back'"):
        runs.check_gate(dsn, phase_2)
