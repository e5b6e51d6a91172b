"""A small client of Dify's Knowledge (dataset) Service API, on ``httpx``.

Only the endpoints the sync uses, by their canonical hyphenated paths: list and create
knowledge bases, create and update documents by text, poll indexing status, delete documents.
The dataset API key comes from the Airflow connection ``dify_knowledge`` (``http`` type: the
base URL ``https://<host>/v1`` as host, the key as password; the knowledge-base settings in
``extra``) and is never logged: only method, path template, status and error code are.

Errors are mapped from Dify's ``{"status", "code", "message"}`` body to distinct classes:
a 403 rate-limit answer (Dify Cloud's knowledge request limit answers 403, not 429) and 5xx
or transport failures are retried after a wait (the seed plan: 3 retries); capacity, invalid
parameters, unknown ids, duplicate names and a wrong key are reported at once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

DIFY_CONN_ID = "dify_knowledge"
#: Retries after the first call for retryable answers (the seed plan's "3 retries").
RETRIES = 3


class DifyError(Exception):
    """A Dify answer the sync cannot use; carries status and code, never request text."""

    retryable = False

    def __init__(self, status: int, code: str, path: str) -> None:
        super().__init__(f"Dify {status} {code} on {path}")
        self.status = status
        self.code = code


class DifyRateLimited(DifyError):
    """403 "knowledge base request rate limit": wait (60 s window) and retry."""

    retryable = True


class DifyCapacityExceeded(DifyError):
    """403 for plan capacity (vector space, documents): not retryable."""


class DifyInvalidParam(DifyError):
    """400 ``invalid_param`` and other 400s: the request is wrong."""


class DifyUnauthorized(DifyError):
    """401: wrong or missing dataset API key."""


class DifyNotFound(DifyError):
    """404: unknown knowledge base or document."""


class DifyDuplicateName(DifyError):
    """409 ``dataset_name_duplicate``."""


class DifyUnavailable(DifyError):
    """5xx or a transport failure: retried."""

    retryable = True


def classify(status: int, body: dict[str, Any], path: str) -> DifyError:
    """The error class of a non-2xx answer (by status, code and Dify's rate-limit wording)."""
    code = str(body.get("code") or "unknown")
    message = str(body.get("message") or "").lower()
    if status == 403 and "rate limit" in message:
        return DifyRateLimited(status, code, path)
    kinds: dict[int, type[DifyError]] = {
        400: DifyInvalidParam,
        401: DifyUnauthorized,
        403: DifyCapacityExceeded,
        404: DifyNotFound,
        409: DifyDuplicateName,
    }
    return kinds.get(status, DifyUnavailable if status >= 500 else DifyError)(status, code, path)


@dataclass(frozen=True)
class KnowledgeSettings:
    """How each knowledge base is created: the seed plan's settings unless the conn overrides.

    Hybrid search, weights 0.7 vector / 0.3 keyword, reranking with Cohere rerank v3.5 on
    Bedrock, top_k 5, score threshold 0.6; Titan v2 embeddings.
    """

    indexing_technique: str = "high_quality"
    embedding_model: str = "amazon.titan-embed-text-v2:0"
    embedding_model_provider: str = "langgenius/bedrock/bedrock"
    rerank_provider: str = "langgenius/bedrock/bedrock"
    rerank_model: str = "cohere.rerank-v3-5:0"
    vector_weight: float = 0.7
    top_k: int = 5
    score_threshold: float = 0.6
    name_prefix: str = "migration"

    def retrieval_model(self) -> dict[str, Any]:
        """Dify's ``RetrievalModel`` for hybrid search with reranking."""
        return {
            "search_method": "hybrid_search",
            "reranking_enable": True,
            "reranking_mode": "reranking_model",
            "reranking_model": {
                "reranking_provider_name": self.rerank_provider,
                "reranking_model_name": self.rerank_model,
            },
            "weights": {
                "weight_type": "customized",
                "vector_setting": {
                    "vector_weight": self.vector_weight,
                    "embedding_provider_name": self.embedding_model_provider,
                    "embedding_model_name": self.embedding_model,
                },
                "keyword_setting": {"keyword_weight": round(1 - self.vector_weight, 6)},
            },
            "top_k": self.top_k,
            "score_threshold_enabled": True,
            "score_threshold": self.score_threshold,
        }


@dataclass
class DifyKnowledgeClient:
    """Typed calls of the Knowledge API with the retry policy of the module docstring."""

    base_url: str
    api_key: str = field(repr=False)
    rate_limit_wait: float = 60.0
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    _http: httpx.Client | None = field(default=None, repr=False)

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.base_url.rstrip("/"),
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=self.timeout,
            )
        return self._http

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._http is not None:
            self._http.close()

    def request(self, method: str, path: str, template: str, **kwargs: Any) -> Any:
        """One call with retries; ``template`` (ids elided) is what errors and logs name."""
        for attempt in range(RETRIES + 1):
            try:
                response = self._client().request(method, path, **kwargs)
            except httpx.TransportError:
                error: DifyError = DifyUnavailable(0, "transport", template)
            else:
                if response.status_code < 300:
                    return response.json() if response.content else None
                error = classify(response.status_code, _json(response), template)
            log.warning(
                "dify %s %s: %s %s (attempt %d)",
                method,
                template,
                error.status,
                error.code,
                attempt + 1,
            )
            if not error.retryable or attempt == RETRIES:
                raise error
            self.sleep(self.rate_limit_wait if isinstance(error, DifyRateLimited) else 2.0**attempt)
        raise AssertionError("unreachable")

    def find_dataset(self, name: str) -> str | None:
        """Id of the knowledge base named exactly ``name`` (``keyword`` is a substring match)."""
        page = 1
        while True:
            body = self.request(
                "GET",
                "/datasets",
                "/datasets",
                params={"keyword": name, "page": page, "limit": 100},
            )
            for dataset in body.get("data") or []:
                if dataset.get("name") == name:
                    return str(dataset["id"])
            if not body.get("has_more"):
                return None
            page += 1

    def create_dataset(self, name: str, settings: KnowledgeSettings) -> str:
        """Create a knowledge base with the settings; return its id."""
        body = self.request(
            "POST",
            "/datasets",
            "/datasets",
            json={
                "name": name,
                "indexing_technique": settings.indexing_technique,
                "permission": "only_me",
                "provider": "vendor",
                "embedding_model": settings.embedding_model,
                "embedding_model_provider": settings.embedding_model_provider,
                "retrieval_model": settings.retrieval_model(),
            },
        )
        return str(body["id"])

    def ensure_dataset(self, name: str, settings: KnowledgeSettings) -> str:
        """The knowledge base's id, created if absent."""
        return self.find_dataset(name) or self.create_dataset(name, settings)

    def create_document(
        self, dataset_id: str, name: str, text: str, *, indexing_technique: str = "high_quality"
    ) -> tuple[str, str]:
        """Create a document by text; return (document id, indexing batch).

        ``indexing_technique`` is the knowledge base's (``KnowledgeSettings``): ``high_quality``
        (embedding model) or ``economy`` (keyword index only).
        """
        body = self.request(
            "POST",
            f"/datasets/{dataset_id}/document/create-by-text",
            "/datasets/{id}/document/create-by-text",
            json={
                "name": name,
                "text": text,
                "indexing_technique": indexing_technique,
                "doc_form": "text_model",
                "process_rule": {"mode": "automatic"},
            },
        )
        return str(body["document"]["id"]), str(body["batch"])

    def update_document(self, dataset_id: str, document_id: str, name: str, text: str) -> str:
        """Replace a document's text (re-indexed); return the indexing batch."""
        body = self.request(
            "POST",
            f"/datasets/{dataset_id}/documents/{document_id}/update-by-text",
            "/datasets/{id}/documents/{id}/update-by-text",
            json={"name": name, "text": text, "process_rule": {"mode": "automatic"}},
        )
        return str(body["batch"])

    def delete_document(self, dataset_id: str, document_id: str) -> None:
        """Delete a document (204); an unknown one counts as deleted."""
        try:
            self.request(
                "DELETE",
                f"/datasets/{dataset_id}/documents/{document_id}",
                "/datasets/{id}/documents/{id}",
            )
        except DifyNotFound:
            return

    def indexing_status(self, dataset_id: str, batch: str) -> list[str]:
        """The indexing status of each document of a batch."""
        body = self.request(
            "GET",
            f"/datasets/{dataset_id}/documents/{batch}/indexing-status",
            "/datasets/{id}/documents/{batch}/indexing-status",
        )
        return [str(item.get("indexing_status")) for item in body.get("data") or []]

    def wait_indexed(
        self,
        dataset_id: str,
        batch: str,
        *,
        timeout: float = 600.0,
        first_delay: float = 2.0,
        max_delay: float = 30.0,
    ) -> str:
        """Poll a batch until every document is ``completed`` or one is ``error``.

        Backoff from ``first_delay`` doubling to ``max_delay`` (polls count against the rate
        limit too). Returns ``completed``, ``error`` or ``timeout``.
        """
        delay, waited = first_delay, 0.0
        while True:
            statuses = self.indexing_status(dataset_id, batch)
            if "error" in statuses:
                return "error"
            if statuses and all(s == "completed" for s in statuses):
                return "completed"
            if waited >= timeout:
                return "timeout"
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, max_delay)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def client_from_connection(conn: Any) -> tuple[DifyKnowledgeClient, KnowledgeSettings]:
    """Client and knowledge settings from an Airflow connection.

    The host is the API's base URL (``https://<host>/v1``), the password the dataset key, the
    extra any :class:`KnowledgeSettings` field and ``rate_limit_wait`` (seconds).
    """
    extra = dict(conn.extra_dejson)
    known = KnowledgeSettings.__dataclass_fields__
    settings = KnowledgeSettings(**{k: v for k, v in extra.items() if k in known})
    base = str(conn.host)
    if conn.port:
        base = f"{base}:{conn.port}"
    wait = float(extra.get("rate_limit_wait", 60.0))
    return DifyKnowledgeClient(base, str(conn.password), rate_limit_wait=wait), settings


