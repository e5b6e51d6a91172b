"""Phase 5 end to end: phases 1-4 migrated, then phase 5 with the hashing provider, on a
Supabase-shaped target as the non-superuser role: queue, vectors, triggers, search, RLS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg import sql

from include.entities import get_phase
from migration_ops import local_env, runs
from migration_ops.ai import embed_queue as queue
from migration_ops.ai import search
from migration_ops.ai.providers import HashingProvider
from migration_ops.db import connect
from migration_ops.local_dify import LocalDifyServer
from migration_ops.local_storage import LocalStorageServer
from migration_ops.runs import RunContext
from tests.e2e.conftest import copy_of_sandbox, run_phase

pytestmark = pytest.mark.e2e
PHASE_5 = get_phase(5)
PARENTS = {
    "profiles": "public.profiles",
    "orders": "public.orders",
    "messages": "public.messages",
    "projects": "public.projects",
}


@dataclass(frozen=True)
class Migrated:
    legacy: str
    target: str
    run: RunContext


@pytest.fixture(scope="module")
def migrated(
    sandbox_dsn: str,
    pg_socket: str,
    supabase_storage: LocalStorageServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Migrated]:
    """Phases 1-5 on a private copy of the sandbox (the sync tests change legacy rows)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MIGRATION_BACKUP_DIR", str(tmp_path_factory.mktemp("p5-backups")))
    legacy = copy_of_sandbox(pg_socket, "e2e_phase5_legacy")
    target = local_env.ensure_supabase_database(pg_socket, "e2e_phase5_target", recreate=True)
    for number in (1, 2, 3, 4):
        run_phase(legacy, target, get_phase(number), f"p5-phase{number}")
    yield Migrated(legacy, target, run_phase(legacy, target, PHASE_5, "p5-first"))
    patch.undo()


@pytest.fixture(scope="module")
def dify_server() -> Iterator[LocalDifyServer]:
    """One local Dify server for the module: every document phase 5 makes stays visible."""
    with LocalDifyServer(polls_to_complete=1) as server:
        yield server


def _documents(server: LocalDifyServer, entity: str) -> list[str]:
    """Names of the entity's documents the local Dify server holds."""
    return sorted(
        d["name"] for d in server.state.documents.values() if d["name"].startswith(f"{entity}:")
    )


