"""The Dify Knowledge client (httpx) against the local contract server: shapes, retries, errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migration_ops.ai.dify import (
    RETRIES,
    DifyCapacityExceeded,
    DifyInvalidParam,
    DifyKnowledgeClient,
    DifyNotFound,
    DifyRateLimited,
    DifyUnauthorized,
    KnowledgeSettings,
    classify,
)
from migration_ops.local_dify import RATE_LIMIT_MESSAGE, LocalDifyServer


@pytest.fixture
def server() -> Iterator[LocalDifyServer]:
    with LocalDifyServer() as running:
        yield running


def _client(server: LocalDifyServer, sleeps: list[float], key: str = "dataset-local-key"):
    return DifyKnowledgeClient(server.url, key, rate_limit_wait=60.0, sleep=sleeps.append)


def test_knowledge_base_is_created_once_with_the_configured_settings(server) -> None:
    client = _client(server, [])
    first = client.ensure_dataset("migration-messages", KnowledgeSettings())
    assert client.ensure_dataset("migration-messages", KnowledgeSettings()) == first
    assert server.state.requests == {"GET": 2, "POST": 1}
    created = server.state.datasets[first]
    assert created["indexing_technique"] == "high_quality"
    assert created["embedding_model"] == "amazon.titan-embed-text-v2:0"
    retrieval = created["retrieval_model_dict"]
    assert (retrieval["search_method"], retrieval["top_k"], retrieval["score_threshold"]) == (
        "hybrid_search",
        5,
        0.6,
    )
    assert retrieval["reranking_model"]["reranking_model_name"] == "cohere.rerank-v3-5:0"
    assert retrieval["weights"]["vector_setting"]["vector_weight"] == 0.7
    assert retrieval["weights"]["keyword_setting"]["keyword_weight"] == 0.3
    assert server.violations == []


def test_documents_are_created_indexed_updated_and_deleted(server) -> None:
    sleeps: list[float] = []
    client = _client(server, sleeps)
    dataset = client.create_dataset("kb", KnowledgeSettings())
    document, batch = client.create_document(dataset, "messages:7", "rescan the upper molar")
    assert client.wait_indexed(dataset, batch, first_delay=2.0) == "completed"
    assert sleeps == [2.0], "polled twice: indexing, then completed"
    batch = client.update_document(dataset, document, "messages:7", "new text")
    assert server.state.documents[document]["text"] == "new text"
    server.fail_indexing("messages:7")
    assert client.wait_indexed(dataset, batch) == "error"
    client.delete_document(dataset, document)
    client.delete_document(dataset, document)  # already gone: 404 counts as deleted
    assert server.state.documents == {} and server.violations == []


def test_a_403_rate_limit_is_waited_for_and_retried(server) -> None:
    sleeps: list[float] = []
    client = _client(server, sleeps)
    dataset = client.create_dataset("kb", KnowledgeSettings())
    server.rate_limit(2)
    client.create_document(dataset, "messages:1", "text")
    assert sleeps == [60.0, 60.0]
    server.rate_limit(10)
    with pytest.raises(DifyRateLimited) as raised:
        client.create_document(dataset, "messages:2", "text")
    assert (raised.value.status, raised.value.code) == (403, "forbidden")
    assert sleeps == [60.0] * (2 + RETRIES) and server.state.rate_limited_next == 10 - 4


def test_other_errors_are_reported_at_once(server) -> None:
    sleeps: list[float] = []
    with pytest.raises(DifyUnauthorized):
        _client(server, sleeps, key="wrong").find_dataset("kb")
    client = _client(server, sleeps)
    with pytest.raises(DifyInvalidParam):
        client.create_dataset("x" * 41, KnowledgeSettings())
    with pytest.raises(DifyNotFound):
        client.update_document("no-such-kb", "no-such-doc", "n", "t")
    assert sleeps == [] and len(server.violations) == 1
    assert "create_dataset" in server.violations[0]


def test_403_without_the_rate_limit_wording_is_capacity_not_retried() -> None:
    capacity = classify(403, {"code": "forbidden", "message": "vector space is full"}, "/p")
    limited = classify(403, {"code": "forbidden", "message": RATE_LIMIT_MESSAGE}, "/p")
    assert type(capacity) is DifyCapacityExceeded and not capacity.retryable
    assert type(limited) is DifyRateLimited and limited.retryable
    assert "vector space" not in str(capacity), "Dify's message is not carried"
