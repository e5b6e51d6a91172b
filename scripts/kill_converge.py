"""Kill `make migrate` at random moments, run it again, and prove the target converges.

Each round migrates a fresh target from the sandbox legacy database through Airflow
(``python -m migration_ops.cli migrate``, what ``make migrate`` runs), SIGKILLs the whole
process group at a random moment of that run, runs ``migrate`` again to the end and compares
the target with a clean full load of the same legacy database: same rows by legacy id, same
open quarantine, no run left ``running``, nothing left in staging, every run ``validated``
exactly when Airflow recorded its Asset. Prints one line per round
and a summary; exits non-zero if any round did not converge.

    python scripts/kill_converge.py --runs 10            # `make kill-converge`
    python scripts/kill_converge.py --runs 3 --through 2 --scale 0.01
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from include.entities import PHASES, get_phase
from include.sandbox.generator import build_sandbox, media_complete, sandbox_exists
from migration_ops import local_env, runs
from migration_ops.db import connect, scalar
from migration_ops.local_storage import LocalStorageServer, write_expected_objects
from migration_ops.settings import local_dir
from tests.e2e.conftest import run_phase
from tests.e2e.kill_harness import (
    comparable,
    kill_at,
    migrate_env,
    run_to_end,
    status_asset_disagreements,
)

LEGACY = "kill_legacy"


def _leftovers(target: str) -> tuple[int, int]:
    with connect(target) as conn:
        running = scalar(conn, "select count(*) from migration.runs where status = 'running'")
        staged = scalar(conn, "select count(*) from pg_tables where schemaname = 'staging'")
    return int(running), int(staged)


def _round(
    index: int, socket_dir: str, workdir: Path, through: int, duration: float, reference: object
) -> tuple[bool, bool]:
    target_db = f"kill_target_{index}"
    target = local_env.ensure_supabase_database(socket_dir, target_db, recreate=True)
    env = migrate_env(workdir / f"round-{index}", socket_dir, LEGACY, target_db)
    # Within 90 % of an uninterrupted run: later runs can be faster than the timing run.
    delay = random.uniform(0.5, 0.9 * duration)  # noqa: S311 - a test schedule, not a secret
    outcome = kill_at(
        env, local_env.dsn(socket_dir, "postgres"), target, after_seconds=delay, through=through
    )
    started = time.monotonic()
    code = run_to_end(env, through)
    validated = all(runs.latest_run_status(target, n) == "validated" for n in range(1, through + 1))
    same = code == 0 and validated and comparable(target, through) == reference
    running, staged = _leftovers(target)
    metadata = local_env.dsn(socket_dir, f"{target_db}_airflow")
    disagree = len(status_asset_disagreements(target, metadata))
    converged = same and running == 0 and staged == 0 and disagree == 0
    print(
        f"round {index:2d}: {outcome:<22} rerun exit {code} in {time.monotonic() - started:5.1f}s"
        f"  same as clean load: {'yes' if same else 'NO'}  running runs left: {running}"
        f"  staging tables left: {staged}  status/Asset disagreements: {disagree}",
        flush=True,
    )
    local_env.ensure_supabase_database(socket_dir, target_db, recreate=True)
    return converged, outcome.startswith("killed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--through", type=int, default=len(PHASES))
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    # The clean reference loads in this process: phase 5 needs the provider `migrate_env`
    # gives the killed runs (the offline one unless chosen otherwise).
    os.environ.setdefault("MIGRATION_EMBEDDING_PROVIDER", "hashing")
    socket_dir = local_env.start("test-pg")
    legacy = local_env.ensure_database(socket_dir, LEGACY)
    media = local_dir() / "kill-media"
    if not sandbox_exists(legacy, args.scale, args.seed) or not media_complete(legacy, media):
        build_sandbox(legacy, scale=args.scale, seed=args.seed, media_dir=media)
    workdir = Path(tempfile.mkdtemp(prefix="kill-converge-"))
    listing = write_expected_objects(legacy, workdir / "expected.txt")
    with LocalStorageServer(workdir / "storage") as storage:
        os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"] = storage.connection(
            media, expected_objects=listing
        )
        reference_target = local_env.ensure_supabase_database(
            socket_dir, "kill_reference", recreate=True
        )
        for number in range(1, args.through + 1):
            run_phase(legacy, reference_target, get_phase(number), f"reference-{number}")
        reference = comparable(reference_target, args.through)

        timing_db = "kill_timing"
        local_env.ensure_supabase_database(socket_dir, timing_db, recreate=True)
        started = time.monotonic()
        code = run_to_end(
            migrate_env(workdir / "timing", socket_dir, LEGACY, timing_db), args.through
        )
        duration = time.monotonic() - started
        print(f"uninterrupted migrate of phases 1-{args.through}: exit {code} in {duration:.1f}s")
        rounds = [
            _round(i, socket_dir, workdir, args.through, duration, reference)
            for i in range(1, args.runs + 1)
        ]
    killed = sum(1 for _, was_killed in rounds if was_killed)
    converged = sum(1 for ok, _ in rounds if ok)
    print(f"{killed} of {len(rounds)} rounds killed mid-run; {converged} converged")
    return 0 if converged == len(rounds) and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
