"""The migration dashboard in a real headless Chromium, behind Airflow's own login.

Phase 1 runs in-process into a fresh target; an api-server with the project's plugins
serves the dashboard. The page must refuse an anonymous visitor, and after logging in
through Airflow's login page it must show exactly the counts in the ``migration`` schema.
The screenshot is kept as ``docs/images/dashboard.png`` (``UPDATE_SCREENSHOTS=1`` renews it).
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from include.entities import PHASES
from migration_ops import backup, reports
from migration_ops.db import connect, scalar
from tests.e2e.airflow_stack import PASSWORD, USER, start_api_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "images" / "dashboard.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


RUN_ID = "migrate_phase_1_core__manual__dashboard"


@pytest.fixture
def dashboard(
    tmp_path, monkeypatch, pg_socket, sandbox_dsn, supabase_db, migrate, supabase_storage
):
    """An api-server whose target holds a validated phase 1 run (its quarantine, row proof and
    reports) and a verified backup."""
    target = supabase_db("dashboard")
    migrate(sandbox_dsn, target, PHASES[0], RUN_ID)
    monkeypatch.setenv("MIGRATION_BACKUP_DIR", str(tmp_path / "backups"))
    backup.verify_backup(
        target, backup.take_backup(target, reason="dashboard", triggered_by="pytest")
    )
    # the api-server's reports folder (stack_env: <workdir>/reports)
    monkeypatch.setenv("MIGRATION_REPORTS_DIR", str(tmp_path / "airflow" / "reports"))
    reports.write(target, RUN_ID)
    database = target.split("/")[-1].split("?")[0]
    stack = start_api_server(tmp_path / "airflow", pg_socket, "e2e_legacy", database)
    yield stack, target
    stack.stop()


def expected(target: str) -> dict[str, tuple[int, ...]]:
    """Entity → (source, loaded, merged, quarantined) as recorded in the migration schema."""
    with connect(target) as conn:
        rows = conn.execute(
            "select entity, source_rows, loaded_rows, merged_rows, quarantined_rows "
            "from migration.reconciliation order by entity"
        ).fetchall()
    return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}


def open_quarantine(target: str) -> dict[tuple[str, str], int]:
    with connect(target) as conn:
        rows = conn.execute(
            "select entity, rule, count(*) from migration.quarantine where resolved_at is null "
            "group by 1, 2"
        ).fetchall()
    return {(e, r): int(n) for e, r, n in rows}


def row_proof(target: str) -> dict[str, tuple[int, ...]]:
    """Entity → (compared, matched, mismatched, missing, unexpected, findings) of the run."""
    with connect(target) as conn:
        rows = conn.execute(
            "select v.entity, v.compared_rows, v.matched_rows, v.mismatched_rows, "
            "v.missing_rows, v.unexpected_rows, (select count(*) from migration.row_findings f "
            "where f.run_id = v.run_id and f.entity = v.entity) "
            "from migration.row_validation v where v.run_id = %s",
            (RUN_ID,),
        ).fetchall()
    return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}


def backups(target: str) -> list[tuple[str, ...]]:
    """(id, database, reason, status, bytes) of every backup, newest first, as shown."""
    with connect(target) as conn:
        rows = conn.execute(
            "select backup_id, database, reason, status, size_bytes from migration.backups "
            "order by backup_id desc"
        ).fetchall()
    return [tuple(str(v) for v in r) for r in rows]


def quarantined_ids(target: str, entity: str, rule: str) -> list[int]:
    with connect(target) as conn:
        rows = conn.execute(
            "select legacy_id from migration.quarantine where resolved_at is null "
            "and entity = %s and rule = %s order by legacy_id",
            (entity, rule),
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_dashboard_refuses_anonymous_callers(dashboard) -> None:
    stack, _ = dashboard
    for path in ("/migration/", "/migration/api/summary", "/migration/quarantine?entity=profiles"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            stack.request("GET", path, token="")
        assert refused.value.code == 401, path
    with pytest.raises(urllib.error.HTTPError) as forged:
        stack.request("GET", "/migration/api/summary", token="not-a-jwt")
    assert forged.value.code in (401, 403)
    folder = f"/migration/reports/{RUN_ID}"
    for path, code in ((f"{folder}/report.html", 401), (f"{folder}/audit.json", 401)):
        assert _status(stack, path, "") == code, path
    # with a login: the linked report files only, nothing else of the folder
    assert _status(stack, f"{folder}/report.html", stack.token) == 200
    assert _status(stack, f"{folder}/charts/outcomes.svg", stack.token) == 200
    assert _status(stack, f"{folder}/audit.json", stack.token) == 404
    assert _status(stack, "/migration/reports/..%2F..%2Fetc/passwd", stack.token) == 404
    summary = stack.request("GET", "/migration/api/summary")
    assert [p["status"] for p in summary["phases"]] == [
        "validated",
        "not run",
        "not run",
        "not run",
        "not run",  # phase 5 (AI)
    ]


def _status(stack, path: str, token: str) -> int:
    """HTTP status of a GET (files are not JSON, so not through ``stack.request``)."""
    request = urllib.request.Request(stack.url + path)  # noqa: S310 - loopback
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def _table(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )[1:]


def test_dashboard_in_chromium_shows_the_migration_schema(dashboard, tmp_path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    stack, target = dashboard
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        anonymous = page.goto(f"{stack.url}/migration/")
        assert anonymous is not None and anonymous.status == 401
        page.goto(f"{stack.url}/auth/login")
        page.fill("input[name=username]", USER)
        page.fill("input[type=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)
        shown = page.goto(f"{stack.url}/migration/")
        assert shown is not None and shown.status == 200
        assert page.inner_text("[data-testid=status-1]") == "validated"
        rows = _table(page, "#recon-1")
        assert {r[0]: tuple(int(v) for v in r[1:]) for r in rows} == expected(target)
        quarantine = _table(page, "#quarantine-1")
        assert {(r[0], r[1]): int(r[2]) for r in quarantine} == open_quarantine(target)
        _check_row_proof_checks_and_backups(page, target)
        shot = _screenshot(page, tmp_path)
        _check_report_and_quarantine_browser(page, stack, target)
        browser.close()
    assert shot.stat().st_size > 10_000


def _check_row_proof_checks_and_backups(page, target: str) -> None:
    """Row-level proof per entity, the GX suite checks under their own name, the backups."""
    proof = {r[0]: tuple(int(v) for v in r[1:7]) for r in _table(page, "#rows-1")}
    assert proof == row_proof(target)
    assert set(proof) == {e.name for e in PHASES[0].entities}
    assert all(p[0] == p[1] > 0 for p in proof.values()), "every compared row matched"
    headings = page.eval_on_selector_all("#phase-1 ~ h3", "hs => hs.map(h => h.innerText)")
    assert headings[:3] == ["Suite checks", "Row-level proof (legacy ↔ target)", "Open quarantine"]
    with connect(target) as conn:
        suites = int(
            scalar(
                conn,
                "select count(*) from migration.validation_results where run_id = %s",
                (RUN_ID,),
            )
        )
    assert len(_table(page, "#checks-1")) == suites
    shown = [(r[0], r[1], r[3], r[4], r[5]) for r in _table(page, "#backups")]
    assert shown == backups(target)
    assert [s[3] for s in shown] == ["verified"]


def _screenshot(page, tmp_path: Path) -> Path:
    """Kept in docs/ when missing or asked for (``UPDATE_SCREENSHOTS=1``): a test run does not
    dirty the work tree with a new PNG every time."""
    keep = not SCREENSHOT.exists() or os.environ.get("UPDATE_SCREENSHOTS") == "1"
    shot = SCREENSHOT if keep else tmp_path / SCREENSHOT.name
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    return shot


def _check_report_and_quarantine_browser(page, stack, target: str) -> None:
    """The run's report.html opens from its link; the quarantine browser lists the ids."""
    with page.expect_response(lambda r: r.url.endswith("/report.html")) as answer:
        page.click("#phase-1 + p a:text-is('report.html')")
    assert answer.value.status == 200
    assert answer.value.headers["content-type"].startswith("text/html")
    assert page.title() == "Migration report: phase 1 (migrate_phase_1_core)"
    page.goto(f"{stack.url}/migration/")
    entity, rule = min(open_quarantine(target))
    page.click(f"#quarantine-1 a[href='quarantine?{urlencode({'entity': entity, 'rule': rule})}']")
    page.wait_for_url(lambda url: "/migration/quarantine?" in url)
    rows = _table(page, "#quarantined")
    assert [int(r[0]) for r in rows] == quarantined_ids(target, entity, rule)
    assert {(r[1], r[2]) for r in rows} == {(rule, RUN_ID)}
