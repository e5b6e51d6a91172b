"""Peak memory of each process below a running command, read from ``/proc`` while it runs.

Not ``ru_maxrss`` from ``wait4`` or ``RUSAGE_CHILDREN``: Linux carries a process's
high-water mark across ``exec``, so a command started by ``subprocess`` (vfork, then exec)
reports at least the peak of the Python process that started it (a ``sleep`` started by a
310 MB bench reports 310 MB). Instead, every ``interval`` seconds the sampler finds the
command's descendants (``/proc/<pid>/stat`` parent links) and keeps, per label, the largest
``VmHWM`` seen: the kernel's high-water mark of the process's own resident set, so a sample
loses only what a process gained in its last ``interval`` before exiting (and a process
that lived less than ``interval`` may be missed).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process still listed."""
    parents = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # the command name, field 2, is in parentheses and may hold spaces
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(root: int) -> set[int]:
    """Every pid whose chain of parents reaches ``root``."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def label(pid: int) -> str | None:
    """``airflow dags test <dag>``, ``airflow db migrate``, or the program's name."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    argv = [arg for arg in argv if arg]
    if len(argv) == 1:  # a title set with setproctitle: one string, words apart
        argv = argv[0].split()
    if not argv:
        return None
    for at, arg in enumerate(argv):
        if os.path.basename(arg) == "airflow" and at + 1 < len(argv):
            return " ".join(["airflow", *argv[at + 1 : at + 4]])
    if "-m" in argv[:-1]:
        return f"python -m {argv[argv.index('-m') + 1]}"
    return os.path.basename(argv[0])


def high_water_mb(pid: int) -> float | None:
    """``VmHWM`` of the process in MB (``None`` once it has exited)."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class PeakSampler:
    """Sample the descendants of ``root`` until :meth:`stop`; ``peaks`` maps label -> MB."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = root
        self.interval = interval
        self.peaks: dict[str, float] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> PeakSampler:
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stopped.set()
        self._thread.join()
        return self.peaks

    def _loop(self) -> None:
        while True:
            for pid in descendants(self.root) | {self.root}:
                name, peak = label(pid), high_water_mb(pid)
                if name is not None and peak is not None:
                    self.peaks[name] = max(self.peaks.get(name, 0.0), round(peak, 1))
            if self._stopped.wait(self.interval):
                return
