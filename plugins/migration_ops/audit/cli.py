"""``make preflight``, ``make verify`` and ``make report``: the auditor's commands.

Each reads ``AIRFLOW_CONN_LEGACY_DB`` / ``AIRFLOW_CONN_SUPABASE_DB`` (the embedded databases
when unset, as ``make migrate`` does), calls the same functions as the DAGs ``preflight``,
``verify_target`` and the phases' ``sign_off`` task, prints where the pages are and exits
non-zero when what it checked failed. Messages are value-free (ids, counts, names).
"""

from __future__ import annotations

import sys

from migration_ops.errors import MigrationError


def _dsns() -> tuple[str, str]:
    from migration_ops.connections import env_dsn

    return env_dsn("legacy_db"), env_dsn("supabase_db")


def preflight() -> int:
    """Run the preflight; 0 when every check passed."""
    from migration_ops.audit.preflight import require_preflight

    legacy, target = _dsns()
    try:
        out = require_preflight(legacy, target)
    except MigrationError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"preflight passed: {out / 'preflight.html'}")
    return 0


def verify() -> int:
    """Row-level proof of the whole target from a fresh snapshot; 0 when every row matched."""
    from migration_ops.audit import signoff
    from migration_ops.audit.verify import verify_target

    legacy, target = _dsns()
    code = 0
    try:
        results = verify_target(legacy, target, triggered_by="make verify")
        for name, outcome in results.items():
            print(f"{name:32} compared {outcome.compared_rows:>9}  matched {outcome.matched_rows}")
    except MigrationError as exc:
        print(exc, file=sys.stderr)
        code = 1
    print(f"sign-off summary: {signoff.write(target)}")
    return code


def report() -> int:
    """Rewrite every phase's latest report (HTML included) and the sign-off summary."""
    from migration_ops import reports
    from migration_ops.audit import signoff

    target = _dsns()[1]
    for phase in signoff.collect(target)["phases"]:
        print(f"phase {phase['phase']}: {reports.write(target, phase['run_id']) / 'report.html'}")
    path = signoff.write(target)
    print(f"sign-off summary: {path}")
    return 0
