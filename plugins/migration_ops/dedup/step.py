"""The de-duplication step of an entity with a :class:`~include.entities.spec.DedupSpec`.

Runs between transform and validate. It reads the candidate rows of
``staging.<entity>__transformed`` (for profiles: patients; the fields their spec names) into
the linkage engine, applies every human decision recorded so far (reviewers' ``link`` and
``distinct``, unlinks), clusters the linked pairs and records, in one transaction:

* ``migration.dedup_members``: this run's candidates, each with its cluster's survivor
  (itself when alone);
* ``migration.dedup_links``: the linked pairs with their scores and field agreement;
* ``migration.dedup_review``: the middle band, for a human;
* ``migration.dedup_inputs``: the fingerprint of the inputs it computed from (below).

The profiles themselves change only at load, by ``load/profiles__link_duplicates.sql``:
linked, not destroyed (``docs/decisions/0012-dedup-linked-not-destroyed.md``).

**Survivorship** (documented rule): the member with the most non-empty linkage fields, then
the most recent activity (the spec's ``activity`` expression), then the lowest legacy id.

**Unchanged inputs.** The outcome is a function of the candidates (ids, linkage fields,
activity), the human decisions, the thresholds and the model. The step first takes a
fingerprint of all of them (:func:`input_fingerprint`); when it equals the one remembered in
``migration.dedup_inputs``, the run copies that run's members instead of running Splink
(``dedup/inputs_reuse.sql``): a quiet night saves the scoring of every patient.

Nothing here logs or returns a value of a row: counts and ids only. The candidate fields do
travel into a DuckDB database in a child process (:mod:`.child`): that is the linkage engine.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, is_dataclass
from dataclasses import fields as dataclass_fields
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from include.dedup import model
from include.dedup.model import PATIENT_LINK_THRESHOLD, PATIENT_REVIEW_THRESHOLD
from include.entities.spec import DedupSpec, EntitySpec
from migration_ops.db import connect, qualified, read_sql, set_run_settings
from migration_ops.dedup import child, engine
from migration_ops.dedup.engine import DedupResult, Thresholds, cluster_ids
from migration_ops.settings import SQL_DIR

log = logging.getLogger(__name__)

#: The step's thresholds when the run gives none (DAG params ``dedup_*_threshold``).
PATIENT_THRESHOLDS = Thresholds(PATIENT_LINK_THRESHOLD, PATIENT_REVIEW_THRESHOLD)

#: The code that turns inputs into clusters besides the model's settings: the engine (its
#: comparison levels), this step (decisions, clusters) and the survivorship SQL. A deploy that
#: changes any of them makes the next run compute again instead of reusing.
METHOD_SOURCES = (Path(engine.__file__), Path(__file__), SQL_DIR / "dedup" / "record.sql")
#: Libraries whose upgrade may score differently.
METHOD_LIBRARIES = ("splink", "duckdb")


@dataclass(frozen=True)
class DedupOutcome:
    """Counts of one de-duplication step (what goes to XCom and the log)."""

    candidates: int
    linked_pairs: int
    review_pairs: int
    clusters: int
    linked_duplicates: int
    #: 1 when the inputs were unchanged and the clusters of the run that computed them were
    #: copied (Splink did not run); the counts are that run's.
    reused: int = 0

    def counts(self) -> dict[str, int]:
        """The counts without ``reused``: what the memo keeps for a later reuse."""
        return {
            "candidates": self.candidates,
            "linked_pairs": self.linked_pairs,
            "review_pairs": self.review_pairs,
            "clusters": self.clusters,
            "linked_duplicates": self.linked_duplicates,
        }

    def as_dict(self) -> dict[str, int]:
        """Plain dict for XCom."""
        return self.counts() | {"reused": self.reused}

    @classmethod
    def reused_from(cls, counts: dict[str, Any]) -> DedupOutcome:
        """The outcome of a run that reused another's clusters: that run's counts."""
        names = [f.name for f in dataclass_fields(cls) if f.name != "reused"]
        return cls(**{name: int(counts[name]) for name in names}, reused=1)


def _spec(entity: EntitySpec) -> DedupSpec:
    if entity.dedup is None:
        raise ValueError(f"entity {entity.name} has no de-duplication spec")
    return entity.dedup


def candidates(conn: Any, entity: EntitySpec) -> pd.DataFrame:
    """The candidates' legacy id and linkage fields, one column per role.

    The staged rows of this run, and the target's rows that are not staged: a run that
    stages only what changed (the nightly sync) still compares every new or changed
    patient with every patient already migrated, and links it into an existing cluster.
    In a full phase run every row is staged and the second part is (nearly) empty.
    """
    cursor = conn.execute(_candidates_query(entity))
    columns = [c.name for c in cursor.description]
    return pd.DataFrame(cursor.fetchall(), columns=columns)


def _candidates_query(entity: EntitySpec, *extra: tuple[str, str]) -> sql.Composed:
    """The query of :func:`candidates`, with ``extra`` ``(name, expression)`` columns.

    One composition for the rows Splink reads and for the rows the fingerprint hashes, so the
    two cannot drift apart.
    """
    spec = _spec(entity)
    fields = sql.SQL(", ").join(
        sql.SQL("({}) as {}").format(sql.SQL(expression), sql.Identifier(name))
        for name, expression in (*spec.fields, *extra)
    )
    return sql.SQL(
        "select {key} as legacy_id, {fields} from {staged} where {where} "
        "union all "
        "select {key}, {fields} from {target} as t where {key} is not null and ({where}) "
        "and not exists (select 1 from {staged} as s where s.{key} = t.{key}) "
        "order by legacy_id"
    ).format(
        key=sql.Identifier(entity.key),
        fields=fields,
        staged=qualified(entity.staging_table("transformed")),
        target=qualified(entity.target_table),
        where=sql.SQL(spec.candidates),
    )


def input_fingerprint(
    conn: Any, entity: EntitySpec, thresholds: Thresholds, method: str | None = None
) -> str:
    """sha256 of everything the step's outcome is a function of.

    The rows it reads, hashed set-based in SQL (``dedup/inputs_fingerprint.sql``: the
    candidates with their activity, the human decisions), the thresholds and ``method``
    (:func:`method_digest`, computed when not given). Equal fingerprints mean Splink would
    find the same clusters.
    """
    spec = _spec(entity)
    query = sql.SQL(read_sql("dedup/inputs_fingerprint.sql")).format(
        candidates=_candidates_query(entity, ("activity", spec.activity))
    )
    rows = conn.execute(query, {"entity": entity.name}).fetchone()
    payload = {
        "rows": [int(v) for v in rows],
        "thresholds": [thresholds.link, thresholds.review],
        "method": method or method_digest(spec),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def method_digest(spec: DedupSpec) -> str:
    """sha256 of how the inputs become clusters: the spec, the model, the code, the libraries.

    The model's settings are every upper-case name of :mod:`include.dedup.model` (roles,
    levels, priors, blocking and training rules, seed), in a canonical form: sets sorted, so
    the digest is the same in every process whatever its hash seed.
    """
    settings = {name: value for name, value in vars(model).items() if name.isupper()}
    described = {
        "spec": asdict(spec),
        "model": settings,
        "libraries": {name: version(name) for name in METHOD_LIBRARIES},
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=_canonical).encode())
    for path in METHOD_SOURCES:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _canonical(value: Any) -> Any:
    """JSON form of the model's non-JSON values (``json.dumps`` default)."""
    if isinstance(value, set | frozenset):
        return sorted(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"no canonical form for {type(value).__name__}")