def env_client() -> tuple[DifyKnowledgeClient, KnowledgeSettings] | None:
    """The client from ``AIRFLOW_CONN_DIFY_KNOWLEDGE`` (JSON or URI), or None when unset."""
    from airflow.sdk import Connection

    value = os.environ.get(f"AIRFLOW_CONN_{DIFY_CONN_ID.upper()}")
    if not value:
        return None
    if value.lstrip().startswith("{"):
        conn = Connection.from_json(value, conn_id=DIFY_CONN_ID)
    else:
        conn = Connection.from_uri(value, conn_id=DIFY_CONN_ID)
    return client_from_connection(conn)


def task_client() -> tuple[DifyKnowledgeClient, KnowledgeSettings] | None:
    """The client inside an Airflow task; None when the connection is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(DIFY_CONN_ID)
    except AirflowNotFoundException:
        return None
    return client_from_connection(conn)


def dumps_settings(settings: KnowledgeSettings) -> str:
    """The settings as JSON (for reports; holds no secret)."""
    return json.dumps(settings.__dict__, sort_keys=True)


def configured_client() -> tuple[DifyKnowledgeClient, KnowledgeSettings] | None:
    """The environment's connection first (tools, tests), else the task's; None when neither."""
    found = env_client()
    if found is not None:
        return found
    try:
        return task_client()
    except Exception:  # noqa: BLE001 - outside a task without the connection: not configured
        return None
