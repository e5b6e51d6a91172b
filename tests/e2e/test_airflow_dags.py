"""The real Airflow path: `make migrate`'s CLI runs each phase with `airflow dags test`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from include.entities import PHASES, get_phase
from migration_ops import local_env, runs
from migration_ops.db import connect, scalar
from migration_ops.errors import GateClosed
from tests.e2e.audit_checks import rows_outside_public_and_migration
from tests.e2e.kill_harness import migrate_command, migrate_env

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]
ROOT = Path(__file__).resolve().parents[2]


def migrate_cli(
    tmp_path: Path,
    pg_socket: str,
    legacy_db: str,
    target_db: str,
    *,
    fault: str | None = None,
    through: int | None = None,
    command: str = "migrate",
) -> subprocess.CompletedProcess[str]:
    """Run `python -m migration_ops.cli migrate` against the given test databases.

    Supabase Storage is the ``supabase_storage`` fixture's server when a test started it.
    ``fault`` names a failure :data:`FAULTS` injects into the Airflow process (through a
    ``sitecustomize`` on its ``PYTHONPATH``); ``through`` stops after that phase.
    """
    env = migrate_env(tmp_path, pg_socket, legacy_db, target_db)
    if fault is not None:
        injected = tmp_path / "faults"
        injected.mkdir(exist_ok=True)
        (injected / "sitecustomize.py").write_text(FAULTS, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join([str(injected), env["PYTHONPATH"]])
        env["MIGRATION_TEST_FAULT"] = fault
    return subprocess.run(  # noqa: S603 - our own CLI
        migrate_command(through)
        if command == "migrate"
        else [*migrate_command(None)[:-1], command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


#: Failures injected into `airflow dags test` (in-process tasks) by a sitecustomize module.
#: ``reports_in_publish``: writing the reports in publish (before ``validated``) fails;
#: ``finish_run``: committing ``validated`` fails; ``mark_failed``: publish's reports fail and
#: so does marking the run failed (record_failure cannot); ``reports_in_record_failure``:
#: every report write fails; ``kill_after_validated``: the process is SIGKILLed right after
#: publish committed ``validated``, before Airflow emits the Asset.
FAULTS = """
import os
import signal