def _rows(dsn: str, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _one(dsn: str, query: Any, params: Any = None) -> Any:
    return _rows(dsn, query, params)[0][0]


def test_every_target_row_is_queued_and_embedded_once(migrated: Migrated) -> None:
    recon = {
        r[0]: r[1:]
        for r in _rows(
            migrated.target,
            "select entity, source_rows, loaded_rows, quarantined_rows "
            "from migration.reconciliation where run_id = %s",
            (migrated.run.run_id,),
        )
    }
    assert runs.latest_run_status(migrated.target, 5) == "validated"
    for entity, parent in PARENTS.items():
        in_target = _one(migrated.target, f"select count(*) from {parent}")
        assert recon[f"embed_{entity}"] == (in_target, in_target, 0), entity
        statuses = dict(
            _rows(
                migrated.target,
                "select status, count(*) from migration.embedding_queue where entity = %s group by 1",
                (entity,),
            )
        )
        assert statuses == {"done": in_target}, entity
        with_text = _one(
            migrated.target,
            f"select count(*) from {parent} as p where migration.embedding_text(p) is not null",
        )
        vectors = PHASE_5_VECTORS[entity]
        embedded = _one(migrated.target, f"select count(distinct row_id) from {vectors}")
        assert embedded == with_text, entity


PHASE_5_VECTORS = {
    e.embedding.queue_entity: e.embedding.vectors_table for e in PHASE_5.entities if e.embedding
}


def test_a_rerun_queues_and_embeds_nothing(migrated: Migrated) -> None:
    run = run_phase(migrated.legacy, migrated.target, PHASE_5, "p5-rerun")
    loaded = _rows(
        migrated.target,
        "select entity, inserted_rows, updated_rows from migration.checkpoints "
        "where run_id = %s order by entity",
        (run.run_id,),
    )
    assert loaded == [(f"embed_{e}", 0, 0) for e in sorted(PARENTS)]
    assert (
        _one(
            migrated.target,
            "select count(*) from migration.embedding_queue where updated_at > "
            "(select started_at from migration.runs where run_id = %s)",
            (run.run_id,),
        )
        == 0
    )


def _message(target: str, legacy_record_id: int) -> tuple[Any, str]:
    return _rows(
        target,
        "select id, content from public.messages where legacy_record_id = %s",
        (legacy_record_id,),
    )[0]


def test_a_changed_text_is_requeued_by_the_trigger_and_chunked(migrated: Migrated) -> None:
    from migration_ops.ai import text as texts

    row_id, _ = _message(migrated.target, 7)
    long_text = " ".join(f"aligner{n} stage{n % 13}" for n in range(400))  # 7,179 characters
    with connect(migrated.target) as conn:
        conn.execute("update public.messages set content = %s where id = %s", (long_text, row_id))
    queued = _rows(
        migrated.target,
        "select status, content_hash, attempts from migration.embedding_queue "
        "where entity = 'messages' and row_id = %s",
        (row_id,),
    )
    assert queued == [("pending", texts.content_hash(long_text), 0)]
    assert (
        _one(
            migrated.target,
            "select count(*) from migration.embedding_queue where status = 'pending'",
        )
        == 1
    ), "only the changed row"
    stats = queue.process_queue(migrated.target, EMBEDDINGS["messages"], HashingProvider())
    assert (stats.embedded_rows, stats.chunks, stats.batches) == (1, 5, 1)
    assert [len(c) for c in texts.chunks(long_text)] == [1995, 1993, 1997, 1994, 799]
    assert _rows(
        migrated.target,
        "select chunk_no from public.message_embeddings where row_id = %s order by 1",
        (row_id,),
    ) == [(0,), (1,), (2,), (3,), (4,)]


def _unique_message(target: str) -> tuple[int, str]:
    """The first message whose text no other message has (the sandbox repeats templates)."""
    return _rows(
        target,
        "select min(legacy_record_id), content from public.messages where content is not null "
        "and legacy_record_id is not null group by content having count(*) = 1 order by 1 limit 1",
    )[0]


def test_search_finds_the_message(migrated: Migrated) -> None:
    legacy_id, content = _unique_message(migrated.target)
    hits = search.search(migrated.target, "messages", content, HashingProvider(), k=5)
    assert len(hits) == 5
    assert hits[0].legacy_id == legacy_id and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert all(h.similarity < 0.999 for h in hits[1:]), "one exact match only"
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)


STAFF_TYPES = "('technician', 'master', 'admin', 'sales_person', 'support_agent')"


def _as_caller(conn: Any, role: str, sub: str | None, vector: str) -> list[Any]:
    """match_messages as PostgREST calls it: the API role, the JWT's claims in the setting."""
    conn.execute("reset role")
    claims = json.dumps({"sub": sub, "role": role}) if sub else ""
    conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
    rows = conn.execute(
        "select id from public.match_messages(%s::vector(1024), -1.0, 200)", (vector,)
    ).fetchall()
    return [r[0] for r in rows]


