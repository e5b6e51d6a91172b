"""Curated mutation check: does the test suite catch the bugs that matter?

The correctness of this project lives in SQL rule files and a few Python rules, which
line-level coverage cannot judge. ``tests/mutations.toml`` lists deliberate bugs (a file, the
exact text to find, its replacement, the fast tests expected to catch it). For each one this
script writes the bug into the file, runs the named tests (``pytest -x -q``), and puts the
file back byte for byte (and its modification time). A mutation is *killed* when the tests
fail; one that passes them is a *survivor*: a gap in the tests.

The work tree is left exactly as found, even when interrupted: the original is kept in
memory and on disk (``.local/mutate/``) with a journal naming it; ``finally`` and the
SIGINT/SIGTERM handlers restore it, and a run that was killed outright (SIGKILL, power loss)
is repaired from the journal by the next run before anything else happens.

Usage: ``make mutate`` or ``python scripts/mutate.py [--only ID ...] [--list FILE]``.
Exit status: 0 every mutation killed, 1 survivors or errors, 2 the list is invalid.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LIST = ROOT / "tests" / "mutations.toml"
STATE_DIR = ROOT / ".local" / "mutate"
JOURNAL = STATE_DIR / "journal.json"
#: pytest exit codes that mean "the tests ran and some failed"; others (no tests collected,
#: usage error, internal error) mean the mutation's test list itself is broken.
FAILED = 1


@dataclass(frozen=True)
class Mutation:
    """One deliberate bug and the tests that must catch it."""

    id: str
    path: str
    find: str
    replace: str
    tests: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Outcome:
    """What running one mutation's tests gave."""

    mutation: Mutation
    result: str  # killed | survived | timeout | error
    seconds: float
    detail: str = ""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: stop, restore, report."""


def load(list_path: Path) -> list[Mutation]:
    """Parse the list; every entry needs id, path, find, replace, tests and description."""
    data = tomllib.loads(list_path.read_text(encoding="utf-8"))
    mutations = []
    for entry in data.get("mutation", []):
        mutations.append(
            Mutation(
                id=entry["id"],
                path=entry["path"],
                find=entry["find"],
                replace=entry["replace"],
                tests=tuple(entry["tests"]),
                description=entry["description"],
            )
        )
    return mutations


def problems(mutations: list[Mutation]) -> list[str]:
    """Why the list cannot run as written (empty when it can).

    The text to find must occur exactly once, so each mutation changes one known place and
    the list fails loudly when the code it points at has moved.
    """
    found: list[str] = []
    ids = [m.id for m in mutations]
    found += [f"duplicate id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for m in mutations:
        path = ROOT / m.path
        if not path.is_file():
            found.append(f"{m.id}: {m.path} does not exist")
            continue
        count = path.read_text(encoding="utf-8").count(m.find)
        if count != 1:
            found.append(f"{m.id}: the text to find occurs {count} times in {m.path}, not once")
        if m.find == m.replace:
            found.append(f"{m.id}: replacement equals the text to find")
        if not m.tests:
            found.append(f"{m.id}: no tests named")
        for test in m.tests:
            file, _, name = test.partition("::")
            if not (ROOT / file).is_file():
                found.append(f"{m.id}: test file of {test} does not exist")
            elif name and f"def {name.split('[')[0]}(" not in (ROOT / file).read_text("utf-8"):
                found.append(f"{m.id}: no test {name} in {file}")
    return found


# ------------------------------------------------------------------------------ safety
def repair_leftover() -> str | None:
    """Restore a file a killed run left mutated (the journal names it); say which."""
    if not JOURNAL.exists():
        return None
    entry = json.loads(JOURNAL.read_text(encoding="utf-8"))
    target, backup = ROOT / entry["path"], Path(entry["backup"])
    target.write_bytes(backup.read_bytes())
    os.utime(target, ns=(entry["atime_ns"], entry["mtime_ns"]))
    backup.unlink()
    JOURNAL.unlink()
    return str(entry["path"])


def dirty(paths: set[str]) -> list[str]:
    """Files among ``paths`` that differ from git's HEAD (a mutation must start from HEAD)."""
    result = subprocess.run(
        ["git", "status", "--porcelain", "--", *sorted(paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line[3:] for line in result.stdout.splitlines()]


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while a file is being mutated or restored (no half writes)."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Mutated:
    """One file with one mutation applied, and everything needed to put it back."""

    def __init__(self, mutation: Mutation) -> None:
        self.path = ROOT / mutation.path
        self.mutation = mutation
        self.original = self.path.read_bytes()
        stat = self.path.stat()
        self.times = (stat.st_atime_ns, stat.st_mtime_ns)
        self.backup = STATE_DIR / f"{mutation.id}.orig"

    def apply(self) -> None:
        """Save the original (disk copy and journal first), then write the mutation."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.backup.write_bytes(self.original)
        JOURNAL.write_text(
            json.dumps(
                {
                    "path": self.mutation.path,
                    "backup": str(self.backup),
                    "atime_ns": self.times[0],
                    "mtime_ns": self.times[1],
                }
            ),
            encoding="utf-8",
        )
        text = self.original.decode("utf-8").replace(self.mutation.find, self.mutation.replace, 1)
        self.path.write_bytes(text.encode("utf-8"))

    def restore(self) -> None:
        """Put the original bytes and times back, check them, drop the disk copy and journal."""
        self.path.write_bytes(self.original)
        os.utime(self.path, ns=self.times)
        if self.path.read_bytes() != self.original:
            raise RuntimeError(f"{self.path} not restored; the original is in {self.backup}")
        self.backup.unlink(missing_ok=True)
        JOURNAL.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ running
def run_tests(tests: tuple[str, ...], timeout: float) -> tuple[int | None, str]:
    """Run ``pytest -x -q`` on the tests in its own process group; (exit code, why).

    No bytecode is written (a mutated module must not leave a stale ``.pyc`` behind) and no
    cache is kept. ``None`` as exit code means the timeout expired.
    """
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        return None, f"no result after {timeout:.0f}s"
    except BaseException:
        _stop(process)
        raise
    lines = [line for line in output.splitlines() if line.strip()]
    # pytest's short summary (-ra) says which test failed and why; else its last line.
    reasons = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return process.returncode, (reasons or lines or [""])[0][:200]


def _stop(process: subprocess.Popen[str]) -> None:
    """Terminate the test run's whole process group (pytest and any server it started)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def judge(mutation: Mutation, timeout: float) -> Outcome:
    """Apply one mutation, run its tests, restore the file."""
    started = time.monotonic()
    mutated = Mutated(mutation)
    try:
        with signals_blocked():
            mutated.apply()
        code, last = run_tests(mutation.tests, timeout)
    finally:
        with signals_blocked():
            mutated.restore()
    seconds = time.monotonic() - started
    if code is None:
        return Outcome(mutation, "timeout", seconds, last)
    if code == FAILED:
        return Outcome(mutation, "killed", seconds, last)
    if code == 0:
        return Outcome(mutation, "survived", seconds, last)
    return Outcome(mutation, "error", seconds, f"pytest exit {code}: {last}")


def baseline(mutations: list[Mutation], timeout: float) -> str | None:
    """Run every named test once unmutated: a mutation only counts against green tests."""
    tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests))
    code, last = run_tests(tests, timeout)
    return None if code == 0 else f"the named tests fail without any mutation: {last}"


