"""HTML of the dashboard: plain server-rendered tables, every value escaped.

Links are relative (no leading slash) so the page works under any base URL or proxy
prefix: the page lives at ``<airflow>/migration/``, Airflow's own run pages at
``<airflow>/dags/<dag_id>/runs/<run_id>``.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote, urlencode

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2937}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.4rem 0 1rem}
td,th{border:1px solid #d1d5db;padding:.25rem .6rem;text-align:right}
th{background:#f3f4f6}td:first-child,th:first-child{text-align:left}
.validated{color:#047857;font-weight:600}.failed{color:#b91c1c;font-weight:600}
.running{color:#b45309;font-weight:600}.muted{color:#6b7280}
"""


def _cell(value: Any) -> str:
    return f"<td>{escape('' if value is None else str(value))}</td>"


def _table(headers: list[str], rows: list[list[Any]], table_id: str = "") -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def run_link(dag_id: str, migration_run_id: str) -> str:
    """Relative link to Airflow's page of the DAG run behind a migration run."""
    airflow_run = migration_run_id.removeprefix(f"{dag_id}__")
    return f"../dags/{quote(dag_id, safe='')}/runs/{quote(airflow_run, safe='')}"


#: Report files of a run the dashboard links and serves (nothing else under the reports folder).
REPORT_FILES = ("report.html", "reconciliation.md", "report.json")


def report_link(migration_run_id: str, name: str) -> str:
    """Relative link to one of the run's report files, served by the dashboard."""
    folder = migration_run_id.replace("/", "_").replace(":", "-")
    return f"reports/{quote(folder, safe='')}/{name}"


def _phase_html(phase: dict[str, Any]) -> str:
    run = phase["run"]
    status = escape(phase["status"])
    parts = [
        f'<h2 id="phase-{phase["phase"]}">Phase {phase["phase"]}: {escape(phase["title"])} '
        f'— <span class="{status}" data-testid="status-{phase["phase"]}">{status}</span></h2>'
    ]
    if run is not None:
        parts.append(_run_line(run))
    recon = [
        [r["entity"], r["source_rows"], r["loaded_rows"], r["merged_rows"], r["quarantined_rows"]]
        for r in phase["reconciliation"]
    ]
    parts.append(
        _table(
            ["entity", "source", "loaded", "merged", "quarantined"],
            recon,
            f"recon-{phase['phase']}",
        )
    )
    checks = [
        [
            c["entity"],
            c["pass"],
            c["suite"],
            "yes" if c["success"] else "NO",
            c["evaluated"],
            c["failed"],
        ]
        for c in phase["checks"]
    ]
    if checks:
        parts.append("<h3>Suite checks</h3>")
        headers = ["entity", "pass", "suite", "success", "expectations", "failed"]
        parts.append(_table(headers, checks, f"checks-{phase['phase']}"))
    if run is not None:
        parts.append(_row_proof_html(phase))
    quarantine = [
        [
            f'<a href="quarantine?{urlencode({"entity": q["entity"], "rule": q["rule"]})}">'
            f"{escape(q['entity'])}</a>",
            q["rule"],
            q["rows"],
        ]
        for q in phase["quarantine"]
    ]
    parts.append("<h3>Open quarantine</h3>")
    parts.append(_linked_table(["entity", "rule", "rows"], quarantine, phase["phase"]))
    return "\n".join(parts)


def _run_line(run: dict[str, Any]) -> str:
    """The phase's last run: id, start, who triggered it; links to its DAG run and reports."""
    run_id = run["run_id"]
    reports = " · ".join(
        f'<a href="{escape(report_link(run_id, name))}">{escape(name)}</a>' for name in REPORT_FILES
    )
    return (
        f"<p>last run <code>{escape(run_id)}</code> started {escape(str(run['started_at']))}"
        f" by {escape(str(run['triggered_by']))} · "
        f'<a href="{escape(run_link(run["dag_id"], run_id))}" target="_top">DAG run</a> · '
        f"{reports}</p>"
    )


def _row_proof_html(phase: dict[str, Any]) -> str:
    """The run's row-level proof legacy ↔ target per entity, and how many findings it left."""
    keys = ("compared_rows", "matched_rows", "mismatched_rows", "missing_rows")
    rows = [
        [r["entity"], *(r[k] for k in keys), r["unexpected_rows"], r["findings"], r["method"]]
        for r in phase["row_proof"]
    ]
    headers = ["entity", "compared", "matched", "mismatched", "missing", "unexpected"]
    return "<h3>Row-level proof (legacy ↔ target)</h3>" + _table(
        [*headers, "findings", "method"], rows, f"rows-{phase['phase']}"
    )


def _linked_table(headers: list[str], rows: list[list[Any]], phase: int) -> str:
    """A table whose first cell is already-escaped HTML (a link built above)."""
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        f"<tr><td>{row[0]}</td>" + "".join(_cell(v) for v in row[1:]) + "</tr>" for row in rows
    )
    return f'<table id="quarantine-{phase}"><tr>{head}</tr>{body}</table>'


def dashboard(data: dict[str, Any]) -> str:
    """The whole dashboard page."""
    backups = [
        [
            b["backup_id"],
            b["database"],
            b["phase"],
            b["reason"],
            b["status"],
            b["size_bytes"],
            b["started_at"],
            b["verified_at"],
        ]
        for b in data.get("backups", [])
    ]
    body = "\n".join(_phase_html(p) for p in data["phases"])
    return _document(
        "Migration",
        f"<h1>Migration dashboard</h1>{body}<h2>Backups</h2>"
        + _table(
            ["id", "database", "phase", "reason", "status", "bytes", "started", "verified"],
            backups,
            "backups",
        ),
    )


def quarantine_page(entity: str, rule: str | None, rows: list[dict[str, Any]]) -> str:
    """Quarantine browser: legacy ids and rules of one entity, no values."""
    table = _table(
        ["legacy id", "rule", "first run", "last run", "first seen", "last seen"],
        [
            [
                r["legacy_id"],
                r["rule"],
                r["first_run_id"],
                r["last_run_id"],
                r["first_seen_at"],
                r["last_seen_at"],
            ]
            for r in rows
        ],
        "quarantined",
    )
    title = f"Quarantine: {entity}" + (f" / {rule}" if rule else "")
    return _document(
        title,
        f'<p><a href="./">← dashboard</a></p><h1>{escape(title)}</h1>'
        f"<p>{len(rows)} open rows (ids and rules only; fix the source, then rerun the phase; "
        f"see docs/troubleshooting.md)</p>{table}",
    )


def _document(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
