"""``make airflow`` unpauses the phase DAGs and the sync, also in an existing Airflow home.

Only the metadata database and the ``airflow`` CLI: the commands the ``airflow`` command of
``migration_ops.cli`` runs before ``airflow standalone``, on a metadata DB where someone
paused phase 2 and the sync.
"""

from __future__ import annotations

import pytest

from migration_ops import local_env
from migration_ops.cli import followed_dag_ids, unpause_commands
from migration_ops.db import connect
from tests.e2e.airflow_stack import AirflowStack
from tests.e2e.kill_harness import migrate_env

pytestmark = pytest.mark.e2e


def _paused(metadata: str) -> dict[str, bool]:
    with connect(metadata) as conn:
        return dict(conn.execute("select dag_id, is_paused from dag").fetchall())


def test_airflow_command_unpauses_every_followed_dag(tmp_path, pg_socket, sandbox_dsn) -> None:
    followed = followed_dag_ids()
    assert followed == [
        "migrate_phase_1_core",
        "migrate_phase_2_relationships",
        "migrate_phase_3_communication",
        "migrate_phase_4_workflow",
        "migrate_phase_5_ai",
        "incremental_sync",
    ]
    env = migrate_env(tmp_path, pg_socket, "e2e_legacy", "unpause_target")
    cli = AirflowStack(tmp_path, env, port=0)
    cli.airflow("db", "migrate")
    commands = unpause_commands(followed)
    cli.airflow(*commands[0])  # a fresh metadata DB learns the DAGs
    for dag_id in ("migrate_phase_2_relationships", "incremental_sync"):
        cli.airflow("dags", "pause", dag_id)
    metadata = local_env.dsn(pg_socket, "unpause_target_airflow")
    before = _paused(metadata)
    assert [d for d in followed if before[d]] == [
        "migrate_phase_2_relationships",
        "incremental_sync",
    ]
    for command in commands:
        cli.airflow(*command)
    after = _paused(metadata)
    assert [d for d in followed if after[d]] == []
    # DAGs paused at creation on purpose stay paused: the exact-match pattern touches no other
    assert {d for d, paused in after.items() if paused} == {
        d for d, paused in before.items() if paused and d not in followed
    }
    assert after["backup_target"] is True
