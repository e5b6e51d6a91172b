"""End-to-end fixtures: one sandbox legacy database per session, fresh targets per test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from include.entities.spec import PhaseSpec
from include.sandbox.generator import build_sandbox, media_complete, sandbox_exists
from migration_ops import local_env, pipeline, runs
from migration_ops.bulk_load import LoadPath
from migration_ops.local_storage import LocalStorageServer, write_expected_objects
from migration_ops.runs import RunContext
from migration_ops.settings import local_dir

#: Small but complete: every injected defect class has at least one instance at this scale.
SCALE = 0.01
SEED = 11
#: The sandbox's media store: kept beside the database it belongs to, so a reused sandbox
#: still has its files (phase 2 copies them to Storage).
SANDBOX_MEDIA = local_dir() / "test-media" / "e2e_legacy"


@pytest.fixture(scope="session")
def sandbox_dsn(pg_socket: str) -> str:
    """A sandbox legacy database, built once (and kept between sessions while unchanged)."""
    dsn = local_env.ensure_database(pg_socket, "e2e_legacy")
    if not sandbox_exists(dsn, SCALE, SEED) or not media_complete(dsn, SANDBOX_MEDIA):
        build_sandbox(dsn, scale=SCALE, seed=SEED, media_dir=SANDBOX_MEDIA)
    return dsn


@pytest.fixture(scope="session")
def supabase_storage(
    sandbox_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStorageServer]:
    """The local Supabase Storage stand-in, set as ``AIRFLOW_CONN_SUPABASE_STORAGE``.

    Phase 2 (and every phase after it, through its gate) needs it: the files entity copies
    the sandbox's media to Storage. Objects land in a fresh directory per session.
    """
    listing = write_expected_objects(
        sandbox_dsn, tmp_path_factory.mktemp("storage") / "expected.txt"
    )
    with LocalStorageServer(tmp_path_factory.mktemp("storage_root")) as server:
        previous = os.environ.get("AIRFLOW_CONN_SUPABASE_STORAGE")
        os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"] = server.connection(
            SANDBOX_MEDIA, expected_objects=listing
        )
        yield server
        if previous is None:
            os.environ.pop("AIRFLOW_CONN_SUPABASE_STORAGE", None)
        else:
            os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"] = previous


def run_phase(
    legacy_dsn: str,
    target_dsn: str,
    phase: PhaseSpec,
    run_id: str,
    load_path: LoadPath = "auto",
) -> RunContext:
    """One phase run through the same step functions the DAG tasks call."""
    runs.apply_schema(target_dsn, phase)
    run = runs.begin_run(target_dsn, phase, run_id, triggered_by="pytest", params={})
    pipeline.extract_step(legacy_dsn, target_dsn, run, phase.ordered())
    for entity in phase.ordered():
        pipeline.run_entity(target_dsn, run, entity, legacy_dsn=legacy_dsn, load_path=load_path)
    runs.finish_run(target_dsn, run, phase)
    return run


@pytest.fixture
def migrate() -> Callable[..., RunContext]:
    """The :func:`run_phase` helper, as a fixture."""
    return run_phase


def copy_of_sandbox(pg_socket: str, name: str) -> str:
    """A private copy of the sandbox legacy database (``e2e_legacy``), for tests that write to it."""
    with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier("e2e_legacy")
            )
        )
    return local_env.dsn(pg_socket, name)
