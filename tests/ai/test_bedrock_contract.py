"""The Bedrock provider: the real boto3 client through the amazon provider's BedrockRuntimeHook,
against the local Titan v2 contract server (signing, bodies, errors and botocore's retries)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest
from botocore.exceptions import ClientError

from migration_ops.ai.providers import (
    BEDROCK_TOTAL_MAX_ATTEMPTS,
    BedrockTitanProvider,
    HashingProvider,
)
from migration_ops.local_bedrock import LocalBedrockServer


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBedrockServer]:
    with LocalBedrockServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_BEDROCK", server.connection())
        yield server


def test_titan_vectors_come_back_through_the_hook(bedrock: LocalBedrockServer) -> None:
    provider = BedrockTitanProvider.from_connection()
    vectors = provider.embed(["upper incisors intrusion", "rescan the left molar"])
    expected = HashingProvider().embed(["upper incisors intrusion", "rescan the left molar"])
    assert bedrock.calls == {"ok": 2}
    assert [v.shape for v in vectors] == [(1024,), (1024,)]
    for got, want in zip(vectors, expected, strict=True):
        assert np.allclose(got, want, atol=1e-6)
        assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-5


def test_two_throttles_then_success_is_three_calls(bedrock: LocalBedrockServer) -> None:
    bedrock.throttle(2)
    [vector] = BedrockTitanProvider.from_connection().embed(["bite ramps"])
    assert bedrock.calls == {"throttled": 2, "ok": 1}
    assert vector.shape == (1024,)


def test_throttling_gives_up_after_the_seed_plans_three_attempts(
    bedrock: LocalBedrockServer,
) -> None:
    bedrock.throttle(10)
    with pytest.raises(ClientError) as raised:
        BedrockTitanProvider.from_connection().embed(["bite ramps"])
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert BEDROCK_TOTAL_MAX_ATTEMPTS == 3
    assert bedrock.calls == {"throttled": 3}, "one call and two retries: botocore's only"


def test_validation_errors_are_not_retried(bedrock: LocalBedrockServer) -> None:
    provider = BedrockTitanProvider.from_connection()
    with pytest.raises(ClientError) as raised:
        provider.client.invoke_model(
            modelId=provider.model_id,
            body='{"inputText": "x", "dimensions": 768}',
            contentType="application/json",
            accept="application/json",
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert bedrock.calls == {"invalid": 1}
    with pytest.raises(ValueError, match="outside Titan"):
        provider.embed(["x" * 50_001])
    assert bedrock.calls == {"invalid": 1}, "an over-long text is never sent"


def test_input_text_is_never_logged(
    bedrock: LocalBedrockServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bedrock.throttle(1)
    BedrockTitanProvider.from_connection().embed(["PATIENT-SECRET-TEXT molar"])
    assert "PATIENT-SECRET-TEXT" not in caplog.text
