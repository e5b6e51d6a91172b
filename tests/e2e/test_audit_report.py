"""report.html of a run (issue 18): its figures, charts and GX Data Docs; archived beside the
backups and rotated by the backups' policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from include.entities import get_phase
from include.transforms.rotation import RotationPolicy
from migration_ops import reports
from migration_ops.audit import archive
from migration_ops.db import connect

pytestmark = pytest.mark.e2e


def test_report_html_charts_data_docs_and_archive(
    sandbox_dsn, supabase_db, tmp_path, monkeypatch
) -> None:
    from tests.e2e.conftest import run_phase

    target = supabase_db("report")
    run = run_phase(sandbox_dsn, target, get_phase(1), "report-phase-1")
    monkeypatch.setenv("MIGRATION_REPORTS_ARCHIVE", "true")
    monkeypatch.setenv("MIGRATION_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.delenv("MIGRATION_BACKUP_S3_BUCKET", raising=False)
    out = reports.write(target, run.run_id, tmp_path / "reports")

    page = (out / "report.html").read_text()
    assert "<script" not in page, "readable without JavaScript"
    assert sorted(p.name for p in (out / "charts").glob("*.svg")) == [
        "outcomes.svg",
        "quarantine.svg",
        "time.svg",
    ]
    assert (out / "gx/uncommitted/data_docs/local_site/index.html").exists()
    assert "gx/uncommitted/data_docs/local_site/index.html" in page
    audit = json.loads((out / "audit.json").read_text())
    compared = {r["entity"]: (r["compared"], r["matched"]) for r in audit["row_validation"]}
    assert {r["method"] for r in audit["row_validation"]} == {"checksum"}
    with connect(target) as conn:
        loaded = dict(
            conn.execute(
                "select entity, loaded_rows + merged_rows from migration.reconciliation "
                "where run_id = %s",
                (run.run_id,),
            ).fetchall()
        )
    assert compared == {name: (rows, rows) for name, rows in loaded.items()}
    assert "offices.tax_rate_fraction" in page or "profiles.email_format" in page

    (packed,) = (tmp_path / "backups").glob("report-*.tar.gz")
    assert packed.name == f"report-{out.name}.tar.gz"
    with connect(target) as conn:
        for days in (3, 40):
            old = tmp_path / "backups" / f"report-old-{days}.tar.gz"
            old.write_bytes(b"x")
            conn.execute(
                "insert into migration.report_archives (run_id, location, archived_at) "
                "values (%s, %s, %s)",
                (f"old-{days}", str(old), datetime.now(UTC) - timedelta(days=days)),
            )
        ids = dict(conn.execute("select run_id, archive_id from migration.report_archives"))
    pruned = archive.prune(target, RotationPolicy(daily=1, weekly=0, monthly=0))
    assert pruned == sorted([ids["old-3"], ids["old-40"]])
    assert [p.name for p in (tmp_path / "backups").glob("report-*.tar.gz")] == [packed.name]
