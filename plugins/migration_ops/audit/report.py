"""``report.html`` of one run, beside its Markdown and JSON: what an auditor reads.

Per entity: the reconciliation, the row-level comparison, validation per suite (with a link
to the Great Expectations Data Docs built for the run, kept in the report directory),
quarantine counts by rule with the rule's meaning and fix, the backups taken and verified,
who triggered the run with which params, the legacy snapshot time; charts as static SVG.
Built from the ``migration`` schema only: ids, counts, rule names and times.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

from migration_ops import rule_catalog
from migration_ops.audit import charts, pages
from migration_ops.audit.row_validation import ensure_schema_current
from migration_ops.db import connect, read_sql
from migration_ops.reports import RECONCILIATION_KEYS
from migration_ops.settings import EXPECTATIONS_DIR

log = logging.getLogger(__name__)


@cache
def rule_meanings() -> dict[str, str]:
    """Rule name → why it exists (the ``meta.why`` of its expectation in the suites)."""
    meanings: dict[str, str] = {}
    for path in sorted(EXPECTATIONS_DIR.glob("*.json")):
        for expectation in json.loads(path.read_text(encoding="utf-8"))["expectations"]:
            meta = expectation.get("meta", {})
            if "rule" in meta:
                meanings[meta["rule"]] = str(meta.get("why", ""))
    return meanings


@cache
def _catalog_fixes() -> dict[str, str]:
    return {rule: fix for rule, _, fix in rule_catalog.row_level_rules()}


def fix_for(rule: str) -> str:
    """Value-free advice for a quarantined row of ``rule``.

    The rule catalog's fix: one source with docs/troubleshooting.md.
    """
    return _catalog_fixes().get(rule) or rule_catalog.fix_for(rule)


def collect_audit(target_dsn: str, run_id: str) -> dict[str, Any]:
    """Row validation, backups and timings of a run (beside :func:`reports.collect`)."""
    rv_keys = (
        "entity",
        "mode",
        "method",
        "compared",
        "matched",
        "mismatched",
        "missing",
        "unexpected",
        "seconds",
        "first_findings",
    )
    backup_keys = (
        "backup_id",
        "database",
        "status",
        "size_bytes",
        "sha256",
        "started_at",
        "verified_at",
        "location",
    )
    ensure_schema_current(target_dsn)  # a table, or a column added since, may be missing
    with connect(target_dsn, application_name="migration:report") as conn:

        def query(path: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(read_sql(path), {"run_id": run_id})]

        row_validation = query("audit/report_row_validation.sql")
        backups = query("audit/report_backups.sql")
        timings = query("audit/report_timings.sql")
    return {
        "row_validation": [dict(zip(rv_keys, r, strict=True)) for r in row_validation],
        "backups": [dict(zip(backup_keys, r, strict=True)) for r in backups],
        "timings": [
            {
                "entity": entity,
                "step": step,
                "start": round(start, 3),
                "seconds": round(seconds, 3),
                "succeeded": succeeded,
            }
            for entity, step, start, seconds, succeeded in timings
        ],
    }


def _charts(data: dict[str, Any], audit: dict[str, Any], out: Path) -> list[str]:
    """Render the run's charts beside the page; return their figure tags."""
    figures = []
    if data["reconciliation"]:
        charts.outcomes(data["reconciliation"], out / "charts" / "outcomes.svg")
        figures.append(pages.figure("charts/outcomes.svg", "Legacy rows per entity by outcome"))
    by_rule = {f"{q['entity']}: {q['rule']}": q["rows"] for q in data["quarantine"]}
    charts.counts(
        by_rule,
        out / "charts" / "quarantine.svg",
        title="Quarantine by rule",
        xlabel="rows held back",
    )
    figures.append(pages.figure("charts/quarantine.svg", "Quarantined rows per rule (this run)"))
    if audit["timings"]:
        charts.steps(audit["timings"], out / "charts" / "time.svg")
        figures.append(
            pages.figure(
                "charts/time.svg",
                "Time per step and entity: each bar spans the step's own recorded start and end "
                "(migration.step_timings), so entities that ran in parallel overlap",
            )
        )
    return figures


def _header(run: dict[str, Any]) -> str:
    params = json.dumps(run.get("params") or {}, sort_keys=True, default=str)
    rows = [
        ("run", run["run_id"]),
        ("phase", run["phase"]),
        ("DAG", run["dag_id"]),
        ("status", "ok" if run["status"] == "validated" else "fail"),
        ("status (as recorded)", run["status"]),
        ("triggered by", run["triggered_by"]),
        ("params", params),
        ("legacy snapshot (every entity read it)", run["snapshot_at"]),
        ("as of", run["as_of"]),
        ("started", run["started_at"]),
        ("finished", run["finished_at"]),
        ("why (if ended by another run)", run.get("status_reason") or ""),
    ]
    return pages.table(("", ""), rows)