def test_match_function_respects_rls_by_jwt_claims(migrated: Migrated) -> None:
    """Staff see what service_role sees; a doctor only their patients' and orders' messages."""
    staff_uid, doctor_uid, stranger_uid = (str(uuid.uuid4()) for _ in range(3))
    with connect(migrated.target) as conn:
        queue.use_vector(conn)
        staff = conn.execute(
            f"select min(id::text)::uuid from public.profiles where is_active "
            f"and profile_type in {STAFF_TYPES}"
        ).fetchone()[0]
        doctor, message, content = conn.execute(
            "select p.patient_doctor_id, min(m.id::text)::uuid, m.content "
            "from public.messages as m join public.profiles as p on p.id = m.patient_id "
            "where p.patient_doctor_id is not null and m.content is not null "
            "group by p.patient_doctor_id, m.content "
            "having count(*) = 1 and (select count(*) from public.messages as o "
            "where o.content = m.content) = 1 order by 2 limit 1"
        ).fetchone()
        conn.execute(
            "update public.profiles set auth_user_id = %s where id = %s", (staff_uid, staff)
        )
        conn.execute(
            "update public.profiles set auth_user_id = %s where id = %s", (doctor_uid, doctor)
        )
        visible = {
            r[0]
            for r in conn.execute(
                "select m.id from public.messages as m "
                "left join public.profiles as p on p.id = m.patient_id "
                "left join public.orders as o on o.id = m.order_id "
                "where %(d)s in (m.author_id, m.recipient_id, p.patient_doctor_id, o.doctor_id) "
                "or (m.patient_id = %(d)s and m.is_public is not false)",
                {"d": doctor},
            ).fetchall()
        }
        vector = queue.vector_literal(HashingProvider().embed([content])[0])
        seen = {
            "service_role": _as_caller(conn, "service_role", None, vector),
            "staff": _as_caller(conn, "authenticated", staff_uid, vector),
            "doctor": _as_caller(conn, "authenticated", doctor_uid, vector),
            "stranger": _as_caller(conn, "authenticated", stranger_uid, vector),
            "anonymous JWT": _as_caller(conn, "authenticated", None, vector),
        }
        conn.rollback()  # the auth ids were set for this test only
    assert len(seen["service_role"]) == 200 and seen["staff"] == seen["service_role"]
    assert seen["doctor"][0] == message and set(seen["doctor"]) <= visible
    hidden = set(seen["service_role"]) - visible
    assert hidden and not hidden & set(seen["doctor"]), "what the doctor may not see is left out"
    assert seen["stranger"] == seen["anonymous JWT"] == []


def test_a_throttled_row_is_dead_lettered_after_three_attempts(
    migrated: Migrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_ops.ai.providers import BedrockTitanProvider
    from migration_ops.local_bedrock import LocalBedrockServer

    row_id, _ = _message(migrated.target, 9)
    with connect(migrated.target) as conn:
        conn.execute(
            "update public.messages set content = 'THROTTLE-ME please' where id = %s", (row_id,)
        )
    with LocalBedrockServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_BEDROCK", server.connection())
        server.throttle(marker="THROTTLE-ME")
        stats = queue.process_queue(
            migrated.target,
            EMBEDDINGS["messages"],
            BedrockTitanProvider.from_connection(),
            backoff_seconds=0.05,
        )
    assert server.calls == {"throttled": 9}, "3 queue attempts x 3 botocore calls"
    assert (stats.failed_attempts, stats.dead_rows, stats.embedded_rows) == (3, 1, 0)
    assert _rows(
        migrated.target,
        "select status, attempts, last_error_class from migration.embedding_queue "
        "where entity = 'messages' and row_id = %s",
        (row_id,),
    ) == [("dead", 3, "ThrottlingException")]


EMBEDDINGS = {e.embedding.queue_entity: e.embedding for e in PHASE_5.entities if e.embedding}


KILLED_WORKER = """
import sys, time
from include.entities import get_phase
from migration_ops.ai import embed_queue as queue
from migration_ops.ai.providers import HashingProvider

class Slow(HashingProvider):
    def embed(self, texts):
        time.sleep(0.01 * len(texts))
        return super().embed(texts)

spec = {e.name: e.embedding for e in get_phase(5).entities}["embed_messages"]
queue.process_queue(sys.argv[1], spec, Slow(), batch_size=40, workers=2)
"""


def _vector_counts(target: str) -> tuple[int, int, int]:
    """(vector rows, vector rows of done queue rows, vector rows of pending queue rows)."""
    return _rows(
        target,
        "select count(*), count(*) filter (where q.status = 'done'), "
        "count(*) filter (where q.status = 'pending') from public.message_embeddings as v "
        "join migration.embedding_queue as q on q.entity = 'messages' and q.row_id = v.row_id",
    )[0]


def _expected_chunks(target: str, status: str | None = None) -> int:
    from migration_ops.ai import text as texts

    rows = _rows(
        target,
        "select migration.embedding_text(m) from public.messages as m "
        "join migration.embedding_queue as q on q.entity = 'messages' and q.row_id = m.id "
        "where %s::text is null or q.status = %s",
        (status, status),
    )
    return sum(len(texts.chunks(text)) for (text,) in rows)


def test_a_killed_queue_worker_loses_and_duplicates_nothing(migrated: Migrated) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    with connect(migrated.target) as conn:
        conn.execute("delete from public.message_embeddings")
        conn.execute(
            "update migration.embedding_queue set status = 'pending', attempts = 0, "
            "next_attempt_at = now(), embedded_hash = null where entity = 'messages'"
        )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    worker = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, migrated.target], env=env)
    done = 0
    deadline = time.monotonic() + 60
    while done < 80 and time.monotonic() < deadline:
        time.sleep(0.05)
        done = _one(
            migrated.target,
            "select count(*) from migration.embedding_queue "
            "where entity = 'messages' and status = 'done'",
        )
    time.sleep(0.2)  # inside a later batch
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    done = _one(
        migrated.target,
        "select count(*) from migration.embedding_queue "
        "where entity = 'messages' and status = 'done'",
    )
    assert done % 40 == 0 and 80 <= done < 855, "whole batches only"
    total, of_done, of_pending = _vector_counts(migrated.target)
    assert of_pending == 0 and total == of_done == _expected_chunks(migrated.target, "done")

    stats = queue.process_queue(migrated.target, EMBEDDINGS["messages"], HashingProvider())
    assert stats.embedded_rows == 855 - done and stats.dead_rows == 0
    assert _rows(
        migrated.target,
        "select status, count(*) from migration.embedding_queue "
        "where entity = 'messages' group by 1",
    ) == [("done", 855)]
    total, of_done, _ = _vector_counts(migrated.target)
    assert total == of_done == _expected_chunks(migrated.target) == 859
    assert (
        _one(migrated.target, "select count(distinct row_id) from public.message_embeddings") == 855
    )


