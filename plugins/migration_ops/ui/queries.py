"""What the dashboard shows, read from the ``migration`` schema: ids, counts, rules, statuses.

Columns that could carry patient data (``quarantine.detail``, ``runs.params``) are never
selected, so nothing the page renders can leak a value from the legacy rows.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from include.entities import PHASES

Row = dict[str, Any]

LATEST_RUNS = """
select distinct on (phase) run_id, phase, dag_id, status, started_at, finished_at, triggered_by
from migration.runs order by phase, started_at desc
"""
RECONCILIATION = """
select entity, source_rows, loaded_rows, merged_rows, quarantined_rows
from migration.reconciliation where run_id = %s order by entity
"""
OPEN_QUARANTINE = """
select entity, rule, count(*) as rows from migration.quarantine
where resolved_at is null group by entity, rule order by entity, rule
"""
CHECKS = """
select entity, pass, suite, success, evaluated, failed from migration.validation_results
where run_id = %s order by entity, pass
"""
ROW_PROOF = """
select v.entity, v.compared_rows, v.matched_rows, v.mismatched_rows, v.missing_rows,
       v.unexpected_rows, v.method,
       (select count(*) from migration.row_findings as f
        where f.run_id = v.run_id and f.entity = v.entity) as findings
from migration.row_validation as v where v.run_id = %s order by v.entity
"""
BACKUPS = """
select backup_id, database, phase, reason, status, size_bytes, started_at, verified_at
from migration.backups order by backup_id desc limit %s
"""
QUARANTINED_IDS = """
select legacy_id, rule, first_run_id, last_run_id, first_seen_at, last_seen_at
from migration.quarantine
where resolved_at is null and entity = %s and (%s::text is null or rule = %s)
order by legacy_id, rule limit %s
"""


def _has_schema(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select to_regclass('migration.runs') is not null").fetchone()
    return bool(row and row[0])


def _rows(conn: psycopg.Connection[Any], query: str, args: tuple[Any, ...] = ()) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(query, args).fetchall())


def _has_table(conn: psycopg.Connection[Any], table: str) -> bool:
    """Whether ``migration.<table>`` exists (a target before its first backup or row proof)."""
    row = conn.execute("select to_regclass(%s) is not null", (f"migration.{table}",)).fetchone()
    return bool(row and row[0])


def summary(conn: psycopg.Connection[Any], backups: int = 10) -> dict[str, Any]:
    """Per phase: latest run, reconciliation, open quarantine, suite checks, row proof; backups.

    The suite checks and the row-level proof (with its findings count) are the latest run's.
    Phases that never ran are listed too (status ``not run``), so the page always shows
    the whole migration.
    """
    if not _has_schema(conn):
        return {"phases": [_phase(p.number, p.dag_id, p.title, None, []) for p in PHASES]}
    latest = {r["phase"]: r for r in _rows(conn, LATEST_RUNS)}
    row_proof = _has_table(conn, "row_validation")
    quarantine = _rows(conn, OPEN_QUARANTINE)
    phases = []
    for spec in PHASES:
        names = {e.name for e in spec.entities}
        run = latest.get(spec.number)
        item = _phase(
            spec.number,
            spec.dag_id,
            spec.title,
            run,
            [q for q in quarantine if q["entity"] in names],
        )
        if run is not None:
            item["reconciliation"] = _rows(conn, RECONCILIATION, (run["run_id"],))
            item["checks"] = _rows(conn, CHECKS, (run["run_id"],))
            if row_proof:
                item["row_proof"] = _rows(conn, ROW_PROOF, (run["run_id"],))
        phases.append(item)
    recent = _rows(conn, BACKUPS, (backups,)) if _has_table(conn, "backups") else []
    return {"phases": phases, "backups": recent}


def _phase(number: int, dag_id: str, title: str, run: Row | None, quarantine: list[Row]) -> Row:
    return {
        "phase": number,
        "dag_id": dag_id,
        "title": title,
        "run": run,
        "status": run["status"] if run else "not run",
        "reconciliation": [],
        "checks": [],
        "row_proof": [],
        "quarantine": quarantine,
    }


def quarantined(
    conn: psycopg.Connection[Any], entity: str, rule: str | None = None, limit: int = 500
) -> list[Row]:
    """Open quarantine of one entity (optionally one rule): legacy ids and rules, no values."""
    if not _has_schema(conn):
        return []
    return _rows(conn, QUARANTINED_IDS, (entity, rule, rule, limit))
