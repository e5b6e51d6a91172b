"""Embedding providers behind one interface, chosen by configuration.

``MIGRATION_EMBEDDING_PROVIDER`` (environment variable, else the Airflow Variable of that
name) is ``bedrock``, ``local`` or ``hashing``. There is no silent default: without it,
:func:`configured_provider` raises :class:`ProviderNotConfigured` and ``make migrate`` skips
phase 5 saying so. Every provider writes 1024 dimensions (the column's); the model id is stored
per vector row, so vectors of different models are never compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: The ``vector(1024)`` column of every ``public.<entity>_embeddings`` table.
DIMENSIONS = 1024
PROVIDER_SETTING = "MIGRATION_EMBEDDING_PROVIDER"
#: Airflow connection of Bedrock (``aws`` type; region in the extra).
BEDROCK_CONN_ID = "aws_bedrock"
TITAN_V2 = "amazon.titan-embed-text-v2:0"
#: The seed plan's ``embeddingsMaxRetries: 2``: one call plus two retries, counted by botocore
#: itself (``total_max_attempts`` counts calls; ``max_attempts`` would count retries).
BEDROCK_TOTAL_MAX_ATTEMPTS = 3
TITAN_MAX_CHARS = 50_000


class ProviderNotConfigured(RuntimeError):
    """No embedding provider is configured: phase 5 must not guess one in production."""


class EmbeddingProvider(Protocol):
    """What the queue and the search need of a provider."""

    model_id: str
    native_dimensions: int

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One unit vector of :data:`DIMENSIONS` floats per text, same order."""
        ...


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def pad(vector: np.ndarray, dimensions: int = DIMENSIONS) -> np.ndarray:
    """Zero-pad a smaller native vector: cosine similarity and inner product are unchanged."""
    out = np.zeros(dimensions, dtype=np.float32)
    out[: len(vector)] = vector[:dimensions]
    return out


_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class HashingProvider:
    """Deterministic signed feature hashing (blake2b) of words and word pairs.

    No dependencies, bit-stable across library versions (only text and dimension matter), and
    meaningful for lexical overlap: the test and ``make demo`` default. Its model id keeps its
    vectors apart from any real model's.
    """

    model_id: str = f"hash:blake2b-v1:{DIMENSIONS}"
    native_dimensions: int = DIMENSIONS

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Hash each text's lower-case words and adjacent word pairs into a unit vector."""
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        features = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        vector = np.zeros(DIMENSIONS, dtype=np.float32)
        for feature in features:
            digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % DIMENSIONS
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        return _unit(vector)


@dataclass
class LocalProvider:
    """WordLlama (weights inside its PyPI wheel, 256 native dims), zero-padded to 1024.

    Real semantics without a network: the weights load from the installed package (the
    reference's workaround for its tokenizer-path bug), never from a hub.
    """

    model_id: str = "local:wordllama-l2-supercat-256"
    native_dimensions: int = 256
    _model: Any = field(default=None, repr=False)

    def _load(self) -> Any:
        if self._model is None:
            from pathlib import Path

            import wordllama

            self._model = wordllama.WordLlama.load(
                cache_dir=Path(wordllama.__file__).parent, disable_download=True
            )
        return self._model

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Embed with WordLlama, normalise, pad to the column's dimension."""
        vectors = self._load().embed(list(texts), norm=True)
        return [pad(_unit(np.asarray(v, dtype=np.float32))) for v in vectors]


@dataclass
class BedrockTitanProvider:
    """Titan Text Embeddings v2 through the amazon provider's ``BedrockRuntimeHook``.

    One ``InvokeModel`` per text (Titan takes no arrays). Throttling and transient errors are
    retried by botocore alone (standard mode, :data:`BEDROCK_TOTAL_MAX_ATTEMPTS` calls); what
    is left after the last attempt is raised to the queue, which retries the item later or
    dead-letters it. The input text is never logged (the hook is used, not the operator that
    logs prompts).
    """

    client: Any
    model_id: str = TITAN_V2
    native_dimensions: int = DIMENSIONS

    @classmethod
    def from_connection(
        cls, conn_id: str = BEDROCK_CONN_ID, *, workers: int = 4
    ) -> BedrockTitanProvider:
        """A provider on the hook's boto3 client (endpoint, credentials, region from the conn)."""
        from airflow.providers.amazon.aws.hooks.bedrock import BedrockRuntimeHook
        from botocore.config import Config

        config = Config(
            retries={"mode": "standard", "total_max_attempts": BEDROCK_TOTAL_MAX_ATTEMPTS},
            max_pool_connections=max(10, workers),
        )
        hook = BedrockRuntimeHook(aws_conn_id=conn_id, config=config)
        return cls(client=hook.conn)

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Embed each text with its own call; refuse text over Titan's input limit unsent."""
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> np.ndarray:
        if not text or len(text) > TITAN_MAX_CHARS:
            raise ValueError(f"text of {len(text)} characters is outside Titan's 1..50000")
        body = json.dumps({"inputText": text, "dimensions": DIMENSIONS, "normalize": True})
        response = self.client.invoke_model(
            modelId=self.model_id,
            body=body,
            contentType="application/json",
            accept="application/json",
        )
        payload = json.loads(response["body"].read())
        return np.asarray(payload["embedding"], dtype=np.float32)


def provider_setting() -> str | None:
    """The configured provider name: environment variable first, then the Airflow Variable."""
    value = os.environ.get(PROVIDER_SETTING)
    if value:
        return value.strip().lower()
    try:
        from airflow.sdk import Variable

        found = Variable.get(PROVIDER_SETTING, default=None)
    except Exception:  # noqa: BLE001 - no Airflow context/metadata DB: not configured there
        return None
    return str(found).strip().lower() if found else None


def get_provider(name: str) -> EmbeddingProvider:
    """The provider of this name (``bedrock`` | ``local`` | ``hashing``)."""
    if name == "hashing":
        return HashingProvider()
    if name == "local":
        return LocalProvider()
    if name == "bedrock":
        return BedrockTitanProvider.from_connection()
    raise ProviderNotConfigured(f"unknown embedding provider {name!r}: bedrock, local or hashing")


def configured_provider() -> EmbeddingProvider:
    """The configured provider; raises :class:`ProviderNotConfigured` when none is set."""
    name = provider_setting()
    if not name:
        raise ProviderNotConfigured(
            f"set {PROVIDER_SETTING} (bedrock, local or hashing) as an environment variable or "
            "an Airflow Variable to run phase 5"
        )
    return get_provider(name)