def table(outcomes: list[Outcome]) -> str:
    """The results as a Markdown table, then the score."""
    rows = ["| mutation | file | result | seconds |", "|---|---|---|---:|"]
    for o in outcomes:
        result = o.result if o.result in ("killed", "timeout") else f"**{o.result.upper()}**"
        rows.append(f"| `{o.mutation.id}` | `{o.mutation.path}` | {result} | {o.seconds:.0f} |")
    killed = sum(o.result in ("killed", "timeout") for o in outcomes)
    score = 100 * killed / len(outcomes) if outcomes else 0.0
    rows.append("")
    rows.append(f"score: {killed}/{len(outcomes)} killed ({score:.0f} %)")
    return "\n".join(rows)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Check the list, repair leftovers, run the mutations, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST)
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutations")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutation")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument("--check", action="store_true", help="validate the list and stop")
    args = parser.parse_args(argv)

    repaired = repair_leftover()
    if repaired:
        print(f"restored {repaired}, left mutated by an interrupted run")
    mutations = load(args.list)
    if args.only:
        unknown = set(args.only) - {m.id for m in mutations}
        if unknown:
            print(f"unknown mutation ids: {sorted(unknown)}", file=sys.stderr)
            return 2
        mutations = [m for m in mutations if m.id in args.only]
    found = problems(mutations)
    changed = dirty({m.path for m in mutations})
    found += [f"{path} has uncommitted changes: commit or stash them first" for path in changed]
    if found:
        print("the mutation list cannot run:\n  " + "\n  ".join(found), file=sys.stderr)
        return 2
    if args.check:
        print(f"{len(mutations)} mutations, all applicable")
        return 0

    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    outcomes: list[Outcome] = []
    try:
        if not args.no_baseline:
            failure = baseline(mutations, args.timeout)
            if failure:
                print(failure, file=sys.stderr)
                return 1
        for number, mutation in enumerate(mutations, start=1):
            print(f"[{number}/{len(mutations)}] {mutation.id}: {mutation.description}", flush=True)
            outcome = judge(mutation, args.timeout)
            outcomes.append(outcome)
            print(f"    {outcome.result} in {outcome.seconds:.0f}s  {outcome.detail}", flush=True)
    except Interrupted as stop:
        print(f"\ninterrupted by {stop}: the work tree is restored", file=sys.stderr)
        print(table(outcomes))
        return 130
    print()
    print(table(outcomes))
    return 0 if all(o.result in ("killed", "timeout") for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