def test_dify_documents_follow_the_rows(migrated: Migrated, dify_server: LocalDifyServer) -> None:
    from migration_ops.ai import dify_sync
    from migration_ops.ai.dify import DifyKnowledgeClient, KnowledgeSettings

    spec = EMBEDDINGS["profiles"]
    profiles = _one(migrated.target, "select count(*) from public.profiles")
    server = dify_server
    client = DifyKnowledgeClient(server.url, "dataset-local-key", sleep=lambda _: None)
    first = dify_sync.sync_entity(migrated.target, spec, client, KnowledgeSettings())
    assert (first.created, first.updated, first.deleted, first.indexed) == (
        profiles,
        0,
        0,
        profiles,
    )
    posts = server.state.requests["POST"]
    again = dify_sync.sync_entity(migrated.target, spec, client, KnowledgeSettings())
    assert vars(again) == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "indexed": 0,
        "indexing_errors": 0,
    }
    assert server.state.requests["POST"] == posts, "a rerun creates nothing"

    row_id, legacy_user_id = _rows(
        migrated.target,
        "select id, legacy_user_id from public.profiles order by legacy_user_id limit 1",
    )[0]
    with connect(migrated.target) as conn:
        conn.execute("update public.profiles set first_name = 'Renamed' where id = %s", (row_id,))
        conn.execute(
            "insert into public.profiles (legacy_user_id, username, first_name) "
            "values (990001, 'app.user', 'Transient')"
        )
    changed = dify_sync.sync_entity(migrated.target, spec, client, KnowledgeSettings())
    assert (changed.created, changed.updated, changed.deleted) == (1, 1, 0)
    document = _one(
        migrated.target,
        "select document_id from migration.dify_documents "
        "where entity = 'profiles' and legacy_id = %s",
        (legacy_user_id,),
    )
    assert "Renamed" in server.state.documents[document]["text"]
    with connect(migrated.target) as conn:
        conn.execute("delete from public.profiles where legacy_user_id = 990001")
    removed = dify_sync.sync_entity(migrated.target, spec, client, KnowledgeSettings())
    assert (removed.created, removed.updated, removed.deleted) == (0, 0, 1)
    assert len(_documents(server, "profiles")) == len(server.state.documents) == profiles
    assert _one(migrated.target, "select count(*) from migration.dify_documents") == profiles
    assert server.violations == []


def _sync(migrated: Migrated, run_id: str) -> None:
    """One nightly sync of the legacy copy (as tests/e2e/test_sync.py runs it)."""
    from include.entities import SYNC

    runs.check_gate(migrated.target, SYNC)
    run_phase(migrated.legacy, migrated.target, SYNC, run_id)


