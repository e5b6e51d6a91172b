"""pgloader (Debian's package) copying the bench's legacy tables, timed beside our data path.

The load file is generated from the tables the benchmarked entities read: pgloader copies
them whole (every column) from the legacy database into an empty scratch database with its
default settings, which create the tables, then indexes, primary and foreign keys, and reset
sequences. Nothing is transformed, validated or reconciled (see docs/performance.md).

Without a ``pgloader`` on the PATH the comparison is skipped with a message.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench_rss import PeakSampler

from migration_ops import local_env
from migration_ops.settings import LEGACY_SCHEMA, local_dir

#: SBCL's heap for pgloader, in MB (a runtime option of the pgloader binary). With the
#: Debian build's default of about 1 GB it died with "Heap exhausted" in 2 runs of 5 at
#: scale 1.0 on this 2-core machine; the heap it needs is not the time it takes, so the
#: comparison gives it room rather than recording a crash.
DYNAMIC_SPACE_MB = 4096
#: The scratch database pgloader loads into (dropped and created again on every run).
SCRATCH_DB = "bench_pgloader"
#: One table's line of pgloader's summary: name, errors, rows, bytes, seconds.
_TABLE_LINE = re.compile(
    r'^\s*"\w+"\."(?P<table>\w+)"\s+(?P<errors>\d+)\s+(?P<rows>\d+)\s.*\s(?P<seconds>[\d.]+)s\s*$'
)


def load_file(socket_dir: str, legacy_db: str, tables: Iterable[str]) -> str:
    """pgloader's command file: the named legacy tables into :data:`SCRATCH_DB`, defaults."""
    names = ", ".join(f"'{table}'" for table in sorted(set(tables)))
    return (
        "LOAD DATABASE\n"
        f"  FROM {_uri(socket_dir, legacy_db)}\n"
        f"  INTO {_uri(socket_dir, SCRATCH_DB)}\n"
        f"  INCLUDING ONLY TABLE NAMES MATCHING {names} IN SCHEMA '{LEGACY_SCHEMA}'\n"
        ";\n"
    )


def _uri(socket_dir: str, database: str) -> str:
    """pgloader's form of a Unix-socket connection (the embedded server listens on no port)."""
    return f"postgresql://{local_env.SUPERUSER}@unix:{socket_dir}:5432/{database}"


def run(socket_dir: str, legacy_db: str, tables: Iterable[str]) -> dict[str, Any]:
    """Time pgloader over ``tables``; its wall seconds, exit code, peak RSS and per-table lines.

    Returns ``{"skipped": reason}`` when pgloader is not installed.
    """
    binary = shutil.which("pgloader")
    if binary is None:
        return {"skipped": "pgloader is not installed (apt-get install pgloader)"}
    local_env.ensure_database(socket_dir, SCRATCH_DB, recreate=True)
    workdir = local_dir() / "bench-pgloader"
    workdir.mkdir(parents=True, exist_ok=True)
    command_file = workdir / "bench.load"
    command_file.write_text(load_file(socket_dir, legacy_db, tables), encoding="utf-8")
    output = workdir / "pgloader.out"
    with output.open("w", encoding="utf-8") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                binary,
                "--dynamic-space-size",
                str(DYNAMIC_SPACE_MB),
                "--root-dir",
                str(workdir),
                str(command_file),
            ],
            cwd=workdir,
            stdin=subprocess.DEVNULL,  # SBCL's debugger would wait on a terminal after a crash
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        sampler = PeakSampler(process.pid).start()
        code = process.wait()
        seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 3),
        "exit_code": code,
        "peak_rss_mb": sampler.stop().get("pgloader"),
        "tables": _summary_tables(output),
        "output": str(output),
    }


def _summary_tables(output: Path) -> dict[str, dict[str, float]]:
    """Per-table errors, rows and seconds from pgloader's summary (empty when it crashed)."""
    tables: dict[str, dict[str, float]] = {}
    for line in output.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _TABLE_LINE.match(line)
        if match:
            tables[match["table"]] = {
                "errors": int(match["errors"]),
                "rows": int(match["rows"]),
                "seconds": float(match["seconds"]),
            }
    return tables
