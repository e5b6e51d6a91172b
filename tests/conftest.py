"""Shared fixtures: a real embedded PostgreSQL server for every test that needs a database.

Targets are Supabase-shaped (``local_env.ensure_supabase_database``): the project connects
to them as ``supabase_postgres``, a non-superuser with the attributes and memberships of
Supabase's ``postgres`` role, never as the server's superuser. ``make_db`` (superuser, plain
database) is for legacy databases, Airflow's metadata and unit tests of SQL files.

The server for tests lives in its own data directory (``.local/test-pg`` unless
``MIGRATION_TEST_PGDATA`` says otherwise), apart from the one ``make demo`` uses, and is
left running between sessions so reruns start in a second.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from migration_ops import local_env

TEST_SERVER = os.environ.get("MIGRATION_TEST_SERVER", "test-pg")
#: Phase 5 embeds with the deterministic, dependency-free provider in tests (production has no
#: default: see migration_ops.ai.providers).
os.environ.setdefault("MIGRATION_EMBEDDING_PROVIDER", "hashing")


@pytest.fixture(scope="session")
def pg_socket() -> str:
    """Socket directory of the running embedded test server."""
    return local_env.start(TEST_SERVER)


@pytest.fixture
def make_db(pg_socket: str) -> Iterator[Callable[[str], str]]:
    """Factory: ``make_db("legacy")`` → DSN of a brand-new, empty database; dropped afterwards."""
    created: list[str] = []

    def create(prefix: str) -> str:
        name = f"t_{prefix}_{uuid.uuid4().hex[:8]}"
        created.append(name)
        return local_env.ensure_database(pg_socket, name, recreate=True)

    yield create
    _drop(pg_socket, created)


@pytest.fixture
def supabase_db(pg_socket: str) -> Iterator[Callable[[str], str]]:
    """Factory: ``supabase_db("target")`` → DSN (as the non-superuser role) of a brand-new
    Supabase-shaped database; dropped afterwards."""
    created: list[str] = []

    def create(prefix: str) -> str:
        name = f"t_{prefix}_{uuid.uuid4().hex[:8]}"
        created.append(name)
        return local_env.ensure_supabase_database(pg_socket, name, recreate=True)

    yield create
    _drop(pg_socket, created)


def _drop(pg_socket: str, names: list[str]) -> None:
    with psycopg.connect(local_env.dsn(pg_socket, "postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(f'drop database if exists "{name}" with (force)')