def decisions(conn: Any, entity: EntitySpec) -> dict[tuple[int, int], str]:
    """Every human decision on the entity's pairs: ``(l, r) -> 'link' | 'distinct'``."""
    rows = conn.execute(
        "select legacy_id_l, legacy_id_r, decision from migration.dedup_decisions "
        "where entity = %s",
        (entity.name,),
    ).fetchall()
    return {(int(l_), int(r_)): str(d) for l_, r_, d in rows}


def apply_decisions(
    pairs: pd.DataFrame, decided: dict[tuple[int, int], str], candidate_ids: set[int]
) -> pd.DataFrame:
    """Scored pairs with human decisions applied: ``distinct`` dropped, ``link`` linked.

    A pair a reviewer linked that the model did not score (or scored below the review band)
    is added with no probability; one whose records are no longer candidates is ignored.
    """
    keys = list(zip(pairs["id_l"], pairs["id_r"], strict=True))
    kept = pairs[[decided.get(k) != "distinct" for k in keys]].copy()
    kept["linked_by"] = "model"
    linked = {k for k, d in decided.items() if d == "link" and set(k) <= candidate_ids}
    in_kept = set(zip(kept["id_l"], kept["id_r"], strict=True))
    mask = [k in linked for k in zip(kept["id_l"], kept["id_r"], strict=True)]
    kept.loc[mask, "band"] = "link"
    kept.loc[mask, "linked_by"] = "reviewer"
    extra = [
        {"id_l": a, "id_r": b, "band": "link", "linked_by": "reviewer"}
        for a, b in sorted(linked - in_kept)
    ]
    if extra:
        kept = pd.concat([kept, pd.DataFrame(extra)], ignore_index=True)
    return kept