NEW_NOTES = "Sync changed: rescan the lower arch before stage twelve"


def test_a_synced_change_is_embedded_and_a_legacy_removal_leaves_phase_5(
    migrated: Migrated, dify_server: LocalDifyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync's Asset schedules phase 5 (tests/dags): here its run after a real sync.

    An order whose notes changed in legacy is queued by the trigger during the sync and
    re-embedded (new content hash) by phase 5; a plan comment deleted in legacy is marked
    legacy_removed_at by the sync, and phase 5 then deletes its vectors, its queue row and its
    Dify document, and search no longer returns it.
    """
    from migration_ops.ai import text as texts

    monkeypatch.setenv("AIRFLOW_CONN_DIFY_KNOWLEDGE", dify_server.connection())
    run_phase(migrated.legacy, migrated.target, PHASE_5, "p5-dify-all")
    comment_id = _one(migrated.legacy, "select min(id) from dispatch_comment")
    message_id, content = _rows(
        migrated.target,
        "select id, content from public.messages where legacy_comment_id = %s",
        (comment_id,),
    )[0]
    order_legacy_id = _one(migrated.target, "select min(legacy_instruction_id) from public.orders")
    order_id, old_hash = _rows(
        migrated.target,
        "select q.row_id, q.content_hash from migration.embedding_queue as q "
        "join public.orders as o on o.id = q.row_id where o.legacy_instruction_id = %s",
        (order_legacy_id,),
    )[0]
    assert f"messages:{-comment_id}" in _documents(dify_server, "messages")
    assert _one(
        migrated.target,
        "select count(*) from public.message_embeddings where row_id = %s",
        (message_id,),
    ) == len(texts.chunks(content))
    with connect(migrated.legacy) as conn:
        conn.execute(
            "update dispatch_instruction set notes = %s, updated_at = now() where id = %s",
            (NEW_NOTES, order_legacy_id),
        )
        conn.execute("delete from dispatch_comment where id = %s", (comment_id,))
    _sync(migrated, "p5-sync-1")

    new_text = _one(
        migrated.target,
        "select migration.embedding_text(o) from public.orders as o where id = %s",
        (order_id,),
    )
    new_hash = texts.content_hash(new_text)
    assert NEW_NOTES in new_text and new_hash != old_hash
    queue_row = "select status, content_hash, embedded_hash from migration.embedding_queue "
    queue_row += "where entity = %s and row_id = %s"
    assert _rows(migrated.target, queue_row, ("orders", order_id)) == [
        ("pending", new_hash, old_hash)
    ], "queued by the trigger during the sync"
    assert _one(
        migrated.target,
        "select legacy_removed_at is not null from public.messages where id = %s",
        (message_id,),
    )

    after = run_phase(migrated.legacy, migrated.target, PHASE_5, "p5-after-sync-1")
    assert _rows(migrated.target, queue_row, ("orders", order_id)) == [("done", new_hash, new_hash)]
    assert _rows(
        migrated.target,
        "select distinct content_hash from public.order_embeddings where row_id = %s",
        (order_id,),
    ) == [(new_hash,)]
    order_document = _one(
        migrated.target,
        "select document_id from migration.dify_documents "
        "where entity = 'orders' and legacy_id = %s",
        (order_legacy_id,),
    )
    assert NEW_NOTES in dify_server.state.documents[order_document]["text"]

    assert _rows(migrated.target, queue_row, ("messages", message_id)) == []
    assert (
        _one(
            migrated.target,
            "select count(*) from public.message_embeddings where row_id = %s",
            (message_id,),
        )
        == 0
    )
    assert f"messages:{-comment_id}" not in _documents(dify_server, "messages")
    assert (
        _one(
            migrated.target,
            "select count(*) from migration.dify_documents where entity = 'messages' "
            "and legacy_id = %s",
            (-comment_id,),
        )
        == 0
    )
    hits = search.search(migrated.target, "messages", content, HashingProvider(), k=200)
    assert -comment_id not in [h.legacy_id for h in hits] and len(hits) == 200
    live = _one(
        migrated.target, "select count(*) from public.messages where legacy_removed_at is null"
    )
    assert (
        _one(
            migrated.target,
            "select source_rows from migration.reconciliation where run_id = %s "
            "and entity = 'embed_messages'",
            (after.run_id,),
        )
        == live
        == 854
    )
    assert dify_server.violations == []


def _everything_synced_to_dify(migrated: Migrated, server: LocalDifyServer) -> dict[str, int]:
    """Every phase 5 entity's rows as Dify documents on the local server; counts by entity."""
    from migration_ops.ai import dify_sync
    from migration_ops.ai.dify import DifyKnowledgeClient, KnowledgeSettings

    client = DifyKnowledgeClient(server.url, "dataset-local-key", sleep=lambda _: None)
    for spec in EMBEDDINGS.values():
        dify_sync.sync_entity(migrated.target, spec, client, KnowledgeSettings())
    held = {entity: len(_documents(server, entity)) for entity in EMBEDDINGS}
    mapped = dict(
        _rows(migrated.target, "select entity, count(*) from migration.dify_documents group by 1")
    )
    assert mapped == held and all(held.values()), held
    return held


def test_rollback_refuses_to_orphan_dify_documents_without_dify(
    migrated: Migrated, dify_server: LocalDifyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_ops import rollback
    from tests.e2e.fingerprint import fingerprints

    _everything_synced_to_dify(migrated, dify_server)
    monkeypatch.delenv("AIRFLOW_CONN_DIFY_KNOWLEDGE", raising=False)
    before = fingerprints(migrated.target)
    with pytest.raises(rollback.RollbackRefused) as refused:
        rollback.roll_back(migrated.target, 5, mode="delete", actor="pytest", confirm="5")
    assert refused.value.rule == "rollback.dify_documents_unreachable"
    assert str(refused.value).startswith(
        "[rollback] rule rollback.dify_documents_unreachable: embed_projects: 670 Dify documents "
        "are mapped but the dify_knowledge connection is not configured"
    )
    assert fingerprints(migrated.target) == before, "a refused rollback changes nothing"


def _rolled_back_with_dify(migrated: Migrated, server: LocalDifyServer, mode: str) -> None:
    """Roll phase 5 back with every entity's documents in Dify; check exactly that went."""
    from migration_ops import rollback
    from tests.e2e.fingerprint import fingerprints

    vectors = set(PHASE_5_VECTORS.values())
    held = _everything_synced_to_dify(migrated, server)
    before = {t: f for t, f in fingerprints(migrated.target).items() if t not in vectors}
    queued = dict(
        _rows(migrated.target, "select entity, count(*) from migration.embedding_queue group by 1")
    )
    result = rollback.roll_back(migrated.target, 5, mode=mode, actor="pytest", confirm="5")
    assert {e: len(_documents(server, e)) for e in held} == dict.fromkeys(held, 0)
    assert server.state.documents == {} and server.violations == []
    after = fingerprints(migrated.target)
    assert {t: f for t, f in after.items() if t not in vectors} == before, "phases 1-4 unchanged"
    assert all(after[t][0] == 0 for t in vectors if t in after)
    removed = result["deleted"] if mode == "delete" else result["rows"]
    assert removed == {f"embed_{e}": n for e, n in queued.items()}
    assert _one(migrated.target, "select count(*) from migration.embedding_queue") == 0
    assert _one(migrated.target, "select count(*) from migration.dify_documents") == 0
    assert _rows(
        migrated.target,
        "select distinct tgenabled from pg_trigger where tgname like 'embedding_enqueue_%'",
    ) == [("D",)]
    assert runs.latest_run_status(migrated.target, 5) == "rolled_back"


def test_phase_5_rollback_clears_exactly_what_it_made_in_both_modes(
    migrated: Migrated, dify_server: LocalDifyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every entity's Dify documents go (not only the first entity's), both modes."""
    from migration_ops import backup

    monkeypatch.setenv("AIRFLOW_CONN_DIFY_KNOWLEDGE", dify_server.connection())
    _rolled_back_with_dify(migrated, dify_server, "delete")
    backup.backup_and_verify(
        migrated.target, reason="before phase 5", phase=5, triggered_by="pytest"
    )
    run_phase(migrated.legacy, migrated.target, PHASE_5, "p5-again")
    _rolled_back_with_dify(migrated, dify_server, "restore")
