"""report.html of a run (issue 18): its figures, charts and GX Data Docs; archived beside the
backups (a local directory or S3) and rotated by the backups' policy.

Every phase, each after a verified backup of the target, serves the module: every figure of
phase 1's page is compared with the value the migration schema holds; phase 3's page and the
sign-off summary are rendered offline (and, with ``UPDATE_SCREENSHOTS=1``, replace the
screenshots in docs/images).
"""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime, timedelta
from html import escape

import pytest

from include.entities import PHASES, get_phase
from include.transforms.rotation import RotationPolicy
from migration_ops import backup, local_env, reports
from migration_ops.audit import archive, preflight, report, signoff
from migration_ops.dag_factory import steps_of
from migration_ops.db import connect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def migrated(sandbox_dsn, pg_socket, supabase_storage):
    """(target dsn, run id by phase, backup id by phase): each phase after a verified backup."""
    from tests.e2e.conftest import run_phase

    target = local_env.ensure_supabase_database(pg_socket, "e2e_report_target", recreate=True)
    run_ids, backup_ids = {}, {}
    for phase in PHASES:
        backup_ids[phase.number] = backup.backup_and_verify(
            target, reason=f"before phase {phase.number}", triggered_by="pytest", phase=phase.number
        )
        run_ids[phase.number] = run_phase(
            sandbox_dsn, target, phase, f"report-phase-{phase.number}"
        ).run_id
    return target, run_ids, backup_ids


@pytest.fixture
def phase_1(migrated):
    """(target dsn, phase 1's run id, the backup taken before it)."""
    target, run_ids, backup_ids = migrated
    return target, run_ids[1], backup_ids[1]


def _row(*cells: object) -> str:
    """One table row as pages.table renders it (numbers right-aligned)."""
    return (
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if isinstance(c, int) else f"<td>{escape(str(c))}</td>"
            for c in cells
        )
        + "</tr>"
    )


def test_report_html_charts_data_docs_and_archive(phase_1, tmp_path, monkeypatch) -> None:
    target, run_id, _ = phase_1
    monkeypatch.setenv("MIGRATION_REPORTS_ARCHIVE", "true")
    monkeypatch.setenv("MIGRATION_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.delenv("MIGRATION_BACKUP_S3_BUCKET", raising=False)
    out = reports.write(target, run_id, tmp_path / "reports")

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
                (run_id,),
            ).fetchall()
        )
    assert compared == {name: (rows, rows) for name, rows in loaded.items()}

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


def test_report_shows_the_schema_figures_exactly(phase_1, tmp_path) -> None:
    """Quarantine meaning and fix, backups, who triggered with which params, the snapshot."""
    target, run_id, backup_id = phase_1
    page = (reports.write(target, run_id, tmp_path) / "report.html").read_text()
    with connect(target) as conn:
        run = conn.execute(
            "select triggered_by, params, snapshot_at from migration.runs where run_id = %s",
            (run_id,),
        ).fetchone()
        quarantined = conn.execute(
            "select entity, rule, count(*) from migration.quarantine where last_run_id = %s "
            "group by entity, rule order by entity, rule",
            (run_id,),
        ).fetchall()
        (taken,) = conn.execute(
            "select backup_id, database, status, size_bytes, started_at, verified_at, location "
            "from migration.backups where backup_id = %s",
            (backup_id,),
        ).fetchall()
    assert _row("triggered by", run[0]) in page
    assert _row("params", json.dumps(run[1], sort_keys=True)) in page
    assert _row("legacy snapshot (every entity read it)", run[2].isoformat()) in page
    assert [(e, r) for e, r, _ in quarantined] == [("offices", "offices.tax_rate_fraction")]
    for entity, rule, rows in quarantined:
        meaning, fix = report.rule_meanings()[rule], report.fix_for(rule)
        assert fix != "correct the legacy row" and meaning
        assert _row(entity, rule, rows, meaning, fix) in page
    number, database, status, size, started, verified, location = taken
    assert status == "verified"
    assert _row(number, database, status, size, str(started), str(verified), location) in page


def test_time_chart_spans_each_step_as_recorded(phase_1, tmp_path) -> None:
    target, run_id, _ = phase_1
    out = reports.write(target, run_id, tmp_path)
    with connect(target) as conn:
        spans = conn.execute(
            "select entity, step, extract(epoch from finished_at - started_at)::float8, "
            "succeeded from migration.step_timings where run_id = %s",
            (run_id,),
        ).fetchall()
    expected = {("", "extract")} | {
        (entity.name, step) for entity in get_phase(1).ordered() for step, _ in steps_of(entity)
    }
    assert {(e, s) for e, s, _, _ in spans} == expected
    assert all(ok for *_, ok in spans)
    timings = json.loads((out / "audit.json").read_text())["timings"]
    assert {(t["entity"], t["step"]): t["seconds"] for t in timings} == {
        (e, s): round(seconds, 3) for e, s, seconds, _ in spans
    }
    assert min(t["start"] for t in timings) == 0
    svg = (out / "charts" / "time.svg").read_text()
    for entity in get_phase(1).ordered():
        assert f">{entity.name}<" in svg, entity.name
    assert ">checkpoint<" in svg and ">(phase)<" in svg