def _agreement(row: Any, columns: list[str]) -> str:
    return json.dumps({c.removeprefix("agree_"): row[c] for c in columns}, sort_keys=True)


def _pair_rows(pairs: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Pairs as rows for the staging COPY: ids, band, scores, agreement json (no values)."""
    columns = [c for c in pairs.columns if c.startswith("agree_")]
    rows = []
    for _, row in pairs.iterrows():
        probability = row.get("match_probability")
        weight = row.get("match_weight")
        rows.append(
            (
                int(row["id_l"]),
                int(row["id_r"]),
                str(row["band"]),
                None if pd.isna(probability) else float(probability),
                None if pd.isna(weight) else float(weight),
                _agreement(row, columns) if not pd.isna(probability) else "{}",
                str(row.get("linked_by", "model")),
            )
        )
    return rows


def dedup_entity(
    target_dsn: str,
    entity: EntitySpec,
    run_id: str,
    thresholds: Thresholds = PATIENT_THRESHOLDS,
    *,
    stored_model: bool = False,
) -> DedupOutcome:
    """Score, cluster and record the entity's duplicates for this run (see the module doc).

    Inputs unchanged since the last computed run (same :func:`input_fingerprint`) copy that
    run's clusters instead: Splink would find the same ones. With ``stored_model`` (the
    nightly sync) the model the last full run estimated is applied when there is one for
    the same method (:func:`method_digest`); otherwise the run estimates it and keeps it.
    """
    name = f"migration:dedup:{entity.name}"
    method = method_digest(_spec(entity))  # reads the method's sources: once per step
    model: dict[str, Any] | None = None
    with connect(target_dsn, application_name=name) as conn:
        # one snapshot: the fingerprint describes exactly the rows then reused or read
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        fingerprint = input_fingerprint(conn, entity, thresholds, method)
        reused = _reuse(conn, entity, run_id, fingerprint)
        if reused is None:
            records = candidates(conn, entity)
            decided = decisions(conn, entity)
            model = _stored_model(conn, entity, method) if stored_model else None
    if reused is not None:
        reused_run_id, outcome = reused
        log.info(
            "[%s] de-duplication: inputs unchanged since run %s, its clusters reused (Splink "
            "not run): %s",
            entity.name,
            reused_run_id,
            outcome.as_dict(),
        )
        return outcome
    pairs, members, outcome, result = _cluster(entity, records, decided, thresholds, model)
    with connect(target_dsn, application_name=name) as conn:
        _record(conn, entity, run_id, _pair_rows(pairs), members)
        # the memo commits with the members it points at, or neither does
        _remember(conn, entity, run_id, fingerprint, outcome)
        if model is None and result.model:
            _keep_model(conn, entity, method, run_id, result.model, len(records))
    log.info(
        "[%s] de-duplication (%s model): %s",
        entity.name,
        "stored" if model is not None else "estimated",
        outcome.as_dict(),
    )
    return outcome


def _stored_model(conn: Any, entity: EntitySpec, method: str) -> dict[str, Any] | None:
    """The model the last full run estimated under ``method``, if any."""
    row = conn.execute(
        read_sql("dedup/model_read.sql"), {"entity": entity.name, "method": method}
    ).fetchone()
    return dict(row[0]) if row else None


def _keep_model(
    conn: Any,
    entity: EntitySpec,
    method: str,
    run_id: str,
    model: dict[str, Any],
    candidates_count: int,
) -> None:
    """Keep the model this run estimated, for the syncs to apply (``dedup/model_record.sql``)."""
    conn.execute(
        read_sql("dedup/model_record.sql"),
        {
            "entity": entity.name,
            "method": method,
            "model": json.dumps(model),
            "run_id": run_id,
            "candidates": candidates_count,
        },
    )


def _cluster(
    entity: EntitySpec,
    records: pd.DataFrame,
    decided: dict[tuple[int, int], str],
    thresholds: Thresholds,
    model: dict[str, Any] | None,
) -> tuple[pd.DataFrame, list[tuple[int, int]], DedupOutcome, DedupResult]:
    """Splink's pairs with the decisions applied, every candidate's cluster, the counts."""
    fields = {role: role for role, _ in _spec(entity).fields}
    # in a child process: the engine's memory (Splink, DuckDB) ends with it (dedup/child.py)
    result = child.deduplicate(
        records, fields, id_column="legacy_id", thresholds=thresholds, train=False, model=model
    )
    pairs = apply_decisions(result.pairs, decided, set(records["legacy_id"].astype(int)))
    linked = pairs[pairs["band"] == "link"]
    clusters = cluster_ids(
        list(records["legacy_id"]), zip(linked["id_l"], linked["id_r"], strict=True)
    )
    # every candidate is recorded (alone: its own survivor), so the load re-links exactly
    # the candidates of this run and leaves every other profile as it was
    members = [(int(i), int(c)) for i, c in clusters.items()]
    several = clusters_of(clusters)
    outcome = DedupOutcome(
        candidates=len(records),
        linked_pairs=len(linked),
        review_pairs=int((pairs["band"] == "review").sum()),
        clusters=len(several),
        linked_duplicates=sum(1 for i, c in members if c in several and i != c),
    )
    return pairs, members, outcome, result


def _reuse(
    conn: Any, entity: EntitySpec, run_id: str, fingerprint: str
) -> tuple[str, DedupOutcome] | None:
    """Copy the clusters of the run the memo names when its fingerprint is this one.

    Returns that run and its outcome marked ``reused``, or ``None`` (nothing written) when
    the inputs differ, nothing was remembered yet or that run's members are gone.
    """
    memo = conn.execute(
        read_sql("dedup/inputs_match.sql"), {"entity": entity.name, "fingerprint": fingerprint}
    ).fetchone()
    if memo is None:
        return None
    reused_run_id, counts = str(memo[0]), memo[1]
    set_run_settings(
        conn, {"run_id": run_id, "entity": entity.name, "dedup_reused_run_id": reused_run_id}
    )
    conn.execute(read_sql("dedup/inputs_reuse.sql"))
    return reused_run_id, DedupOutcome.reused_from(counts)


def _remember(
    conn: Any, entity: EntitySpec, run_id: str, fingerprint: str, outcome: DedupOutcome
) -> None:
    """Record the inputs' fingerprint, the run and its counts (``dedup/inputs_record.sql``)."""
    conn.execute(
        read_sql("dedup/inputs_record.sql"),
        {
            "entity": entity.name,
            "fingerprint": fingerprint,
            "run_id": run_id,
            "outcome": json.dumps(outcome.counts()),
        },
    )