fault = os.environ.get("MIGRATION_TEST_FAULT")
if fault:
    from migration_ops import reports, runs
    from migration_ops.errors import MigrationError

    original_write, original_finish = reports.write, runs.finish_run

    def write(target_dsn, run_id, directory=None, *, about_to_record=None):
        if about_to_record or fault == "reports_in_record_failure":
            raise MigrationError("reports", "injected: the report volume is full")
        return original_write(target_dsn, run_id, directory)

    def finish_run(target_dsn, run, phase, **kwargs):
        if fault == "finish_run":
            raise MigrationError("phase-1", "injected: the target went read-only")
        original_finish(target_dsn, run, phase, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    def mark_failed(target_dsn, run_id):
        raise MigrationError("phase-1", "injected: the target went away")

    if fault in ("reports_in_publish", "mark_failed", "reports_in_record_failure"):
        reports.write = write
    if fault in ("finish_run", "kill_after_validated"):
        runs.finish_run = finish_run
    if fault == "mark_failed":
        runs.mark_failed = mark_failed
"""


def asset_events(pg_socket: str, target_db: str) -> dict[str, int]:
    """Asset events Airflow recorded in the metadata database of a migrate_cli run."""
    with connect(local_env.dsn(pg_socket, f"{target_db}_airflow")) as conn:
        rows = conn.execute(
            "select a.uri, count(*) from asset_event as e join asset as a on a.id = e.asset_id "
            "group by a.uri"
        ).fetchall()
    return {uri: int(n) for uri, n in rows}


def test_migrate_runs_every_phase_through_airflow(
    tmp_path, pg_socket, sandbox_dsn, supabase_storage
) -> None:
    target = local_env.ensure_supabase_database(pg_socket, "e2e_airflow_target", recreate=True)
    result = migrate_cli(tmp_path, pg_socket, "e2e_legacy", "e2e_airflow_target")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for phase in PHASES:
        assert runs.latest_run_status(target, phase.number) == "validated", phase.dag_id
    assert len(list((tmp_path / "reports").glob("*/reconciliation.md"))) == len(PHASES)
    # phase 1's dedup task (with its typed params) linked the sandbox's duplicate patient
    assert len(list((tmp_path / "reports").glob("*/dedup.md"))) == 1
    assert asset_events(pg_socket, "e2e_airflow_target") == {p.asset_uri: 1 for p in PHASES}
    with connect(target) as conn:
        recorded = conn.execute(
            "select r.run_id, c.entity, c.source_rows, c.loaded_rows, c.merged_rows, "
            "c.quarantined_rows from migration.runs as r "
            "join migration.reconciliation as c on c.run_id = r.run_id order by r.phase, c.entity"
        ).fetchall()
        audited = conn.execute(
            "select a.run_id, a.phase from migration.audit_log as a "
            "join migration.runs as r on r.run_id = a.run_id where a.action = 'run_phase'"
        ).fetchall()
        run_ids = [r[0] for r in conn.execute("select run_id from migration.runs order by phase")]
    assert sorted(audited) == sorted(zip(run_ids, [p.number for p in PHASES], strict=True)), (
        "one audit row per phase run, naming that run"
    )
    with connect(sandbox_dsn) as conn:
        legacy_users = scalar(conn, "select count(*) from auth_user")
    entities = sum(len(p.entities) for p in PHASES)
    assert len(recorded) == entities
    printed = _printed_reconciliation(result.stdout)
    for _, entity, source, loaded, merged, quarantined in recorded:
        assert source == loaded + merged + quarantined
        assert printed[entity] == (source, loaded, merged, quarantined), entity
    assert printed["profiles"][0] == legacy_users, "every legacy user is counted as source"
    _assert_auditor_pages(tmp_path, sandbox_dsn, target, result.stdout)
    assert rows_outside_public_and_migration(target) == {}, "no legacy row rests elsewhere"

    synced = migrate_cli(tmp_path, pg_socket, "e2e_legacy", "e2e_airflow_target", command="sync")
    assert synced.returncode == 0, synced.stdout[-3000:] + synced.stderr[-3000:]
    assert runs.latest_run_status(target, runs.SYNC_PHASE) == "validated"
    after_sync = _printed_reconciliation(synced.stdout)
    assert set(after_sync) == {e.name for p in PHASES[:4] for e in p.entities}, (
        "the sync reconciles every entity of phases 1-4"
    )
    for entity, (source, loaded, merged, quarantined) in after_sync.items():
        assert source == loaded + merged + quarantined, entity
    with connect(target) as conn:
        changed = scalar(
            conn,
            "select sum(c.inserted_rows + c.updated_rows) from migration.checkpoints as c "
            "join migration.runs as r using (run_id) where r.phase = 0",
        )
    assert changed == 0, "nothing changed in legacy since the full load"
    assert rows_outside_public_and_migration(target) == {}, "nor after a sync"
    _assert_no_phi(tmp_path, sandbox_dsn, target)


def _assert_no_phi(tmp_path: Path, legacy_dsn: str, target_dsn: str) -> None:
    """No name, e-mail, birth date or message text (in any form) in a report or task log."""
    from tests.e2e.audit_checks import phi_found, sandbox_phi

    files = [
        path
        for root in ("reports", "airflow/logs", "local/logs")
        for path in (tmp_path / root).rglob("*")
        if path.is_file()
    ]
    assert len(files) > 50
    assert phi_found(files, sandbox_phi(legacy_dsn, target_dsn)) == []


def _assert_auditor_pages(tmp_path: Path, legacy_dsn: str, target_dsn: str, stdout: str) -> None:
    """Issue 18: an HTML report per run and a sign-off page, PHI-free, rendering offline."""
    from tests.e2e.audit_checks import screenshot

    pages = sorted((tmp_path / "reports").glob("*/report.html"))
    assert len(pages) == len(PHASES)
    assert len(
        list((tmp_path / "reports").glob("*/gx/uncommitted/data_docs/local_site/index.html"))
    ) == len(PHASES)
    signoff_page = tmp_path / "reports" / "signoff" / "signoff.html"
    assert f"sign-off summary (HTML): {signoff_page}" in stdout
    signed = json.loads((signoff_page.parent / "signoff.json").read_text())
    assert signed["ready_to_sign"] is True, signed["reasons"]
    assert [p["phase"] for p in signed["phases"]] == [p.number for p in PHASES]
    assert len(list((tmp_path / "reports").glob("preflight-*/preflight.html"))) == 1
    _assert_no_phi(tmp_path, legacy_dsn, target_dsn)
    for page in (pages[-1], signoff_page):
        assert screenshot(page, tmp_path / f"{page.stem}.png").stat().st_size > 20_000


def _printed_reconciliation(stdout: str) -> dict[str, tuple[int, int, int, int]]:
    """Entity → (source, loaded, merged, quarantined) from the tables `make migrate` prints."""
    printed = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 5 and cells[1].isdigit():
            printed[cells[0]] = tuple(int(c) for c in cells[1:5])
    return printed


#: fault -> (status once migrate exited, statuses its report.json files say; status, reason
#: and report statuses once the gate of phase 2 and the next phase-1 run have looked at it).
PUBLISH_FAULTS: dict[str, tuple[str, list[str], str, str | None, list[str]]] = {
    "reports_in_publish": ("failed", ["failed"], "failed", None, ["failed"]),
    "finish_run": ("failed", ["failed"], "failed", None, ["failed"]),
    "mark_failed": ("running", [], "failed", "abandoned: its process ", []),
    "reports_in_record_failure": ("failed", [], "failed", None, []),
    "kill_after_validated": (
        "validated",
        ["validated"],
        "failed",
        "unpublished: validated, but its process ",
        ["failed"],
    ),
}


@pytest.mark.parametrize("fault", list(PUBLISH_FAULTS))
def test_status_reports_and_asset_agree_when_publishing_fails(
    tmp_path, pg_socket, sandbox_dsn, fault, monkeypatch
) -> None:
    status, reported, settled, reason, settled_reports = PUBLISH_FAULTS[fault]
    target_db = f"e2e_publish_{fault}"
    target = local_env.ensure_supabase_database(pg_socket, target_db, recreate=True)
    result = migrate_cli(tmp_path, pg_socket, "e2e_legacy", target_db, fault=fault, through=1)
    assert result.returncode != 0
    assert runs.latest_run_status(target, 1) == status
    assert asset_events(pg_socket, target_db) == {}, "no Asset without a published run"
    assert _report_statuses(tmp_path) == reported
    if fault in ("reports_in_publish", "finish_run"):
        # the sign_off teardown ran after record_failure: the summary shows the failed run
        signed = json.loads((tmp_path / "reports" / "signoff" / "signoff.json").read_text())
        assert signed["ready_to_sign"] is False
        assert [(p["phase"], p["status"]) for p in signed["phases"]] == [(1, "failed")]
        assert "phase 1: latest run failed" in signed["reasons"]
    with connect(target) as conn:
        assert scalar(conn, "select count(*) from migration.reconciliation") == 3, (
            "the entities themselves loaded and reconciled"
        )
        assert (
            scalar(
                conn, "select merged_rows from migration.reconciliation where entity = 'profiles'"
            )
            == 1
        )
        (killed,) = [r[0] for r in conn.execute("select run_id from migration.runs")]

    monkeypatch.setenv("MIGRATION_REPORTS_DIR", str(tmp_path / "reports"))
    gate_sees = "running" if status == "running" else settled  # the gate abandons no run
    with pytest.raises(GateClosed, match=f"phase 1 latest run is '{gate_sees}'"):
        runs.check_gate(target, get_phase(2))
    runs.begin_run(target, get_phase(1), "next", triggered_by="pytest", params={})
    with connect(target) as conn:
        row = conn.execute(
            "select status, status_reason from migration.runs where run_id = %s", (killed,)
        ).fetchone()
    assert row[0] == settled
    assert (row[1] is None) if reason is None else row[1].startswith(reason), row[1]
    assert _report_statuses(tmp_path) == settled_reports


def _report_statuses(tmp_path: Path) -> list[str]:
    """The status each run report under ``tmp_path/reports`` says, hidden or not."""
    return [
        json.loads(path.read_text())["run"]["status"]
        for path in sorted((tmp_path / "reports").glob("*/report.json"))
    ]


def test_migrate_exits_non_zero_when_a_phase_fails(
    tmp_path, pg_socket, make_db, supabase_db
) -> None:
    broken_legacy = make_db("broken_legacy")  # empty: every extract hits schema drift
    target = supabase_db("broken_target")
    result = migrate_cli(
        tmp_path,
        pg_socket,
        broken_legacy.split("/")[-1].split("?")[0],
        target.split("/")[-1].split("?")[0],
    )
    assert result.returncode != 0
    assert "did not validate" in result.stderr
    assert asset_events(pg_socket, target.split("/")[-1].split("?")[0]) == {}, (
        "a failed phase must not emit its Asset (it would schedule the next phase)"
    )
    assert runs.latest_run_status(target, 1) is None, "the preflight refused to start phase 1"
    (page,) = (tmp_path / "reports").glob("preflight-*/preflight.html")
    assert '<td>dispatch_office</td><td class="fail">fail</td><td>table missing</td>' in (
        page.read_text()
    )
