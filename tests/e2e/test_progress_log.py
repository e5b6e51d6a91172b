"""Progress lines of a real phase run: rows done, rows/s and ETA per entity, no PHI.

Phase 1 runs through the same step functions as its DAG tasks. The sandbox is small, so the
lines are not throttled here (``MIGRATION_PROGRESS_SECONDS=0``) and the extract writes in
4 KB chunks instead of 1 MB: each chunk then logs a line, as a production table logs one
every few seconds.
"""

from __future__ import annotations

import logging
import re

import pytest
from psycopg import sql

from include.entities import get_phase
from migration_ops import extract
from migration_ops.db import connect, scalar

pytestmark = pytest.mark.e2e
PHASE_1 = get_phase(1)
#: Every progress line: a step, an entity (and table or column) name, then numbers only.
LINE = re.compile(
    r"(?P<step>extract|transform|validate|load|object copy) (?P<name>[a-z_]+(\.[a-z_]+)?): "
    r"(?:started(?: \((?P<expected>\d+) rows expected\))?"
    r"|(?P<done>\d+)(?:/(?P<total>\d+) \(\d+\.\d%\))? rows, (?P<rate>\d+) rows/s"
    r"(?:, ETA (?P<eta>\d+)s)?(?P<final> \(done\))?)"
)


def _legacy(dsn: str, query: sql.Composable | str) -> int:
    with connect(dsn) as conn:
        return int(scalar(conn, query))


def test_phase_steps_log_rows_rate_and_eta_without_phi(
    sandbox_dsn, supabase_db, migrate, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("MIGRATION_PROGRESS_SECONDS", "0")
    monkeypatch.setattr(extract, "COPY_BUFFER_BYTES", 4096)
    target = supabase_db("progress")
    with caplog.at_level(logging.INFO, logger="migration_ops.progress"):
        migrate(sandbox_dsn, target, PHASE_1, "progress-run")
    lines = [r.getMessage() for r in caplog.records if r.name == "migration_ops.progress"]
    parsed = [LINE.fullmatch(line) for line in lines]
    assert [line for line, m in zip(lines, parsed, strict=True) if m is None] == []
    matches = [m for m in parsed if m is not None]

    users = _legacy(sandbox_dsn, "select count(*) from auth_user")
    estimate = _legacy(
        sandbox_dsn, "select reltuples::bigint from pg_class where oid = 'auth_user'::regclass"
    )
    extract_users = [
        m for m in matches if m["step"] == "extract" and m["name"] == "profiles.auth_user"
    ]
    final = extract_users[-1]
    assert final["final"] and int(final["done"]) == users and int(final["total"]) == estimate
    running = [int(m["done"]) for m in extract_users[:-1]]
    assert len(running) >= 3 and running == sorted(running) and running[-1] == users
    # every line before the last chunk: rows done of the estimate, rows/s and the ETA
    for m in extract_users[:-2]:
        assert 0 < int(m["done"]) < estimate and int(m["total"]) == estimate, m.group(0)
        assert m["eta"] is not None and int(m["rate"]) > 0, m.group(0)

    with connect(target) as conn:
        recon = {
            r[0]: (int(r[1]), int(r[2]) + int(r[3]))
            for r in conn.execute(
                "select entity, source_rows, loaded_rows, merged_rows, quarantined_rows "
                "from migration.reconciliation where run_id = 'progress-run'"
            ).fetchall()
        }
    for entity in PHASE_1.entities:
        source, written = recon[entity.name]
        # set-based steps: a start line, then the rows done and rows/s at the end
        for step, rows in (("transform", source), ("validate", source), ("load", written)):
            own = [m for m in matches if m["step"] == step and m["name"] == entity.name]
            assert [m["done"] is None for m in own] == [True, False], (step, entity.name)
            assert own[1]["final"] and int(own[1]["done"]) == rows, (step, entity.name)
            # validate knows the rows it judges before it starts; transform and load do not
            expected = str(source) if step == "validate" else None
            assert own[0]["expected"] == expected, (step, entity.name)

    # No value of a legacy row in any line: not one e-mail address or surname.
    with connect(sandbox_dsn) as conn:
        values = {
            v
            for row in conn.execute(
                "select email, last_name from auth_user where length(last_name) > 3"
            ).fetchall()
            for v in row
            if v
        }
    assert values and not [line for line in lines if any(v in line for v in values)]