def _validation(data: dict[str, Any], docs: str | None) -> str:
    link = (
        f"<p>Great Expectations Data Docs of this run: <a href='{escape(docs)}'>"
        f"{escape(docs)}</a> (GX's own site, kept with this report).</p>"
        if docs
        else "<p class='muted'>No Data Docs were built for this run.</p>"
    )
    rows = (
        (v["entity"], v["pass"], v["suite"], bool(v["success"]), v["evaluated"], v["failed"])
        for v in data["validation"]
    )
    return link + pages.table(
        ("entity", "pass", "suite", "success", "expectations", "failed"), rows
    )


def _quarantine(data: dict[str, Any]) -> str:
    meanings = rule_meanings()
    rows = (
        (q["entity"], q["rule"], q["rows"], meanings.get(q["rule"], ""), fix_for(q["rule"]))
        for q in data["quarantine"]
    )
    return pages.table(("entity", "rule", "rows", "what the rule means", "how to fix"), rows)


def _reconciliation(data: dict[str, Any]) -> str:
    rows = [
        [r[k] for k in RECONCILIATION_KEYS]
        + [r["source_rows"] == r["loaded_rows"] + r["merged_rows"] + r["quarantined_rows"]]
        for r in data["reconciliation"]
    ]
    return pages.table(
        (
            "entity",
            "source",
            "loaded",
            "merged",
            "quarantined",
            "inserted",
            "updated",
            "unchanged",
            "removed",
            "balanced",
        ),
        rows,
    )


def _row_validation(audit: dict[str, Any]) -> str:
    keys = (
        "entity",
        "mode",
        "method",
        "compared",
        "matched",
        "mismatched",
        "missing",
        "unexpected",
        "seconds",
        "first_findings",
    )
    rows = [
        [v[k] for k in keys] + [v["compared"] == v["matched"] and not v["unexpected"]]
        for v in audit["row_validation"]
    ]
    return pages.table(
        (
            "entity",
            "mode",
            "method",
            "compared",
            "matched",
            "mismatched",
            "missing",
            "unexpected",
            "seconds",
            "first findings (kind id.column)",
            "ok",
        ),
        rows,
    )


def _backups(audit: dict[str, Any]) -> str:
    keys = (
        "backup_id",
        "database",
        "status",
        "size_bytes",
        "started_at",
        "verified_at",
        "location",
    )
    return pages.table(keys, ([b[k] for k in keys] for b in audit["backups"]))


def write_html(target_dsn: str, data: dict[str, Any], out: Path, docs: str | None = None) -> Path:
    """Write ``report.html`` (and its charts) for the run whose ``data`` was collected."""
    run = data["run"]
    audit = collect_audit(target_dsn, run["run_id"])
    (out / "audit.json").write_text(json.dumps(audit, indent=2, default=str), "utf-8")
    body = [
        _header(run),
        "<h2>Reconciliation (source = loaded + merged + quarantined)</h2>",
        _reconciliation(data),
        "<h2>Row-level comparison legacy ↔ target</h2>",
        "<p>Every loaded row hashed on both sides (legacy through the transform, in the run's "
        "snapshot; target as stored) and compared by legacy id. Ids of the findings in "
        f"<code>migration.row_findings where run_id = '{escape(run['run_id'])}'</code>.</p>",
        _row_validation(audit),
        "<h2>Validation per suite (Great Expectations)</h2>",
        _validation(data, docs),
        "<h2>Quarantine by rule</h2>",
        _quarantine(data),
        "<h2>Backups taken and verified</h2>",
        _backups(audit),
        "<h2>Charts</h2>",
        *_charts(data, audit, out),
    ]
    title = f"Migration report: phase {run['phase']} ({run['dag_id']})"
    path = out / "report.html"
    path.write_text(pages.page(title, body), "utf-8")
    return path


def write_all(target_dsn: str, data: dict[str, Any], out: Path) -> Path:
    """GX Data Docs, then ``report.html``; called by :func:`migration_ops.reports.write`.

    Data Docs are a convenience on top of the recorded results: if GX cannot build them the
    report says so and is still written (the error's kind only is logged).
    """
    from migration_ops.audit import data_docs

    run = data["run"]
    try:
        docs: str | None = data_docs.build(
            out, run["run_id"], run["started_at"], data["validation"]
        )
    except Exception as exc:  # noqa: BLE001 - the report must not depend on GX rendering
        log.warning("Data Docs not built (%s)", type(exc).__name__)
        docs = None
    return write_html(target_dsn, data, out, docs)
