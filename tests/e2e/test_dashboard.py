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
from pathlib import Path

import pytest

from include.entities import PHASES
from migration_ops.db import connect
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


@pytest.fixture
def dashboard(tmp_path, pg_socket, sandbox_dsn, supabase_db, migrate, supabase_storage):
    """An api-server whose target holds a validated phase 1 run (and its quarantine)."""
    target = supabase_db("dashboard")
    migrate(sandbox_dsn, target, PHASES[0], "migrate_phase_1_core__manual__dashboard")
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


def test_dashboard_refuses_anonymous_callers(dashboard) -> None:
    stack, _ = dashboard
    for path in ("/migration/", "/migration/api/summary", "/migration/quarantine?entity=profiles"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            stack.request("GET", path, token="")
        assert refused.value.code == 401, path
    with pytest.raises(urllib.error.HTTPError) as forged:
        stack.request("GET", "/migration/api/summary", token="not-a-jwt")
    assert forged.value.code in (401, 403)
    summary = stack.request("GET", "/migration/api/summary")
    assert [p["status"] for p in summary["phases"]] == [
        "validated",
        "not run",
        "not run",
        "not run",
        "not run",  # phase 5 (AI)
    ]


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
        # Kept in docs/ when missing or asked for (UPDATE_SCREENSHOTS=1): a test run does not
        # dirty the work tree with a new PNG every time.
        keep = not SCREENSHOT.exists() or os.environ.get("UPDATE_SCREENSHOTS") == "1"
        shot = SCREENSHOT if keep else tmp_path / SCREENSHOT.name
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        browser.close()
