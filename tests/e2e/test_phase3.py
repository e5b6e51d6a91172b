"""Phase 3 end to end: sandbox legacy database → phases 1-2 → phase 3, on real PostgreSQL.

One target is migrated through phases 1, 2 and 3 (and phase 3 again, to prove the rerun), and
a second sandbox built with another seed (so every ``django_content_type`` id differs) goes
through the same phases: every record must resolve, or be quarantined, by the content type's
*name* in both.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from include.entities import get_phase
from include.entities.phase3_communication import MESSAGES, RECORD_TARGETS
from include.sandbox.content_types import content_type_id_offset
from include.sandbox.generator import build_sandbox, sandbox_exists
from migration_ops import local_env, reports, runs
from migration_ops.db import connect, qualified
from migration_ops.errors import GateClosed
from migration_ops.local_storage import LocalStorageServer, write_expected_objects
from migration_ops.runs import RunContext
from migration_ops.settings import local_dir
from tests.e2e.conftest import SCALE, SEED, run_phase
from tests.e2e.fingerprint import assert_rerun_is_a_no_op

pytestmark = pytest.mark.e2e
PHASE_3 = get_phase(3)
#: A seed whose content-type layout differs from the shared sandbox's (ids differ mod 45).
OTHER_SEED = SEED + 1
OTHER_MEDIA = local_dir() / "test-media" / "e2e_legacy_phase3_other"
PHASE_3_TABLES = ("public.message_types", "public.messages", "public.message_attachments")

#: What a record with each content type must end as: loaded ("resolved") or one rule.
OUTCOMES_BY_TYPE: dict[str | None, set[str]] = {
    **{
        f"{r.app_label}.{r.model}": {
            "resolved",
            "messages.target_exists",
            "messages.target_migrated",
        }
        for r in RECORD_TARGETS
    },
    None: {"messages.target_type_present"},
}
UNMAPPED_OUTCOME = {"messages.target_type_mapped"}
#: A type of another app named like a mapped model (users.user beside auth.user): its own rule.
NAMESAKE_OUTCOME = {"messages.target_type_namesake"}
MAPPED_MODELS = {r.model for r in RECORD_TARGETS}


def _allowed(content_type: str | None) -> set[str]:
    """The outcomes a record of ``content_type`` (``app.model``) may end with."""
    if content_type in OUTCOMES_BY_TYPE:
        return OUTCOMES_BY_TYPE[content_type]
    model = str(content_type).split(".", 1)[-1]
    return NAMESAKE_OUTCOME if model in MAPPED_MODELS else UNMAPPED_OUTCOME


@dataclass(frozen=True)
class Migrated:
    legacy: str
    target: str
    run: RunContext


def _run_phases(legacy: str, target: str, prefix: str) -> RunContext:
    run_phase(legacy, target, get_phase(1), f"{prefix}-phase1")
    run_phase(legacy, target, get_phase(2), f"{prefix}-phase2")
    runs.check_gate(target, PHASE_3)  # phase 2 validated: the gate opens
    return run_phase(legacy, target, PHASE_3, f"{prefix}-phase3")


@pytest.fixture(scope="module")
def migrated(sandbox_dsn: str, pg_socket: str, supabase_storage: LocalStorageServer) -> Migrated:
    target = local_env.ensure_supabase_database(pg_socket, "e2e_phase3_target", recreate=True)
    run_phase(sandbox_dsn, target, get_phase(1), "p3-phase1")
    with pytest.raises(GateClosed, match="phase 2 has never run"):
        runs.check_gate(target, PHASE_3)
    run_phase(sandbox_dsn, target, get_phase(2), "p3-phase2")
    runs.check_gate(target, PHASE_3)
    return Migrated(sandbox_dsn, target, run_phase(sandbox_dsn, target, PHASE_3, "p3-first"))


@pytest.fixture(scope="module")
def other(
    pg_socket: str, tmp_path_factory: pytest.TempPathFactory, supabase_storage: LocalStorageServer
) -> Iterator[Migrated]:
    """A second sandbox (other seed, other content-type ids) through phases 1-3."""
    assert content_type_id_offset(OTHER_SEED) != content_type_id_offset(SEED)
    legacy = local_env.ensure_database(pg_socket, "e2e_legacy_phase3_other")
    if not sandbox_exists(legacy, SCALE, OTHER_SEED):
        build_sandbox(legacy, scale=SCALE, seed=OTHER_SEED, media_dir=OTHER_MEDIA)
    target = local_env.ensure_supabase_database(pg_socket, "e2e_phase3_other_target", recreate=True)
    listing = write_expected_objects(legacy, tmp_path_factory.mktemp("other") / "expected.txt")
    with LocalStorageServer(tmp_path_factory.mktemp("other_storage")) as server:
        previous = os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"]
        os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"] = server.connection(
            Path(OTHER_MEDIA), expected_objects=listing
        )
        try:
            yield Migrated(legacy, target, _run_phases(legacy, target, "p3-other"))
        finally:
            os.environ["AIRFLOW_CONN_SUPABASE_STORAGE"] = previous


def _rows(dsn: str, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _legacy_records(legacy: str) -> dict[int, tuple[str | None, int]]:
    """{record id: (content type name or None, target id)} read from the legacy database."""
    rows = _rows(
        legacy,
        "select r.id, ct.app_label || '.' || ct.model, r.target_id from dispatch_record r "
        "left join django_content_type ct on ct.id = r.target_type_id",
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def _outcomes(m: Migrated) -> dict[int, str]:
    """{record id: 'resolved' or the quarantine rule} after the run."""
    loaded = {
        r[0]
        for r in _rows(
            m.target,
            "select legacy_record_id from public.messages where legacy_record_id is not null",
        )
    }
    quarantined = dict(
        _rows(
            m.target,
            "select legacy_id, rule from migration.quarantine where entity = 'messages' "
            "and last_run_id = %s",
            (m.run.run_id,),
        )
    )
    assert not loaded & set(quarantined), "a record is loaded and quarantined at once"
    return {**{i: "resolved" for i in loaded}, **quarantined}


def breakdown(m: Migrated) -> dict[str | None, Counter[str]]:
    """Per content type name: how many records were resolved and quarantined under each rule."""
    legacy = _legacy_records(m.legacy)
    outcomes = _outcomes(m)
    assert set(outcomes) == set(legacy), "every record is loaded or quarantined"
    result: dict[str | None, Counter[str]] = {}
    for record_id, (content_type, _) in legacy.items():
        result.setdefault(content_type, Counter())[outcomes[record_id]] += 1
    return result


def _assert_resolved_by_name(m: Migrated) -> None:
    """Each loaded record's foreign key is the target row of (content type name, target id)."""
    legacy = _legacy_records(m.legacy)
    resolved = _rows(
        m.target,
        """
        select m.legacy_record_id, m.legacy_target_type,
               coalesce(pat.legacy_patient_id, usr.legacy_user_id, o.legacy_instruction_id,
                        pr.legacy_project_id, tp.legacy_plan_id)
        from public.messages m
        left join public.profiles pat on pat.id = m.patient_id
            and m.legacy_target_type = 'dispatch.patient'
        left join public.profiles usr on usr.id = m.recipient_id
        left join public.orders o on o.id = m.order_id
            and m.legacy_target_type = 'dispatch.instruction'
        left join public.projects pr on pr.id = m.project_id
            and m.legacy_target_type = 'dispatch.project'
        left join public.treatment_plans tp on tp.id = m.treatment_plan_id
        where m.legacy_record_id is not null
        """,
    )
    assert resolved
    for record_id, target_type, target_legacy_id in resolved:
        assert (target_type, target_legacy_id) == legacy[record_id], record_id


