"""Auditor reports rendered from the ``migration`` schema at the end of each phase run.

Written to ``reports/<run_id>/``: ``reconciliation.md`` (human), ``report.json``
(machine: reconciliation, validation results, quarantine counts per rule), ``report.html``
with charts and the run's GX Data Docs (:mod:`migration_ops.audit.report`) and, for a run
that de-duplicated, ``dedup.md``/``dedup.json`` (:mod:`migration_ops.dedup.report`). They carry
ids, rule names and counts only: no legacy values, so no PHI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from migration_ops.db import connect
from migration_ops.settings import reports_dir

#: Columns of a run's reconciliation rows, in the order the reports show them.
RECONCILIATION_KEYS = (
    "entity",
    "source_rows",
    "loaded_rows",
    "merged_rows",
    "quarantined_rows",
    "inserted_rows",
    "updated_rows",
    "unchanged_rows",
    "removed_rows",
)


def collect(target_dsn: str, run_id: str) -> dict[str, Any]:
    """Gather a run's reconciliation, validation outcome and quarantine counts."""
    with connect(target_dsn, application_name="migration:report") as conn:
        run = conn.execute(
            "select run_id, phase, dag_id, status, as_of, started_at, finished_at, triggered_by, "
            "params, snapshot_at, status_reason from migration.runs where run_id = %s",
            (run_id,),
        ).fetchone()
        if run is None:
            raise KeyError(f"no migration run {run_id!r}")
        reconciliation = conn.execute(
            """
            select r.entity, r.source_rows, r.loaded_rows, r.merged_rows, r.quarantined_rows,
                   c.inserted_rows, c.updated_rows, c.unchanged_rows, c.removed_rows
            from migration.reconciliation as r
            join migration.checkpoints as c using (run_id, entity)
            where r.run_id = %s order by r.entity
            """,
            (run_id,),
        ).fetchall()
        validation = conn.execute(
            "select entity, pass, suite, success, evaluated, failed, results "
            "from migration.validation_results where run_id = %s order by entity, pass",
            (run_id,),
        ).fetchall()
        quarantine = conn.execute(
            "select entity, rule, count(*) from migration.quarantine "
            "where last_run_id = %s group by entity, rule order by entity, rule",
            (run_id,),
        ).fetchall()
    keys = (
        "run_id",
        "phase",
        "dag_id",
        "status",
        "as_of",
        "started_at",
        "finished_at",
        "triggered_by",
        "params",
        "snapshot_at",
        "status_reason",
    )
    return {
        "run": {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in zip(keys, run, strict=True)
        },
        "reconciliation": [
            dict(zip(RECONCILIATION_KEYS, row, strict=True)) for row in reconciliation
        ],
        "validation": [
            dict(
                zip(
                    ("entity", "pass", "suite", "success", "evaluated", "failed", "results"),
                    row,
                    strict=True,
                )
            )
            for row in validation
        ],
        "quarantine": [{"entity": e, "rule": r, "rows": n} for e, r, n in quarantine],
    }


def reconciliation_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of a run's reconciliation (used by the CLI and the Markdown report)."""
    header = (
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
    )
    lines = [header]
    for r in rows:
        balanced = r["source_rows"] == r["loaded_rows"] + r["merged_rows"] + r["quarantined_rows"]
        lines.append(
            (
                r["entity"],
                *(
                    str(r[k])
                    for k in ("source_rows", "loaded_rows", "merged_rows", "quarantined_rows")
                ),
                *(
                    str(r[k])
                    for k in ("inserted_rows", "updated_rows", "unchanged_rows", "removed_rows")
                ),
                "yes" if balanced else "NO",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) for line in lines]
    rendered.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(rendered)


def _lag(run: dict[str, Any]) -> str:
    """How far behind legacy the target was when the run finished (snapshot → committed)."""
    from datetime import datetime

    lag = datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["snapshot_at"])
    return f"{lag.total_seconds():.0f}s"


