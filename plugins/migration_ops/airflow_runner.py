"""``airflow dags test`` of one phase after another, without paying Airflow's start-up each time.

``make migrate`` runs every phase DAG with Airflow's own ``airflow dags test``. Started as a
new interpreter per phase, each run first imports Airflow, its CLI, the in-process execution
API, the DAG factory, Great Expectations and the report writer: several seconds per phase,
the same every time (``docs/performance.md``, "Fixed costs"). This module imports them once
in the ``migrate`` process and then, per DAG, forks a child that runs Airflow's CLI entry
point (``airflow.__main__.main``) with ``dags test <dag id> --dagfile-path <file>``: the
same code as the ``airflow`` executable, in a process of its own (own database sessions, own
log file, exit code as the executable's), only started warm. A failure in one phase cannot
leak into the next: each child's state dies with it.

Forking is used only where it is safe and available: a POSIX ``fork``, no other thread in
the parent (``make demo`` serves its Storage stand-in from a thread, so it starts the
executable instead), the preload succeeded, and ``MIGRATION_AIRFLOW_FORK`` is not ``0``.
Otherwise :func:`dags_test` starts the ``airflow`` executable as before.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: Imported once before the first fork: what every ``airflow dags test`` of a phase imports.
PRELOAD = (
    "airflow.cli.cli_parser",
    "airflow.cli.commands.dag_command",
    "airflow.dag_processing.dagbag",
    "airflow.serialization.serialized_objects",
    "airflow.api_fastapi.execution_api.app",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.providers.standard.operators.python",
    "include.entities",
    "migration_ops.dag_factory",
    "migration_ops.pipeline",
    "migration_ops.backup",
    "migration_ops.validate",
    "migration_ops.reports",
    "migration_ops.audit.report",
    "great_expectations",
)
#: Setting that turns the warm start off (``0``): every phase starts the executable.
FORK_SETTING = "MIGRATION_AIRFLOW_FORK"
#: Project root: the DAG files are ``dags/<dag id>.py`` under it.
ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _output_to(log_path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 to ``log_path`` for the block (what imports print goes there)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for descriptor in (fd, *saved):
            os.close(descriptor)


class Runner:
    """Runs ``airflow`` commands, warm (forked after one preload) where that is safe."""

    def __init__(self, executable: Path, preload_log: Path) -> None:
        """Args: executable: this environment's ``airflow``; preload_log: the preload's output."""
        self.executable = executable
        self.preload_log = preload_log
        self.warm = False

    def preload(self) -> bool:
        """Import :data:`PRELOAD` once; return whether later commands will be forked.

        Logging that Airflow configures on import is kept from this process's own output:
        the ``migrate`` command prints only its summaries. Each child switches it back on.
        """
        if os.environ.get(FORK_SETTING, "1") == "0" or not hasattr(os, "fork"):
            return False
        try:
            with _output_to(self.preload_log):
                for module in PRELOAD:
                    importlib.import_module(module)
                _warm_up()
        except Exception as error:  # noqa: BLE001 - any failure: start the executable instead
            log.warning("preloading Airflow failed (%s): every phase starts airflow anew", error)
            return False
        if threading.active_count() > 1:  # a fork copies only this thread: not safe then
            return False
        logging.disable(logging.INFO)
        self.warm = True
        return True

    def run(self, args: list[str], log_path: Path) -> int:
        """Run ``airflow <args>`` with its output in ``log_path``; return its exit code."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.warm or threading.active_count() > 1:
            with log_path.open("w", encoding="utf-8") as out:
                return subprocess.call(
                    [str(self.executable), *args], stdout=out, stderr=subprocess.STDOUT
                )
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller
            os._exit(_child(args, log_path))
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    def dags_test(self, dag_id: str, log_path: Path) -> int:
        """``airflow dags test <dag_id>``, parsing only the DAG's own file where there is one."""
        args = ["dags", "test", dag_id]
        dag_file = ROOT / "dags" / f"{dag_id}.py"
        if dag_file.is_file():
            args += ["--dagfile-path", str(dag_file)]
        return self.run(args, log_path)


def _warm_up() -> None:
    """Build once what the first task of every ``dags test`` builds.

    Airflow's plugins (this project's dashboard among them) and the in-process execution
    API's application (its routes and schemas; no thread, no connection: those start in the
    child on first use), and the ORM's mappers.
    """
    from airflow import plugins_manager
    from airflow.sdk.execution_time.supervisor import in_process_api_server
    from sqlalchemy.orm import configure_mappers

    plugins_manager.ensure_plugins_loaded()
    plugins_manager.get_operator_extra_links()
    _ = in_process_api_server().app
    configure_mappers()  # Airflow's ORM models, configured on first use otherwise


def _child(args: list[str], log_path: Path) -> int:
    """In the forked child: Airflow's CLI as the executable runs it; return its exit code."""
    code = 1
    try:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        logging.disable(logging.NOTSET)
        from airflow import settings

        if settings.engine is not None:  # connections of the parent's pool are not ours
            settings.engine.dispose(close=False)
        sys.argv = ["airflow", *args]
        # the fork still reads "python -m migration_ops.cli migrate" in ps and /proc: say
        # which phase it runs (operators, and the benchmark's memory per phase)
        import setproctitle

        setproctitle.setproctitle(" ".join(sys.argv))
        from airflow.__main__ import main

        main()
        code = 0
    except SystemExit as stop:
        if isinstance(stop.code, int) or stop.code is None:
            code = stop.code or 0
        else:  # e.g. "DagRun failed": printed, exit 1, as the interpreter does
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - report it in the log, as the executable would
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    return code