def _assert_outcomes_follow_the_type(table: dict[str | None, Counter[str]]) -> None:
    for content_type, counts in table.items():
        assert set(counts) <= _allowed(content_type), (content_type, counts)
        if content_type in OUTCOMES_BY_TYPE and content_type is not None:
            assert counts["resolved"] > 0, content_type


# ---------------------------------------------------------------------------------------------
def test_every_entity_reconciles_against_the_legacy_counts(migrated: Migrated) -> None:
    counts = {
        r[0]: r[1:]
        for r in _rows(
            migrated.target,
            "select entity, source_rows, loaded_rows, merged_rows, quarantined_rows "
            "from migration.reconciliation where run_id = %s",
            (migrated.run.run_id,),
        )
    }
    assert set(counts) == {e.name for e in PHASE_3.entities}
    for entity in PHASE_3.entities:
        source, loaded, merged, quarantined = counts[entity.name]
        legacy = _rows(
            migrated.legacy,
            sql.SQL("select count(*) from {}").format(sql.Identifier(entity.primary_source.table)),
        )[0][0]
        assert source == legacy == loaded + merged + quarantined, entity.name
        in_target = _rows(
            migrated.target,
            sql.SQL("select count(*) from {} where {} is not null").format(
                qualified(entity.target_table), sql.Identifier(entity.key)
            ),
        )[0][0]
        assert in_target == loaded, entity.name
    assert runs.latest_run_status(migrated.target, 3) == "validated"


def test_per_content_type_breakdown(migrated: Migrated) -> None:
    table = breakdown(migrated)
    print("\nmessages per content type (scale", SCALE, "seed", SEED, "):")
    for content_type, counts in sorted(table.items(), key=lambda kv: -sum(kv[1].values())):
        print(f"  {content_type or 'NULL'}: {sum(counts.values())} {dict(counts)}")
    _assert_outcomes_follow_the_type(table)
    assert any(ct not in OUTCOMES_BY_TYPE for ct in table), "the sandbox injects unmapped types"
    assert None in table, "the sandbox injects NULL types"
    namesakes = {"users.user", "projects.project"} & set(table)
    assert namesakes, "the sandbox injects third-party models named like mapped ones"
    for namesake in namesakes:  # never resolved to auth.user / dispatch.project
        assert set(table[namesake]) == {"messages.target_type_namesake"}, namesake
    assert sum(c["messages.target_exists"] for c in table.values()) > 0, "dangling targets"
    _assert_resolved_by_name(migrated)


