"""FastAPI app of the dashboard, mounted by Airflow's api-server at ``/migration``.

Airflow mounts a plugin app with ``app.mount()``, which does not inherit the core API's
authentication (see the Airflow plugin docs' warning): every route here depends on
:func:`require_reader`, which validates Airflow's own JWT (``Authorization: Bearer`` or the
UI's ``_token`` cookie) through the configured auth manager and checks that the user may
read DAGs. Routes are sync (``def``): FastAPI runs them in its thread pool, so the database
reads do not block the api-server's event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from migration_ops.ui import page, queries

app = FastAPI(title="Migration dashboard", docs_url=None, redoc_url=None, openapi_url=None)

#: Media type of each file kind the dashboard serves from a run's report folder.
MEDIA_TYPES = {".html": "text/html", ".md": "text/plain", ".json": "application/json"}
#: Charts ``report.html`` embeds (``charts/<name>``), written by the audit report.
CHARTS = ("outcomes.svg", "quarantine.svg", "time.svg")


async def require_reader(request: Request) -> Any:
    """The caller as Airflow knows them; 401 when anonymous, 403 when not allowed to read."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import get_user

    bearer = request.headers.get("authorization", "")
    credentials = None
    if bearer.lower().startswith("bearer "):
        from fastapi.security import HTTPAuthorizationCredentials

        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=bearer[7:])
    user = await get_user(request, None, credentials)
    manager = get_auth_manager()
    allowed = manager.is_authorized_view(
        access_view=AccessView.WEBSITE, user=user
    ) and manager.is_authorized_dag(method="GET", user=user)
    if not allowed:
        raise HTTPException(status_code=403, detail="not allowed to read the migration")
    return user


Reader = Annotated[Any, Depends(require_reader)]


def target_dsn() -> str:
    """DSN of the target (``supabase_db``): environment first, then Airflow's secrets/DB."""
    from migration_ops.connections import connection_to_dsn, env_dsn
    from migration_ops.settings import TARGET_CONN_ID

    try:
        return env_dsn(TARGET_CONN_ID)
    except KeyError:
        from airflow.models.connection import Connection

        return connection_to_dsn(Connection.get_connection_from_secrets(TARGET_CONN_ID))


def _read(reader: Any, *args: Any) -> Any:
    from migration_ops.db import connect

    with connect(target_dsn(), application_name="migration:dashboard", autocommit=True) as conn:
        return reader(conn, *args)


@app.get("/", response_class=HTMLResponse)
def dashboard(user: Reader) -> str:
    """Per phase: status, last run, reconciliation, checks, open quarantine; backups."""
    return page.dashboard(_read(queries.summary))


@app.get("/api/summary")
def summary(user: Reader) -> dict[str, Any]:
    """The dashboard's data as JSON (for monitoring scripts)."""
    return dict(_read(queries.summary))


@app.get("/quarantine", response_class=HTMLResponse)
def quarantine(user: Reader, entity: str, rule: str | None = None) -> str:
    """Quarantine browser: open rows of one entity (and rule), ids and rules only."""
    return page.quarantine_page(entity, rule, _read(queries.quarantined, entity, rule))


@app.get("/reports/{folder}/{name}")
def report(user: Reader, folder: str, name: str) -> FileResponse:
    """One report file of a run (``page.REPORT_FILES``: report.html, Markdown, JSON)."""
    if name not in page.REPORT_FILES:
        raise HTTPException(status_code=404, detail="no such report")
    return _report_file(folder, name)


@app.get("/reports/{folder}/charts/{name}")
def chart(user: Reader, folder: str, name: str) -> FileResponse:
    """A chart ``report.html`` shows (its relative ``charts/<name>.svg`` links land here)."""
    if name not in CHARTS:
        raise HTTPException(status_code=404, detail="no such chart")
    return _report_file(folder, f"charts/{name}", "image/svg+xml")


def _report_file(folder: str, relative: str, media_type: str | None = None) -> FileResponse:
    """A file of one run's report folder; 404 outside the reports folder or when missing."""
    from migration_ops.settings import reports_dir

    root = reports_dir().resolve()
    run_folder = (root / folder).resolve()
    path = (run_folder / relative).resolve()
    if run_folder.parent != root or not path.is_relative_to(run_folder) or not path.is_file():
        raise HTTPException(status_code=404, detail="no such report")
    return FileResponse(path, media_type=media_type or MEDIA_TYPES[path.suffix])
