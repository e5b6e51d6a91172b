"""The sign-off summary across all phases: one page an auditor can file.

For each phase its latest run: status, legacy snapshot, reconciliation totals, the row-level
comparison of that run and its verified backup; then the latest ``verify_target`` of the
whole target. Each figure names the query it comes from (``include/sql/audit/signoff_*.sql``
and the tables in ``docs/auditor-guide.md``), so it can be re-checked by hand. The verdict
is "ready to sign" only when every phase validated and balanced, no row differs, and the
latest whole-target verification (if any) passed. Rewritten after every phase run and every
``verify_target``, failed or not, so it always shows the latest state; archived beside the
backups (with the latest preflight page) when reports are archived.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from include.entities import PHASES
from migration_ops.audit import archive, pages
from migration_ops.audit.row_validation import ensure_schema
from migration_ops.db import connect, read_sql
from migration_ops.settings import reports_dir

PHASE_KEYS = (
    "phase",
    "run_id",
    "status",
    "snapshot_at",
    "finished_at",
    "entities",
    "source",
    "loaded",
    "merged",
    "quarantined",
    "balanced",
    "compared",
    "matched",
    "mismatched",
    "missing",
    "unexpected",
    "backup_id",
    "open_quarantine",
)
VERIFY_KEYS = (
    "run_id",
    "status",
    "snapshot_at",
    "finished_at",
    "entities",
    "compared",
    "matched",
    "mismatched",
    "missing",
    "unexpected",
)


def _plain(value: Any) -> Any:
    """JSON-ready: times as ISO 8601, sums (numeric) as integers."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return int(value) if isinstance(value, Decimal) else value


def collect(target_dsn: str) -> dict[str, Any]:
    """The sign-off figures, straight from the migration schema."""
    ensure_schema(target_dsn)
    with connect(target_dsn, application_name="migration:signoff") as conn:
        phases = conn.execute(read_sql("audit/signoff_phases.sql")).fetchall()
        verified = conn.execute(read_sql("audit/signoff_verify.sql")).fetchone()
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "phases": [dict(zip(PHASE_KEYS, map(_plain, row), strict=True)) for row in phases],
        "verify_target": dict(zip(VERIFY_KEYS, map(_plain, verified), strict=True))
        if verified
        else None,
    }


def verdict(data: dict[str, Any]) -> list[str]:
    """Why the migration cannot be signed yet (empty: ready to sign)."""
    reasons = []
    done = {p["phase"]: p for p in data["phases"]}
    for phase in PHASES:
        row = done.get(phase.number)
        if row is None:
            reasons.append(f"phase {phase.number} has not run")
            continue
        if row["status"] != "validated":
            reasons.append(f"phase {phase.number}: latest run {row['status']}")
        if not row["balanced"]:
            reasons.append(f"phase {phase.number}: reconciliation does not balance")
        if row["mismatched"] or row["missing"] or row["unexpected"]:
            reasons.append(f"phase {phase.number}: rows differ from legacy after the load")
        if row["backup_id"] is None:
            reasons.append(f"phase {phase.number}: no verified backup")
    verify = data["verify_target"]
    if verify is not None and verify["status"] != "validated":
        reasons.append(f"latest verify_target ({verify['run_id']}) {verify['status']}")
    return reasons


#: Where each figure comes from: what an auditor runs to re-check it (docs/auditor-guide.md).
SOURCES = (
    ("status, snapshot", "select status, snapshot_at from migration.runs where run_id = :run"),
    (
        "source, loaded, merged, quarantined",
        "select * from migration.reconciliation where run_id = :run",
    ),
    (
        "compared, matched, mismatched, missing, unexpected",
        "select * from migration.row_validation where run_id = :run",
    ),
    ("which rows differ", "select * from migration.row_findings where run_id = :run"),
    (
        "open quarantine",
        "select * from migration.quarantine where last_run_id = :run and resolved_at is null",
    ),
    ("backup", "select * from migration.backups where backup_id = :backup_id"),
)


def _phase_rows(data: dict[str, Any], directory: Path) -> list[list[Any]]:
    rows = []
    for p in data["phases"]:
        report = directory / p["run_id"].replace("/", "_").replace(":", "-") / "report.html"
        run: Any = p["run_id"]
        if report.exists():
            run = pages.Link(f"../{report.parent.name}/report.html", p["run_id"])
        ok = (
            p["status"] == "validated"
            and p["balanced"]
            and not p["mismatched"]
            and not p["missing"]
            and not p["unexpected"]
        )
        rows.append(
            [
                p["phase"],
                run,
                p["status"],
                str(p["snapshot_at"] or "")[:19].replace("T", " "),
                p["source"],
                p["loaded"],
                p["merged"],
                p["quarantined"],
                p["balanced"],
                p["compared"],
                p["matched"],
                p["mismatched"] + p["missing"] + p["unexpected"],
                p["backup_id"],
                p["open_quarantine"],
                ok,
            ]
        )
    return rows


def _body(data: dict[str, Any], reasons: list[str], directory: Path) -> list[str]:
    state = (
        "<p class='ok'>Ready to sign: every phase validated and balanced, every loaded "
        "row equals its legacy row.</p>"
        if not reasons
        else "<p class='fail'>Not ready to sign:</p><ul>"
        + "".join(f"<li>{escape(r)}</li>" for r in reasons)
        + "</ul>"
    )
    verify = data["verify_target"]
    return [
        state,
        "<h2>Phases (latest run each)</h2>",
        pages.table(
            (
                "phase",
                "run",
                "status",
                "legacy snapshot",
                "source",
                "loaded",
                "merged",
                "quarantined",
                "balanced",
                "rows compared",
                "matched",
                "differ",
                "verified backup",
                "open quarantine",
                "ok",
            ),
            _phase_rows(data, directory),
        ),
        "<h2>Whole target against a fresh legacy snapshot (verify_target)</h2>",
        pages.table(VERIFY_KEYS, [[verify[k] for k in VERIFY_KEYS]])
        if verify
        else "<p class='muted'>Not run yet: <code>make verify</code>.</p>",
        "<h2>Where each figure comes from</h2>",
        pages.table(("figure", "query (target database)"), SOURCES),
        "<p class='muted'>docs/auditor-guide.md says what each figure proves and how to "
        "re-check it.</p>",
    ]


def path(directory: Path | None = None) -> Path:
    """Where :func:`write` writes the summary page (``<reports>/signoff/signoff.html``)."""
    return (directory or reports_dir()) / "signoff" / "signoff.html"


def write(target_dsn: str, directory: Path | None = None) -> Path:
    """Write ``signoff/signoff.html`` and ``signoff.json`` in the reports directory."""
    directory = directory or reports_dir()
    data = collect(target_dsn)
    reasons = verdict(data)
    data["ready_to_sign"] = not reasons
    data["reasons"] = reasons
    out = path(directory).parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "signoff.json").write_text(json.dumps(data, indent=2, default=str), "utf-8")
    page = pages.page("Migration sign-off summary", _body(data, reasons, directory))
    (out / "signoff.html").write_text(page, "utf-8")
    if archive.enabled():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        preflight = sorted(directory.glob("preflight-*/"))[-1:]
        archive.archive(target_dsn, archive.SIGNOFF, out, name=f"signoff-{stamp}", also=preflight)
    return out / "signoff.html"
