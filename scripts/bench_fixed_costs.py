"""What a phase costs with (almost) no data: `make migrate --through 4` over a tiny sandbox.

Builds a sandbox of a few hundred rows (``--scale 0.002``) on the embedded test server, runs
``python -m migration_ops.cli migrate --through 4`` (what ``make migrate`` runs: one
``airflow dags test`` per phase) into a fresh Supabase-shaped target, and then reads where
the time went from Airflow's own metadata database (each task instance's start and end):

- per phase: the wall time of its ``airflow dags test`` (printed by the CLI), the time before
  its first task started (process start, imports, DAG parsing, run creation) and the time of
  the groups of tasks (gate/preflight, backup dump, backup verify, begin, extract, the entity
  steps, publish and sign-off, record_failure);
- with ``--rerun``: the same again on the same target (nothing changed in legacy), which is
  where reuse of the schema and of a verified backup shows.

Timings, not assertions: the tests prove correctness. Prints a Markdown table and writes
``reports/fixed_costs.json``.

    python scripts/bench_fixed_costs.py --scale 0.002 --rerun
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from include.sandbox.generator import build_sandbox, media_complete, sandbox_exists
from migration_ops import local_env
from migration_ops.db import connect, scalar
from migration_ops.local_storage import LocalStorageServer, write_expected_objects
from migration_ops.settings import local_dir, reports_dir
from tests.e2e.kill_harness import migrate_command, migrate_env

ROOT = Path(__file__).resolve().parents[1]
LEGACY = "fixed_legacy"
TARGET = "fixed_target"
#: Columns of the breakdown, in the order a phase runs them.
GROUPS = (
    "gate",
    "backup_dump",
    "backup_verify",
    "begin",
    "extract",
    "entities",
    "publish",
    "record_failure",
)


def _group(task_id: str) -> str:
    if task_id in ("gate", "preflight"):
        return "gate"
    if task_id.startswith("backup."):
        return task_id.split(".", 1)[1]
    if task_id in ("begin", "extract", "record_failure"):
        return task_id
    if task_id in ("publish", "sign_off"):
        return "publish"
    return "entities"


def task_times(pg_socket: str) -> dict[str, dict[str, Any]]:
    """Per DAG of the last migrate: first task start, last task end, seconds per group."""
    metadata = local_env.dsn(pg_socket, f"{TARGET}_airflow")
    with connect(metadata) as conn:
        rows = conn.execute(
            """
            select ti.dag_id, ti.task_id, ti.start_date, ti.end_date,
                   extract(epoch from ti.end_date - ti.start_date)
            from task_instance as ti
            join dag_run as r on r.dag_id = ti.dag_id and r.run_id = ti.run_id
            where ti.start_date is not null
              and r.id = (select max(id) from dag_run as x where x.dag_id = ti.dag_id)
            """
        ).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for dag_id, task_id, start, end, seconds in rows:
        dag = out.setdefault(
            dag_id, {"first_start": start, "last_end": end, "groups": defaultdict(float)}
        )
        dag["first_start"] = min(dag["first_start"], start)
        dag["last_end"] = max(dag["last_end"], end)
        dag["groups"][_group(task_id)] += float(seconds or 0)
    return out


def run_migrate(env: dict[str, str], through: int) -> tuple[float, dict[int, float], str]:
    """Run the CLI; return its wall seconds, each phase's printed seconds and its stdout."""
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - our own CLI
        migrate_command(through), cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - started
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"migrate exited {result.returncode}")
    phases = {
        int(m[1]): float(m[2])
        for m in re.finditer(
            r"migrate_phase_(\d)_\w+\) \.\.\. validated in ([\d.]+)s", result.stdout
        )
    }
    return wall, phases, result.stdout


def breakdown(label: str, wall: float, phases: dict[int, float], pg_socket: str) -> dict[str, Any]:
    """Print and return one migrate's table: per phase, start-up and the task groups."""
    times = task_times(pg_socket)
    rows = []
    header = ["phase", "wall s", "start-up s", *(f"{g} s" for g in GROUPS)]
    print(f"\n{label}: {wall:.1f} s wall for phases {sorted(phases)}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for number, seconds in sorted(phases.items()):
        dag = next(v for k, v in times.items() if k.startswith(f"migrate_phase_{number}_"))
        in_tasks = (dag["last_end"] - dag["first_start"]).total_seconds()
        row = {
            "phase": number,
            "wall_s": round(seconds, 2),
            "startup_s": round(seconds - in_tasks, 2),
            **{f"{g}_s": round(dag["groups"].get(g, 0.0), 2) for g in GROUPS},
        }
        rows.append(row)
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
    return {"label": label, "wall_s": round(wall, 2), "phases": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--through", type=int, default=4)
    parser.add_argument("--rerun", action="store_true", help="migrate the same target again")
    parser.add_argument("--workdir", type=Path, help="keep Airflow's home and logs here")
    args = parser.parse_args()

    socket_dir = local_env.start("test-pg")
    legacy = local_env.ensure_database(socket_dir, LEGACY)
    media = local_dir() / "fixed-media"
    if not sandbox_exists(legacy, args.scale, args.seed) or not media_complete(legacy, media):
        build_sandbox(legacy, scale=args.scale, seed=args.seed, media_dir=media)
    with connect(legacy) as conn:
        rows = scalar(
            conn,
            "select sum(n_live_tup) from pg_stat_user_tables where schemaname = 'public'",
        )
    target = local_env.ensure_supabase_database(socket_dir, TARGET, recreate=True)
    results: dict[str, Any] = {"scale": args.scale, "legacy_rows": int(rows or 0), "runs": []}
    print(f"sandbox: scale {args.scale}, ~{results['legacy_rows']} legacy rows; target {target}")
    with tempfile.TemporaryDirectory(prefix="fixed-costs-") as scratch:
        tmp = args.workdir or Path(scratch)
        listing = write_expected_objects(legacy, Path(tmp) / "expected.txt")
        with LocalStorageServer(Path(tmp) / "storage") as storage:
            env = migrate_env(Path(tmp), socket_dir, LEGACY, TARGET)
            env["AIRFLOW_CONN_SUPABASE_STORAGE"] = storage.connection(
                media, expected_objects=listing
            )
            for label in ("first migrate", "rerun (nothing changed)")[: 1 + args.rerun]:
                wall, phases, _ = run_migrate(env, args.through)
                results["runs"].append(breakdown(label, wall, phases, socket_dir))
    out = reports_dir() / "fixed_costs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
