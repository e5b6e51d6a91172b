"""Command line of the sandbox builder.

``python -m include.sandbox --dsn DSN [--scale S] [--seed N] [--media-dir P] [--if-missing]``

Prints the row count of every legacy table and the elapsed time; never row contents.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from include.sandbox.generator import build_sandbox, media_complete, sandbox_exists


def main(argv: list[str] | None = None) -> int:
    """Build (or, with ``--if-missing``, reuse) the sandbox; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m include.sandbox", description=__doc__)
    parser.add_argument(
        "--dsn", required=True, help="libpq DSN/URI of the legacy database to (re)build"
    )
    parser.add_argument(
        "--scale", type=float, default=0.02, help="fraction of production volumes (default 0.02)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--media-dir", type=Path, help="write media files for ~2%% of dispatch_file rows here"
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when a sandbox with this scale and seed (and its media) already exists",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log per-table timings")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )

    if args.if_missing and sandbox_exists(args.dsn, args.scale, args.seed):
        if args.media_dir is None or media_complete(args.dsn, args.media_dir):
            print(f"sandbox (scale {args.scale}, seed {args.seed}) already built; nothing to do")
            return 0
    started = time.monotonic()
    counts = build_sandbox(args.dsn, scale=args.scale, seed=args.seed, media_dir=args.media_dir)
    elapsed = time.monotonic() - started
    width = max(len(table) for table in counts)
    for table, rows in counts.items():
        print(f"{table:<{width}}  {rows:>10,}")
    print(f"{'total':<{width}}  {sum(counts.values()):>10,}")
    print(f"built in {elapsed:.1f}s (scale {args.scale}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
