"""Run the linkage engine in a child process, so its memory ends with it.

Splink and DuckDB add about 90 MB to whatever process scores the pairs (their imports, the
DuckDB library and its buffers), and a task process keeps most of it after the step: glibc
keeps freed heap, and a loaded shared library is never unloaded. Under ``airflow dags test``
every task of a phase runs in one process that already holds Airflow and Great Expectations,
so phase 1 peaked at about 555 MB with the engine in process (issue 20's budget is 500 MB).
Scored here, in a fresh interpreter that imports only pandas, Splink and DuckDB, the task
process stays at its own size and the child's memory is returned when it exits.

The child is ``python -m migration_ops.dedup.child``, the parent's own interpreter, not a
``multiprocessing`` spawn: spawn re-imports the parent's ``__main__`` (Airflow's CLI, a
Celery worker), which costs seconds and memory; this costs about half a second.

The records and the result travel through the child's stdin and stdout as pickles between
two processes of this program (no file, nothing at rest). A failure in the child comes back
as the exception it raised, so the step's value-free error handling applies to it as to any
other; if the exception cannot be pickled, only its class name comes back. The child's
stderr is discarded: a library's traceback could quote a record.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import include
import migration_ops
from migration_ops.dedup.engine import DedupResult


class DedupChildError(RuntimeError):
    """The child ended without an answer (killed, or out of memory): its exit status only."""


def deduplicate(records: Any, fields: dict[str, str], **options: Any) -> DedupResult:
    """:func:`migration_ops.dedup.engine.deduplicate` with the same arguments, in a child."""
    request = pickle.dumps((records, fields, options), protocol=pickle.HIGHEST_PROTOCOL)
    done = subprocess.run(
        [sys.executable, "-m", __name__],
        input=request,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_child_environment(),
        check=False,
    )
    if done.returncode != 0 or not done.stdout:
        raise DedupChildError(f"the linkage process ended with exit status {done.returncode}")
    outcome, payload = pickle.loads(done.stdout)  # noqa: S301 - our own child's answer
    if outcome == "error":
        raise payload
    result: DedupResult = payload
    return result


def _child_environment() -> dict[str, str]:
    """This environment, with the folders this process imports the project from first.

    Airflow puts ``plugins/`` on ``sys.path`` itself, so ``PYTHONPATH`` may not name it.
    """
    roots = {str(Path(next(iter(package.__path__))).parent) for package in (include, migration_ops)}
    inherited = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*sorted(roots), inherited])}


def _answer(request: bytes) -> bytes:
    """The pickled outcome of one request: ``("ok", result)`` or ``("error", exception)``."""
    from migration_ops.dedup import engine

    records, fields, options = pickle.loads(request)  # noqa: S301 - our parent's request
    try:
        return pickle.dumps(("ok", engine.deduplicate(records, fields, **options)))
    except Exception as error:  # noqa: BLE001 - handed back to the parent to raise
        try:
            return pickle.dumps(("error", error))
        except Exception:  # noqa: BLE001 - an exception that will not pickle: its class only
            return pickle.dumps(("error", DedupChildError(type(error).__name__)))


if __name__ == "__main__":
    sys.stdout.buffer.write(_answer(sys.stdin.buffer.read()))
