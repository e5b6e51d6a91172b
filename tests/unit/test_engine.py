"""Unit tier for the engine's pure parts: no database, no Airflow run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from include.entities import PHASES, get_entity, get_phase
from include.entities.spec import EntitySpec, PhaseSpec, SourceTable
from migration_ops.connections import connection_to_dsn
from migration_ops.reports import reconciliation_table
from migration_ops.runs import RunContext
from migration_ops.validate import sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]


def _entity(name: str, parents: tuple[str, ...] = ()) -> EntitySpec:
    return EntitySpec(
        name=name,
        phase=9,
        description="",
        sources=(SourceTable("t", ("id",)),),
        transform_sql="",
        suite="",
        target_table="public.t",
        key="legacy_id",
        parents=parents,
    )


@given(st.permutations(["a", "b", "c", "d"]))
def test_phase_orders_parents_before_children_whatever_the_declaration_order(names) -> None:
    parents = {"a": (), "b": ("a",), "c": ("a", "b"), "d": ("c", "outside_phase")}
    phase = PhaseSpec(9, "x", "x", tuple(_entity(n, parents[n]) for n in names))
    order = [e.name for e in phase.ordered()]
    for entity in phase.entities:
        for parent in entity.parents:
            if parent in order:
                assert order.index(parent) < order.index(entity.name)


def test_registry_lookups() -> None:
    assert get_phase(1).dag_id == "migrate_phase_1_core"
    assert get_entity("profiles").phase == 1
    with pytest.raises(KeyError):
        get_phase(99)
    assert [p.number for p in PHASES] == list(range(1, len(PHASES) + 1))


def test_every_entity_of_every_phase_has_its_files() -> None:
    for phase in PHASES:
        for path in phase.schema_sql:
            assert (ROOT / "include" / "sql" / path).is_file(), path
        for entity in phase.entities:
            assert (ROOT / "include" / "sql" / entity.transform_sql).is_file(), entity.name
            assert (ROOT / "expectations" / entity.suite).is_file(), entity.name
            for path in entity.post_load_sql:
                assert (ROOT / "include" / "sql" / path).is_file(), path
            assert entity.staging_table("x").startswith(f"staging.{entity.name}__")


class _Conn:
    def __init__(self, host, port, login, password, schema, extra):
        self.host, self.port, self.login, self.password, self.schema = (
            host,
            port,
            login,
            password,
            schema,
        )
        self.extra_dejson = extra


@given(
    password=st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s),
    database=st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True),
)
def test_any_password_survives_the_dsn(password, database) -> None:
    dsn = connection_to_dsn(
        _Conn("db.example.co", 5432, "postgres", password, database, {"sslmode": "require"})
    )
    parsed = conninfo_to_dict(dsn)
    assert parsed["password"] == password
    assert parsed["dbname"] == database
    assert parsed["sslmode"] == "require"


def test_socket_host_travels_as_a_query_parameter() -> None:
    dsn = connection_to_dsn(
        _Conn("/tmp/pg sock", None, "postgres", None, "legacy", {"unknown": "x"})
    )
    assert conninfo_to_dict(dsn) == {"host": "/tmp/pg sock", "user": "postgres", "dbname": "legacy"}


def test_sqlalchemy_url_uses_psycopg3() -> None:
    assert sqlalchemy_url("postgresql://u@/db?host=%2Ftmp").startswith("postgresql+psycopg://u@/db")
    with pytest.raises(ValueError):
        sqlalchemy_url("host=x dbname=y")


def test_run_context_round_trips_through_xcom() -> None:
    run = RunContext("dag__manual_1", 2, "2025-11-01T00:00:00+00:00")
    assert RunContext.from_xcom(run.to_xcom()) == run
    assert run.settings()["as_of"] == run.as_of


def test_reconciliation_table_flags_imbalance() -> None:
    rows = [
        {
            "entity": "a",
            "source_rows": 3,
            "loaded_rows": 2,
            "merged_rows": 0,
            "quarantined_rows": 1,
            "inserted_rows": 2,
            "updated_rows": 0,
            "unchanged_rows": 0,
            "removed_rows": 0,
        },
        {
            "entity": "b",
            "source_rows": 3,
            "loaded_rows": 1,
            "merged_rows": 0,
            "quarantined_rows": 1,
            "inserted_rows": 1,
            "updated_rows": 0,
            "unchanged_rows": 0,
            "removed_rows": 0,
        },
    ]
    lines = reconciliation_table(rows).splitlines()
    assert lines[2].rstrip().endswith("yes") and lines[3].rstrip().endswith("NO")


FORBIDDEN_IN_TRANSFORMS = {
    "airflow",
    "psycopg",
    "psycopg2",
    "sqlalchemy",
    "requests",
    "great_expectations",
}


@pytest.mark.parametrize(
    "path", sorted((ROOT / "include" / "transforms").rglob("*.py")), ids=lambda p: p.name
)
def test_transforms_stay_pure(path: Path) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN_IN_TRANSFORMS


def test_project_never_reads_outside_itself() -> None:
    needle = "../" + "shared"
    for path in ROOT.rglob("*"):
        if path.suffix in {".py", ".sql", ".json", ".md", ".yaml", ".txt"} or path.name in {
            "Makefile",
            "run",
        }:
            if ".venv" in path.parts or ".local" in path.parts:
                continue
            assert needle not in path.read_text(encoding="utf-8", errors="ignore"), path


def test_quarantine_limit_tolerates_a_few_rows_in_small_tables_but_not_a_systematic_share() -> None:
    from migration_ops.validate import QuarantineLimit

    limit = QuarantineLimit(fraction=0.05, allowance=25)
    assert not limit.exceeded(1, 9)
    assert not limit.exceeded(45, 900)
    assert limit.exceeded(46, 900)
    assert limit.exceeded(26, 100)
    assert QuarantineLimit(fraction=0.0, allowance=0).exceeded(1, 1_000_000)


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.floats(0, 1), st.integers(0, 100))
def test_quarantine_limit_is_monotonic(quarantined, total, fraction, allowance) -> None:
    from migration_ops.validate import QuarantineLimit

    limit = QuarantineLimit(fraction=fraction, allowance=allowance)
    if limit.exceeded(quarantined, total):
        assert limit.exceeded(quarantined + 1, total)
        assert quarantined > allowance
