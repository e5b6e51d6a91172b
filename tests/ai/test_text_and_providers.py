"""Chunking and the offline providers: exact chunk bounds, deterministic and local vectors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from migration_ops.ai import text as texts
from migration_ops.ai.providers import (
    DIMENSIONS,
    HashingProvider,
    LocalProvider,
    ProviderNotConfigured,
    configured_provider,
)


def test_chunks_overlap_and_stay_within_the_limit() -> None:
    text = " ".join(f"w{n:03d}" for n in range(1000))  # 4,999 characters, 5 per word
    chunks = texts.chunks(text, size=2000, overlap=400)
    assert [len(c) for c in chunks] == [1999, 1994, 1804]
    assert [(c.split()[0], c.split()[-1]) for c in chunks] == [
        ("w000", "w399"),
        ("w320", "w718"),
        ("w639", "w999"),
    ]
    assert chunks[0].split()[-80:] == chunks[1].split()[:80], "400 characters = 80 words shared"
    assert chunks[1].split()[-80:] == chunks[2].split()[:80]
    assert texts.chunks("   ") == [] and texts.chunks(None) == []
    assert texts.chunks("short text") == ["short text"]


def test_content_hash_is_the_sql_md5() -> None:
    assert texts.content_hash("bite ramps") == hashlib.md5(b"bite ramps").hexdigest()
    assert texts.content_hash(None) == hashlib.md5(b"").hexdigest()


def test_hashing_vectors_are_deterministic_unit_and_lexical() -> None:
    provider = HashingProvider()
    a, b, c = provider.embed(["rescan the upper molar", "rescan the upper molar", "invoice"])
    assert a.shape == (DIMENSIONS,) and abs(float(np.linalg.norm(a)) - 1.0) < 1e-6
    assert np.array_equal(a, b)
    assert hashlib.sha256(a.tobytes()).hexdigest()[:16] == GOLDEN
    assert float(a @ c) < 0.2


#: sha256 prefix of the bytes of the vector of "rescan the upper molar": bit-stable by design
#: (blake2b and the text only), so a change here means every stored hashing vector changed.
GOLDEN = "ddb2c3a3cc553eee"


def test_local_wordllama_is_padded_and_semantic() -> None:
    provider = LocalProvider()
    query, near, far = provider.embed(
        ["the patient needs a new scan", "please rescan the patient", "invoice paid by card"]
    )
    assert query.shape == (DIMENSIONS,) and not query[256:].any(), "256 native dims, zero-padded"
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
    assert float(query @ near) > float(query @ far)


def test_no_silent_default_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIGRATION_EMBEDDING_PROVIDER", raising=False)
    with pytest.raises(ProviderNotConfigured, match="MIGRATION_EMBEDDING_PROVIDER"):
        configured_provider()
    monkeypatch.setenv("MIGRATION_EMBEDDING_PROVIDER", "hashing")
    assert configured_provider().model_id == "hash:blake2b-v1:1024"


def test_the_embed_step_fails_for_good_without_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.entities import get_entity
    from migration_ops import pipeline
    from migration_ops.errors import MigrationError
    from migration_ops.runs import RunContext

    monkeypatch.delenv("MIGRATION_EMBEDDING_PROVIDER", raising=False)
    run = RunContext(run_id="r", phase=5, as_of="2026-01-01T00:00:00+00:00")
    with pytest.raises(MigrationError, match="rule embed.provider_configured: set MIGRATION_"):
        pipeline.embed_step("postgresql:///never-opened", run, get_entity("embed_messages"))


def test_make_migrate_says_why_phase_5_does_not_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from include.entities import get_phase
    from migration_ops import cli

    monkeypatch.delenv("MIGRATION_EMBEDDING_PROVIDER", raising=False)
    monkeypatch.setattr(cli, "_airflow_variable", lambda key: None)  # none in Airflow either
    assert cli._needs_provider(get_phase(5)) and not cli._needs_provider(get_phase(4))
    assert cli._provider_configured(get_phase(5)) is False
    assert "phase 5 (migrate_phase_5_ai) not started: no embedding provider configured" in (
        capsys.readouterr().out
    )
    monkeypatch.setenv("MIGRATION_EMBEDDING_PROVIDER", "bedrock")
    assert cli._provider_configured(get_phase(5)) is True


def test_the_provider_is_chosen_by_an_airflow_variable_with_the_env_var_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``AIRFLOW_VAR_<KEY>`` is the Airflow Variable ``<KEY>`` (its environment backend)."""
    from airflow.sdk import Variable

    from migration_ops.ai.providers import LocalProvider, provider_setting

    monkeypatch.delenv("MIGRATION_EMBEDDING_PROVIDER", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_MIGRATION_EMBEDDING_PROVIDER", "Local")
    assert Variable.get("MIGRATION_EMBEDDING_PROVIDER") == "Local"
    assert provider_setting() == "local"
    chosen = configured_provider()
    assert isinstance(chosen, LocalProvider)
    assert (chosen.model_id, chosen.native_dimensions) == ("local:wordllama-l2-supercat-256", 256)
