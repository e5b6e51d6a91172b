"""Run a benchmark step in a forked child process and measure that process's peak memory.

Each entity's steps run in a child of their own, as each Airflow task runs in a process of
its own: the child's peak RSS is that entity's alone (a process's peak never goes down, so
one process running every entity could only report the largest), and whatever an entity
leaves in memory dies with its child instead of piling up in the bench. The child starts
as a copy of the bench (modules already imported, as in a warm task process), so its peak
includes those modules' resident pages.

A child that dies (killed by the kernel when memory runs out, say) fails the bench with its
exit code instead of hanging it.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_child(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``fn(*args)`` in a forked child; its return value and the child's peak RSS in MB.

    Raises:
        RuntimeError: the child raised (its traceback, which the steps keep value-free,
            is the message) or died without answering.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    sys.stdout.flush()
    sys.stderr.flush()
    child = context.Process(target=_run, args=(sender, fn, args))
    child.start()
    sender.close()
    try:
        ok, value, peak = receiver.recv()
    except EOFError:
        child.join()
        raise RuntimeError(f"{fn.__name__}: child died with exit code {child.exitcode}") from None
    child.join()
    if not ok:
        raise RuntimeError(f"{fn.__name__} failed in its child process:\n{value}")
    return value, peak


def _run(sender: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        answer = (True, fn(*args), peak_rss_mb())
    except Exception:
        answer = (False, traceback.format_exc(), peak_rss_mb())
    sender.send(answer)
    sender.close()