def directory_of(run_id: str, directory: Path | None = None) -> Path:
    """The directory :func:`write` writes the run's reports to."""
    return (directory or reports_dir()) / run_id.replace("/", "_").replace(":", "-")


def write(
    target_dsn: str,
    run_id: str,
    directory: Path | None = None,
    *,
    about_to_record: dict[str, Any] | None = None,
) -> Path:
    """Write the run's reports, all or none; return the directory they are in.

    The files are written to a hidden sibling directory that replaces the run's directory
    only once complete, so a failure or a kill half-way leaves the previous reports (or none),
    never a mix. ``about_to_record`` overrides columns of the run's row (``status``,
    ``finished_at``): ``publish`` writes the reports of a validated run before it commits
    ``validated``, so that commit is its last act before the Asset.
    """
    data = collect(target_dsn, run_id)
    data["run"].update(about_to_record or {})
    final = directory_of(run_id, directory)
    out = final.with_name(f".{final.name}.partial")
    shutil.rmtree(out, ignore_errors=True)  # what a killed write left
    out.mkdir(parents=True)
    try:
        _write_files(target_dsn, data, out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    replaced = final.with_name(f".{final.name}.replaced")
    shutil.rmtree(replaced, ignore_errors=True)
    if final.exists():
        final.rename(replaced)
    out.rename(final)
    shutil.rmtree(replaced, ignore_errors=True)
    from migration_ops.audit import archive

    if archive.enabled():
        archive.archive(target_dsn, run_id, final)
    return final


def discard(run_id: str, directory: Path | None = None) -> bool:
    """Remove the run's reports (before its status changes under them); whether it had any."""
    out = directory_of(run_id, directory)
    existed = out.is_dir()
    shutil.rmtree(out, ignore_errors=True)
    return existed


def _write_files(target_dsn: str, data: dict[str, Any], out: Path) -> None:
    """Every report file of the run whose ``data`` was collected, into ``out``."""
    run_id = data["run"]["run_id"]
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    run = data["run"]
    lines = [
        f"# Migration report: phase {run['phase']} ({run['dag_id']})",
        "",
        f"- run: `{run['run_id']}`",
        f"- status: **{run['status']}**",
        f"- as of: {run['as_of']}; started {run['started_at']}; finished {run['finished_at']}",
        f"- legacy snapshot read by every entity: {run['snapshot_at']}"
        + (f" (lag to finished: {_lag(run)})" if run["snapshot_at"] and run["finished_at"] else ""),
        *([f"- why: {run['status_reason']}"] if run["status_reason"] else []),
        f"- triggered by: {run['triggered_by']}",
        "",
        "## Reconciliation (source = loaded + merged + quarantined)",
        "",
        "```",
        reconciliation_table(data["reconciliation"]),
        "```",
        "",
        "## Validation (Great Expectations)",
        "",
        "Pass `transformed`: every row, before quarantine; its row-level failures are the rows "
        "quarantined below. Pass `validated`: the rows that were loaded; it must succeed.",
        "",
        "| entity | pass | suite | success | expectations | failed |",
        "|---|---|---|---|---|---|",
        *(
            "| "
            + " | ".join(
                str(v[k]) for k in ("entity", "pass", "suite", "success", "evaluated", "failed")
            )
            + " |"
            for v in data["validation"]
        ),
        "",
        "## Quarantine (rows per rule, this run)",
        "",
        "| entity | rule | rows |",
        "|---|---|---|",
        *(f"| {q['entity']} | {q['rule']} | {q['rows']} |" for q in data["quarantine"]),
        "",
        "Row-level detail: `select * from migration.quarantine where last_run_id = '<run_id>'` "
        "(legacy ids and rules only).",
    ]
    (out / "reconciliation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from migration_ops.dedup import report as dedup_report

    dedup_report.write(target_dsn, run_id, out)  # dedup.md/json when the run linked duplicates
    from migration_ops.audit.report import write_all  # report.html, charts, GX Data Docs

    write_all(target_dsn, data, out)
