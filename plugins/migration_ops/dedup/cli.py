r"""``python -m migration_ops.cli dedup``: de-duplicate any CSV of person records.

    python -m migration_ops.cli dedup --input persons.csv --id-column ID \\
        --field first_name=GIVEN --field last_name=SURNAME --field birthdate=DOB \\
        --out clusters.csv [--truth-column ENTITY] [--link-threshold 0.99]

Writes ``record_id,cluster_id,match_probability``, one line per input record, and prints
how many records, pairs and clusters it found; with ``--truth-column`` (a column holding
the true entity id) also pairwise precision, recall and F1. Prints counts only, never a
value of the input.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from include.dedup import model as config


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``dedup`` subcommand on the project CLI's subparsers."""
    parser = sub.add_parser("dedup", help="de-duplicate a CSV of person records (Splink)")
    parser.add_argument("--input", required=True, type=Path, help="CSV, one record a line")
    parser.add_argument("--id-column", required=True, help="column with a unique record id")
    parser.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="ROLE=COLUMN",
        help=f"map a role onto a column; roles: {', '.join(config.ROLES)}",
    )
    parser.add_argument("--out", required=True, type=Path, help="clusters CSV to write")
    parser.add_argument("--truth-column", help="column with the true entity id: print P/R/F1")
    parser.add_argument("--link-threshold", type=float, default=config.DEFAULT_LINK_THRESHOLD)
    parser.add_argument("--review-threshold", type=float, default=config.DEFAULT_REVIEW_THRESHOLD)
    parser.add_argument("--pairs-out", type=Path, help="also write the scored pairs here")


def parse_fields(items: list[str]) -> dict[str, str]:
    """``["first_name=GIVEN", ...]`` → ``{"first_name": "GIVEN"}``.

    Raises:
        SystemExit: an item without ``=`` or a role given twice.
    """
    fields: dict[str, str] = {}
    for item in items:
        role, sep, column = item.partition("=")
        if not sep or not role or not column:
            raise SystemExit(f"--field expects ROLE=COLUMN, got {item!r}")
        if role in fields:
            raise SystemExit(f"role {role!r} mapped twice")
        fields[role.strip()] = column.strip()
    if not fields:
        raise SystemExit("map at least one role with --field ROLE=COLUMN")
    return fields


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; 0 on success, 2 on bad input."""
    from migration_ops.dedup.engine import Thresholds, deduplicate, pairs_within
    from migration_ops.dedup.metrics import pair_metrics

    fields = parse_fields(args.field)
    records = pd.read_csv(args.input, dtype=str, keep_default_na=False)
    started = time.perf_counter()
    try:
        result = deduplicate(
            records,
            fields,
            id_column=args.id_column,
            thresholds=Thresholds(link=args.link_threshold, review=args.review_threshold),
        )
    except ValueError as error:
        print(f"dedup: {error}")
        return 2
    seconds = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.clusters.to_csv(args.out, index=False)
    if args.pairs_out:
        result.pairs.to_csv(args.pairs_out, index=False)
    clusters = result.clusters["cluster_id"].nunique()
    linked = int((result.pairs["band"] == "link").sum())
    print(
        f"{len(records)} records, {linked} linked pairs, "
        f"{len(result.pairs) - linked} pairs to review, {clusters} clusters "
        f"(m by {result.training}), {seconds:.1f}s -> {args.out}"
    )
    if args.truth_column:
        if args.truth_column not in records.columns:
            print(f"dedup: no column {args.truth_column!r}")
            return 2
        truth = pairs_within(records[args.id_column], records[args.truth_column].replace("", None))
        print(pair_metrics(result.linked_pairs(), truth).line())
    return 0


def add_unlink_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``unlink`` subcommand: undo one linked patient cluster in the target."""
    parser = sub.add_parser("unlink", help="undo one linked patient cluster in the target")
    parser.add_argument(
        "--legacy-user-id", type=int, required=True, help="auth_user id of any cluster member"
    )
    parser.add_argument("--actor", default="cli", help="who unlinks (kept in the audit log)")
    parser.add_argument("--reason", default="", help="why (no patient data)")


def run_unlink(args: argparse.Namespace) -> int:
    """Unlink the cluster in the database of ``AIRFLOW_CONN_SUPABASE_DB``; print its ids."""
    from migration_ops.connections import env_dsn
    from migration_ops.dedup.step import unlink

    members = unlink(
        env_dsn("supabase_db"), args.legacy_user_id, actor=args.actor, reason=args.reason
    )
    if not members:
        print(f"legacy user {args.legacy_user_id} is not in a linked cluster: nothing to undo")
        return 1
    print(f"unlinked legacy users {members}; the next runs keep them apart")
    return 0