def clusters_of(clusters: dict[Any, Any]) -> set[Any]:
    """Cluster ids with two or more members."""
    sizes: dict[Any, int] = {}
    for cluster in clusters.values():
        sizes[cluster] = sizes.get(cluster, 0) + 1
    return {c for c, n in sizes.items() if n > 1}


def _record(
    conn: Any,
    entity: EntitySpec,
    run_id: str,
    pairs: list[tuple[Any, ...]],
    members: list[tuple[int, int]],
) -> None:
    """Stage pairs and cluster members, then record them set-based (one transaction)."""
    conn.execute(
        "create temporary table dedup_pairs (id_l bigint, id_r bigint, band text, "
        "match_probability double precision, match_weight double precision, agreement jsonb, "
        "linked_by text) on commit drop"
    )
    conn.execute(
        "create temporary table dedup_clusters (legacy_id bigint, cluster_id bigint) on commit drop"
    )
    with conn.cursor().copy("copy dedup_pairs from stdin") as copy:
        for row in pairs:
            copy.write_row(row)
    with conn.cursor().copy("copy dedup_clusters from stdin") as copy:
        for row in members:
            copy.write_row(row)
    spec = _spec(entity)
    completeness = sql.SQL(" + ").join(
        sql.SQL("(({}) is not null)::int").format(sql.SQL(expression))
        for _, expression in spec.fields
    )
    statement = sql.SQL(read_sql("dedup/record.sql")).format(
        transformed=qualified(entity.staging_table("transformed")),
        target=qualified(entity.target_table),
        key=sql.Identifier(entity.key),
        completeness=completeness,
        activity=sql.SQL(spec.activity),
    )
    conn.execute("select set_config('migration.run_id', %s, true)", (run_id,))
    conn.execute("select set_config('migration.entity', %s, true)", (entity.name,))
    conn.execute(statement)