def test_sign_off_and_preflight_pages_are_archived_in_s3(
    phase_1, sandbox_dsn, tmp_path, monkeypatch
) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from tests.s3_server import aws_connection, s3_server

    target, run_id, _ = phase_1
    directory = tmp_path / "reports"
    monkeypatch.setenv("MIGRATION_REPORTS_ARCHIVE", "true")
    monkeypatch.setenv("MIGRATION_BACKUP_DIR", str(tmp_path / "backups"))
    checked = preflight.require_preflight(sandbox_dsn, target, directory)
    with s3_server() as endpoint:
        monkeypatch.setenv("AIRFLOW_CONN_BACKUP_S3", aws_connection(endpoint))
        monkeypatch.setenv("MIGRATION_BACKUP_S3_BUCKET", "migration-backups")
        hook = S3Hook(aws_conn_id=backup.S3_CONN_ID)
        hook.create_bucket("migration-backups")
        run_dir = reports.write(target, run_id, directory)
        signoff.write(target, directory)
        with connect(target) as conn:
            stored = dict(
                conn.execute(
                    "select run_id, location from migration.report_archives "
                    "where run_id in (%s, 'signoff') and pruned_at is null",
                    (run_id,),
                ).fetchall()
            )
        prefix = "s3://migration-backups/migration-backups/"
        assert stored[run_id] == f"{prefix}report-{run_dir.name}.tar.gz"
        assert stored["signoff"].startswith(f"{prefix}report-signoff-")
        key = stored["signoff"].removeprefix("s3://migration-backups/")
        fetched = tmp_path / "signoff.tar.gz"
        fetched.write_bytes(hook.get_key(key, "migration-backups").get()["Body"].read())
    with tarfile.open(fetched) as tar:
        names = set(tar.getnames())
    assert {"signoff/signoff.html", "signoff/signoff.json"} <= names
    assert {f"{checked.name}/preflight.html", f"{checked.name}/preflight.json"} <= names


def test_the_phi_search_finds_transformed_forms(sandbox_dsn, phase_1, tmp_path) -> None:
    """The search the end-to-end test runs over every report and log: it does find PHI."""
    from tests.e2e.audit_checks import COMMON_WORDS, phi_found, sandbox_phi

    target, run_id, _ = phase_1
    phi = sandbox_phi(sandbox_dsn, target)
    name = sorted(phi["name"] - COMMON_WORDS)[0]
    with connect(sandbox_dsn) as conn:
        email, born = conn.execute(
            "select u.email, p.birthdate from auth_user as u join dispatch_patient as p "
            "on p.user_id = u.id where u.email like '%%@%%' and p.birthdate is not null "
            "order by u.id limit 1"
        ).fetchone()
    leaks = {
        "email": f"user {email.strip().upper()} logged in",
        "birth date": f"born {born:%d/%m/%Y}",
        "name": f"patient {name.upper()}",
    }
    for kind, text in leaks.items():
        (tmp_path / f"{kind}.log").write_text(text)
        found = phi_found([tmp_path / f"{kind}.log"], phi)
        assert any(f.startswith(kind) for f in found), (kind, found)
    out = reports.write(target, run_id, tmp_path / "reports")
    assert phi_found([p for p in out.rglob("*") if p.is_file()], phi) == []


def test_pages_render_offline_and_load_nothing_remote(migrated, tmp_path) -> None:
    """Both pages reference no http(s) resource; Chromium, cut off the network, renders them."""
    import os

    from migration_ops.settings import PROJECT_ROOT
    from tests.e2e.audit_checks import remote_references, screenshot

    target, run_ids, _ = migrated
    directory = tmp_path / "reports"
    for phase in PHASES:
        reports.write(target, run_ids[phase.number], directory)
    page = signoff.write(target, directory)
    assert json.loads((page.parent / "signoff.json").read_text())["ready_to_sign"] is True
    report_page = reports.directory_of(run_ids[3], directory) / "report.html"
    shots = PROJECT_ROOT / "docs" / "images" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
    for html, png in ((report_page, "report.png"), (page, "signoff.png")):
        assert remote_references(html.read_text()) == [], html
        assert screenshot(html, shots / png).stat().st_size > 20_000