def test_other_content_type_ids_resolve_the_same_way(migrated: Migrated, other: Migrated) -> None:
    query = "select id from django_content_type where app_label = 'dispatch' and model = 'patient'"
    assert _rows(migrated.legacy, query) != _rows(other.legacy, query)
    table = breakdown(other)
    _assert_outcomes_follow_the_type(table)
    _assert_resolved_by_name(other)
    # same names, same decisions: the outcome sets per content type agree between the two
    first = breakdown(migrated)
    for content_type in set(first) & set(table):
        assert set(table[content_type]) <= _allowed(content_type)
        assert ("resolved" in table[content_type]) == ("resolved" in first[content_type])


def test_every_injected_communication_defect_is_quarantined_or_repaired(migrated: Migrated) -> None:
    defects = _rows(
        migrated.legacy,
        "select defect, table_name, legacy_id from sandbox.injected_defects "
        "where table_name in ('dispatch_record', 'dispatch_comment')",
    )
    outcomes = _outcomes(migrated)
    expected_rule = {
        "record_target_unknown_model": "messages.target_type_mapped",
        # a third-party model named like a mapped one: never resolved to the mapped table
        "record_target_namesake_model": "messages.target_type_namesake",
        "record_target_null_type": "messages.target_type_present",
        "record_target_dangling": "messages.target_exists",
    }
    legacy_text = {
        (table, i): text
        for table in ("dispatch_record", "dispatch_comment")
        for i, text in _rows(
            migrated.legacy, sql.SQL("select id, text from {}").format(sql.Identifier(table))
        )
    }
    loaded = {
        (("dispatch_record", r[0]) if r[0] is not None else ("dispatch_comment", r[1])): r[2:]
        for r in _rows(
            migrated.target,
            "select m.legacy_record_id, m.legacy_comment_id, m.content, m.metadata, m.legacy_type, "
            "t.code from public.messages m join public.message_types t on t.id = m.message_type_id",
        )
    }
    seen: Counter[str] = Counter()
    for defect, table, legacy_id in defects:
        seen[defect] += 1
        if defect in expected_rule:
            assert outcomes[legacy_id] == expected_rule[defect], (defect, legacy_id)
        elif defect == "record_type_unknown":
            _, _, legacy_type, code = loaded[(table, legacy_id)]
            assert code == "general" and legacy_type not in (3, 5, 6, 8)
        elif (table, legacy_id) in loaded:  # text defects of rows that loaded
            content, metadata, _, _ = loaded[(table, legacy_id)]
            original = legacy_text[(table, legacy_id)]
            if defect == "text_mojibake":
                assert metadata["legacy_text"] == original and content != original
                assert content.encode("utf-8").decode("latin-1") == original
            else:  # text_multilingual: kept exactly
                assert content == original and "legacy_text" not in metadata
    assert set(seen) >= {
        *expected_rule,
        "record_type_unknown",
        "text_mojibake",
        "text_multilingual",
    }


def test_attachments_and_comments_point_at_their_migrated_parents(migrated: Migrated) -> None:
    legacy_pairs = set(
        _rows(migrated.legacy, "select id, record_id, file_id from dispatch_record_attachments")
    )
    loaded = _rows(
        migrated.target,
        "select a.legacy_record_attachment_id, m.legacy_record_id, f.legacy_file_id "
        "from public.message_attachments a join public.messages m on m.id = a.message_id "
        "join public.files f on f.id = a.file_id",
    )
    assert loaded and set(loaded) <= legacy_pairs
    comments = dict(_rows(migrated.legacy, "select id, plan_id from dispatch_comment"))
    for comment_id, plan_id in _rows(
        migrated.target,
        "select m.legacy_comment_id, tp.legacy_plan_id from public.messages m "
        "join public.treatment_plans tp on tp.id = m.treatment_plan_id "
        "where m.legacy_comment_id is not null",
    ):
        assert comments[comment_id] == plan_id


def test_rerun_changes_nothing_and_adds_no_quarantine_duplicates(migrated: Migrated) -> None:
    assert_rerun_is_a_no_op(migrated.legacy, migrated.target, PHASE_3, "p3-second", PHASE_3_TABLES)
    runs.check_gate(migrated.target, get_phase(4))  # phase 3 validated: phase 4 may start


def test_reports_carry_no_message_text(migrated: Migrated, tmp_path: Path) -> None:
    out = reports.write(migrated.target, migrated.run.run_id, tmp_path)
    text = (out / "report.json").read_text() + (out / "reconciliation.md").read_text()
    for (sample,) in _rows(
        migrated.legacy, "select text from dispatch_record where length(text) > 30 limit 200"
    ):
        assert sample not in text
    details = _rows(migrated.target, "select distinct detail from migration.quarantine")
    assert all(len(d) < 120 for (d,) in details)
    assert MESSAGES.name in text
