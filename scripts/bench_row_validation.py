"""Benchmark (not a test): the row-level comparison against the load it proves.

Builds (or reuses) a sandbox at ``--scale`` on the embedded server, migrates every phase into
a fresh Supabase-shaped target through the pipeline's step functions, timing each entity's
``load`` and ``verify`` (after-load comparison), then times ``verify_target`` (fresh
snapshot, transform, compare) for the whole target. Prints one line per entity and totals.

    .venv/bin/python scripts/bench_row_validation.py --scale 0.1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from include.entities import PHASES
from include.sandbox.generator import build_sandbox, media_complete, sandbox_exists
from migration_ops import local_env, pipeline, runs
from migration_ops.audit.verify import verify_target
from migration_ops.local_storage import LocalStorageServer, write_expected_objects
from migration_ops.settings import local_dir


def _timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def _migrate(legacy: str, target: str) -> tuple[float, float]:
    load_total = verify_total = 0.0
    print(f"{'entity':<32}{'rows':>10}{'load s':>9}{'verify s':>10}")
    for phase in PHASES:
        runs.apply_schema(target, phase)
        run = runs.begin_run(
            target, phase, f"bench-rv-{phase.number}", triggered_by="bench", params={}
        )
        pipeline.extract_step(legacy, target, run, phase.ordered())
        for entity in phase.ordered():
            pipeline.transform_step(target, run, entity)
            pipeline.validate_step(target, run, entity, limit=pipeline.QuarantineLimit(1.0))
            if entity.object_copy is not None:
                from migration_ops import storage

                pipeline.object_copy_step(
                    target,
                    run,
                    entity,
                    settings=storage.env_settings(entity.name),
                    limit=pipeline.QuarantineLimit(1.0),
                )
            loaded, t_load = _timed(pipeline.load_step, target, run, entity, legacy_dsn=legacy)
            compared, t_verify = _timed(pipeline.verify_step, target, run, entity)
            pipeline.checkpoint_step(target, run, entity)
            load_total += t_load
            verify_total += t_verify
            print(
                f"{entity.name:<32}{compared['compared_rows']:>10,}{t_load:>9.2f}{t_verify:>10.2f}"
            )
        runs.finish_run(target, run, phase)
    return load_total, verify_total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    socket_dir = local_env.start()
    legacy = local_env.ensure_database(socket_dir, f"bench_rv_legacy_{int(args.scale * 100)}")
    target = local_env.ensure_supabase_database(socket_dir, "bench_rv_target", recreate=True)
    media = local_dir() / "bench-media"
    if not sandbox_exists(legacy, args.scale, args.seed) or not media_complete(legacy, media):
        _, seconds = _timed(
            build_sandbox, legacy, scale=args.scale, seed=args.seed, media_dir=media
        )
        print(f"sandbox built in {seconds:.1f}s (scale {args.scale})")
    with tempfile.TemporaryDirectory() as tmp, LocalStorageServer(Path(tmp)) as server:
        listing = write_expected_objects(legacy, Path(tmp) / "expected.txt")
        os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"] = server.connection(
            media, expected_objects=listing
        )
        load_total, verify_total = _migrate(legacy, target)
    _, t_target = _timed(verify_target, legacy, target)
    print(
        f"\nload total {load_total:.1f}s; after-load comparison total {verify_total:.1f}s; "
        f"verify_target (fresh snapshot, transform, compare) {t_target:.1f}s"
    )


if __name__ == "__main__":
    main()
