"""``make bench``'s ``reports/bench.json``, from a tiny run of ``scripts/bench.py``.

Phase 1 at scale 0.001 on the test server, without the Airflow run and the sync (~10 s):
the structure is checked, not the timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from include.entities import PHASES
from migration_ops import local_env
from migration_ops.settings import PROJECT_ROOT
from tests.conftest import TEST_SERVER

pytestmark = pytest.mark.e2e

STEPS = {"extract", "transform", "validate", "load", "verify", "checkpoint"}
ENTITY_KEYS = {"rows", "first_load_s", "rerun_s", "raw_copy_s", "steps", "peak_rss_mb"}
BULK_PARTS = {"insert", "keys_and_indexes", "foreign_keys", "analyze"}
RATIOS = {"first_load_over_raw_copy", "load_over_raw_copy", "rerun_over_raw_copy"}


def _run_bench(json_path: os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(PROJECT_ROOT / "scripts" / "bench.py"), "--server", TEST_SERVER]
    command += ["--scale", "0.001", "--through", "1", "--no-airflow", "--no-sync"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]),
    }
    return subprocess.run(  # noqa: S603 - our own script
        [*command, "--json", str(json_path)], env=env, capture_output=True, text=True, timeout=300
    )


def _drop_bench_databases(pg_socket: str) -> None:
    with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as conn:
        names = conn.execute("select datname from pg_database where datname like 'bench%'")
        for (name,) in names.fetchall():
            conn.execute(f'drop database if exists "{name}" with (force)')


def test_bench_json_has_every_figure_per_entity(pg_socket, tmp_path):
    try:
        done = _run_bench(tmp_path / "bench.json")
    finally:
        _drop_bench_databases(pg_socket)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "@" not in done.stdout  # counts and seconds only: no e-mail, no DSN
    report = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))

    entities = report["entities"]
    assert set(entities) == {entity.name for entity in PHASES[0].entities}
    for name, entity in entities.items():
        assert ENTITY_KEYS <= set(entity), name
        expected = STEPS | ({"dedup"} if name == "profiles" else set())
        assert set(entity["steps"]) == set(entity["rerun_steps"]) == expected, name
        assert entity["first_load_s"] == pytest.approx(sum(entity["steps"].values()), abs=0.01)
        assert entity["rows"] > 0 and entity["raw_copy_s"] > 0 and entity["peak_rss_mb"] > 0
        # a first load into an empty table takes the bulk path: its parts are inside the load
        if entity["load_parts"]:
            assert {"insert", "analyze"} <= set(entity["load_parts"]) <= BULK_PARTS, name
            assert sum(entity["load_parts"].values()) <= entity["steps"]["load"], name
    # the DDL seeds the order types: their table is never empty, so their load upserts
    assert {name for name, entity in entities.items() if not entity["load_parts"]} == {
        "order_types"
    }
    assert report["peak_rss_mb"] == max(entity["peak_rss_mb"] for entity in entities.values())
    # workflow_tasks (phase 4) and the Airflow run were not asked for
    assert report["ratios"] == dict.fromkeys(RATIOS)
    assert report["migrate_wall_s"] is None and "skipped" in report["airflow"]
    pgloader = report["pgloader"]
    if "skipped" not in pgloader:
        assert pgloader["exit_code"] == 0
        assert {"auth_user", "dispatch_office", "dispatch_course"} <= set(pgloader["tables"])