def unlink(
    target_dsn: str,
    legacy_id: int,
    *,
    actor: str,
    reason: str = "",
    entity: EntitySpec | None = None,
) -> list[int]:
    """Undo the linked cluster that legacy id ``legacy_id`` belongs to; return its members.

    Every pair of the cluster is recorded as ``distinct`` in ``migration.dedup_decisions``
    (so no later run links them again), the profiles' links are cleared, the pairs in
    ``migration.dedup_links`` get ``unlinked_at`` and ``migration.audit_log`` says who did
    it. Earlier runs' reconciliation stays as it was (history); the next run counts the
    unlinked profiles as loaded. An id in no cluster changes nothing and returns ``[]``.
    """
    from include.entities.phase1_core import PROFILES

    entity = entity or PROFILES
    table = qualified(entity.target_table)
    with connect(target_dsn, application_name=f"migration:unlink:{entity.name}") as conn:
        members = [
            int(r[0])
            for r in conn.execute(
                sql.SQL(
                    "with anchor as (select coalesce(merged_into_legacy_user_id, {key}) as root "
                    "from {table} where {key} = %s) "
                    "select p.{key} from {table} as p, anchor "
                    "where p.{key} = anchor.root or p.merged_into_legacy_user_id = anchor.root "
                    "order by 1"
                ).format(key=sql.Identifier(entity.key), table=table),
                (legacy_id,),
            ).fetchall()
        ]
        if len(members) < 2:
            return []
        _record_unlink(conn, entity, members, actor=actor, reason=reason)
    log.info("[%s] unlinked cluster of %d profiles", entity.name, len(members))
    return members


def _record_unlink(
    conn: Any, entity: EntitySpec, members: list[int], *, actor: str, reason: str
) -> None:
    pairs = [(a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
    conn.cursor().executemany(
        "insert into migration.dedup_decisions "
        "(entity, legacy_id_l, legacy_id_r, decision, decided_by, reason) "
        "values (%s, %s, %s, 'distinct', %s, %s) "
        "on conflict (entity, legacy_id_l, legacy_id_r) do update set decision = 'distinct', "
        "decided_by = excluded.decided_by, reason = excluded.reason, decided_at = now()",
        [(entity.name, a, b, actor, reason) for a, b in pairs],
    )
    conn.execute(
        "update migration.dedup_links set unlinked_at = now() "
        "where entity = %s and legacy_id_l = any(%s) and legacy_id_r = any(%s) "
        "and unlinked_at is null",
        (entity.name, members, members),
    )
    conn.execute(
        sql.SQL(
            "update {table} set merged_into = null, merged_into_legacy_user_id = null "
            "where {key} = any(%s) and (merged_into is not null "
            "or merged_into_legacy_user_id is not null)"
        ).format(table=qualified(entity.target_table), key=sql.Identifier(entity.key)),
        (members,),
    )
    conn.execute(
        "insert into migration.audit_log (actor, action, phase, params) "
        "values (%s, 'dedup_unlink', %s, %s)",
        (actor, entity.phase, json.dumps({"entity": entity.name, "legacy_ids": members})),
    )
