"""A local server implementing the Dify Knowledge API endpoints the sync uses.

Dify cannot run here (a Flask API, Celery, Redis, a vector store and a plugin daemon), so the
real client (:mod:`migration_ops.ai.dify`, on ``httpx``) talks to this stateful stand-in over
HTTP, under ``/v1``:

====================================================  ==========================================
``GET /datasets`` (``keyword``, ``page``, ``limit``)   ``{data, has_more, limit, total, page}``
``POST /datasets``                                     a ``Dataset``; 409 ``dataset_name_duplicate``
``POST /datasets/{id}/document/create-by-text``        ``{document, batch}``
``POST /datasets/{id}/documents/{doc}/update-by-text`` ``{document, batch}``
``GET /datasets/{id}/documents/{batch}/indexing-status`` ``{data: [{id, indexing_status, ...}]}``
``DELETE /datasets/{id}/documents/{doc}``              204
====================================================  ==========================================

Requests are validated against JSON Schemas written here from Dify's published API reference
(required fields, enums, lengths, ``RetrievalModel``'s required keys); a violation is answered
400 ``invalid_param`` and recorded in :attr:`LocalDifyServer.violations`. A missing or wrong
``Authorization: Bearer`` key is 401. :meth:`LocalDifyServer.rate_limit` scripts the next N
requests to get Dify Cloud's rate-limit answer (HTTP **403** ``forbidden``, "...knowledge base
request rate limit..."), :meth:`LocalDifyServer.fail_indexing` makes a document's indexing end
in ``error``. Indexing completes after ``polls_to_complete`` status polls. Texts are kept in
memory only so tests can read back exactly what arrived.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

RATE_LIMIT_MESSAGE = (
    "Sorry, you have reached the knowledge base request rate limit of your subscription."
)
_PROCESS_RULE = {
    "type": "object",
    "required": ["mode"],
    "properties": {
        "mode": {"enum": ["automatic", "custom", "hierarchical"]},
        "rules": {"type": "object"},
    },
}
_RETRIEVAL_MODEL = {
    "type": "object",
    "required": ["search_method", "reranking_enable", "top_k", "score_threshold_enabled"],
    "properties": {
        "search_method": {
            "enum": ["keyword_search", "semantic_search", "full_text_search", "hybrid_search"]
        },
        "reranking_enable": {"type": "boolean"},
        "reranking_mode": {"enum": ["reranking_model", "weighted_score", None]},
        "reranking_model": {
            "type": "object",
            "properties": {
                "reranking_provider_name": {"type": "string"},
                "reranking_model_name": {"type": "string"},
            },
        },
        "top_k": {"type": "integer"},
        "score_threshold_enabled": {"type": "boolean"},
        "score_threshold": {"type": ["number", "null"]},
        "weights": {
            "type": ["object", "null"],
            "properties": {
                "weight_type": {"enum": ["semantic_first", "keyword_first", "customized"]}
            },
        },
    },
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "create_dataset": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 40},
            "description": {"type": "string", "maxLength": 400},
            "indexing_technique": {"enum": ["high_quality", "economy", None]},
            "permission": {"enum": ["only_me", "all_team_members", "partial_members"]},
            "provider": {"enum": ["vendor", "external"]},
            "embedding_model": {"type": "string"},
            "embedding_model_provider": {"type": "string"},
            "retrieval_model": _RETRIEVAL_MODEL,
        },
    },
    "create_document": {
        "type": "object",
        "required": ["name", "text"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "text": {"type": "string", "minLength": 1},
            "indexing_technique": {"enum": ["high_quality", "economy"]},
            "doc_form": {"enum": ["text_model", "hierarchical_model", "qa_model"]},
            "doc_language": {"type": "string"},
            "process_rule": _PROCESS_RULE,
            "retrieval_model": _RETRIEVAL_MODEL,
            "embedding_model": {"type": "string"},
            "embedding_model_provider": {"type": "string"},
            "original_document_id": {"type": "string"},
        },
    },
    "update_document": {
        "type": "object",
        "additionalProperties": False,
        "dependentRequired": {"text": ["name"]},
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "text": {"type": "string", "minLength": 1},
            "process_rule": _PROCESS_RULE,
            "doc_form": {"enum": ["text_model", "hierarchical_model", "qa_model"]},
            "doc_language": {"type": "string"},
            "retrieval_model": _RETRIEVAL_MODEL,
        },
    },
}


class _Answer(Exception):
    def __init__(self, status: int, body: dict[str, Any] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _error(status: int, code: str, message: str) -> _Answer:
    return _Answer(status, {"status": status, "code": code, "message": message})


class DifyState:
    """Knowledge bases, documents and batches in memory, with the scripted behaviours."""

    def __init__(self, api_key: str, polls_to_complete: int) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.lock = threading.Lock()
        self.datasets: dict[str, dict[str, Any]] = {}
        self.documents: dict[str, dict[str, Any]] = {}  # id -> {dataset, name, text}
        self.batches: dict[str, dict[str, Any]] = {}  # batch -> {document, polls}
        self.violations: list[str] = []
        self.requests: Counter[str] = Counter()
        self.rate_limited_next = 0
        self.failing_names: set[str] = set()

    def check(self, schema: str, body: Any) -> None:
        """Validate a request body; a violation is recorded and answered 400 invalid_param."""
        errors = sorted(jsonschema.Draft202012Validator(SCHEMAS[schema]).iter_errors(body), key=str)
        if errors:
            self.violations.append(f"{schema}: {errors[0].message[:200]}")
            raise _error(400, "invalid_param", errors[0].message[:200])

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        """The knowledge base, or Dify's 404."""
        if dataset_id not in self.datasets:
            raise _error(404, "not_found", "Dataset not found.")
        return self.datasets[dataset_id]

    def new_batch(self, document_id: str) -> str:
        """A new indexing batch of the document (Dify returns one per create and update)."""
        batch = uuid.uuid4().hex[:20]
        self.batches[batch] = {"document": document_id, "polls": 0}
        return batch

    def document_body(self, document_id: str, status: str = "waiting") -> dict[str, Any]:
        """A ``Document`` as Dify answers it (no text)."""
        doc = self.documents[document_id]
        return {
            "id": document_id,
            "position": 1,
            "data_source_type": "upload_file",
            "name": doc["name"],
            "created_from": "api",
            "indexing_status": status,
            "enabled": True,
            "archived": False,
            "display_status": "queuing",
            "word_count": len(doc["text"].split()),
            "doc_form": "text_model",
        }


def _list_datasets(state: DifyState, query: dict[str, list[str]]) -> dict[str, Any]:
    keyword = (query.get("keyword") or [""])[0]
    page, limit = int((query.get("page") or ["1"])[0]), int((query.get("limit") or ["20"])[0])
    found = [d for d in state.datasets.values() if keyword in d["name"]]
    start = (page - 1) * min(limit, 100)
    data = found[start : start + min(limit, 100)]
    return {
        "data": data,
        "has_more": start + len(data) < len(found),
        "limit": limit,
        "total": len(found),
        "page": page,
    }


def _create_dataset(state: DifyState, body: Any) -> dict[str, Any]:
    state.check("create_dataset", body)
    if any(d["name"] == body["name"] for d in state.datasets.values()):
        raise _error(409, "dataset_name_duplicate", "The dataset name already exists.")
    dataset_id = str(uuid.uuid4())
    state.datasets[dataset_id] = {
        "id": dataset_id,
        "name": body["name"],
        "description": None,
        "provider": "vendor",
        "permission": body.get("permission", "only_me"),
        "data_source_type": None,
        "indexing_technique": body.get("indexing_technique"),
        "embedding_model": body.get("embedding_model"),
        "embedding_model_provider": body.get("embedding_model_provider"),
        "retrieval_model_dict": body.get("retrieval_model"),
        "document_count": 0,
    }
    return state.datasets[dataset_id]


def _document(state: DifyState, dataset_id: str, document_id: str) -> dict[str, Any]:
    doc = state.documents.get(document_id)
    if doc is None or doc["dataset"] != dataset_id:
        raise _error(404, "not_found", "Document not found.")
    return doc


def _indexing_status(state: DifyState, batch_id: str) -> dict[str, Any]:
    batch = state.batches.get(batch_id)
    if batch is None:
        raise _error(404, "not_found", "Documents not found.")
    batch["polls"] += 1
    doc = state.documents.get(batch["document"], {"name": ""})
    status = (
        "error"
        if doc["name"] in state.failing_names
        else "completed"
        if batch["polls"] >= state.polls_to_complete
        else "indexing"
    )
    return {
        "data": [
            {
                "id": batch["document"],
                "indexing_status": status,
                "completed_segments": 1 if status == "completed" else 0,
                "total_segments": 1,
                "error": "indexing failed" if status == "error" else None,
            }
        ]
    }


def _route(
    state: DifyState, method: str, parts: list[str], query: dict[str, list[str]], body: Any
) -> tuple[int, dict[str, Any] | None]:
    """Dispatch one authorised request; raises :class:`_Answer` for errors."""
    if parts == ["datasets"]:
        return 200, _list_datasets(state, query) if method == "GET" else _create_dataset(
            state, body
        )
    if len(parts) < 4:
        raise _error(404, "not_found", "The requested URL was not found on the server.")
    state.dataset(parts[1])
    if parts[2:] == ["document", "create-by-text"] and method == "POST":
        state.check("create_document", body)
        document_id = str(uuid.uuid4())
        state.documents[document_id] = {
            "dataset": parts[1],
            "name": body["name"],
            "text": body["text"],
            "indexing_technique": body.get("indexing_technique"),
        }
        return 200, {
            "document": state.document_body(document_id),
            "batch": state.new_batch(document_id),
        }
    if len(parts) == 5 and parts[2] == "documents" and parts[4] == "update-by-text":
        state.check("update_document", body)
        doc = _document(state, parts[1], parts[3])
        doc.update({"name": body.get("name", doc["name"]), "text": body.get("text", doc["text"])})
        return 200, {"document": state.document_body(parts[3]), "batch": state.new_batch(parts[3])}
    if len(parts) == 5 and parts[2] == "documents" and parts[4] == "indexing-status":
        return 200, _indexing_status(state, parts[3])
    if len(parts) == 4 and parts[2] == "documents" and method == "DELETE":
        _document(state, parts[1], parts[3])
        del state.documents[parts[3]]
        return 204, None
    raise _error(404, "not_found", "The requested URL was not found on the server.")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent."""

    def _handle(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            if parts[:1] != ["v1"]:
                raise _error(404, "not_found", "Not found.")
            if self.headers.get("Authorization") != f"Bearer {state.api_key}":
                raise _error(401, "unauthorized", "Access token is invalid")
            with state.lock:
                state.requests[method] += 1
                if state.rate_limited_next > 0:
                    state.rate_limited_next -= 1
                    raise _error(403, "forbidden", RATE_LIMIT_MESSAGE)
                body = json.loads(raw) if raw else None
                status, payload = _route(state, method, parts[1:], parse_qs(url.query), body)
        except _Answer as answer:
            status, payload = answer.status, answer.body
        except ValueError:
            status, payload = 400, {"status": 400, "code": "invalid_param", "message": "bad JSON"}
        self._send(status, payload)

    def _send(self, status: int, payload: dict[str, Any] | None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib hook names
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: DifyState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class LocalDifyServer:
    """The Knowledge API stand-in on ``127.0.0.1``; a context manager."""

    def __init__(self, *, api_key: str = "dataset-local-key", polls_to_complete: int = 2) -> None:
        self.state = DifyState(api_key, polls_to_complete)
        self._server = _Server(("127.0.0.1", 0), self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the API (``.../v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def violations(self) -> list[str]:
        """Requests that broke the documented contract."""
        return self.state.violations

    def rate_limit(self, next_requests: int) -> None:
        """Answer the next ``next_requests`` requests with Dify Cloud's 403 rate-limit error."""
        with self.state.lock:
            self.state.rate_limited_next = next_requests

    def fail_indexing(self, document_name: str) -> None:
        """Make indexing of the document of this name end in ``error``."""
        self.state.failing_names.add(document_name)

    def connection(self, **extra: Any) -> str:
        """An ``AIRFLOW_CONN_DIFY_KNOWLEDGE`` value (JSON) for this server."""
        return json.dumps(
            {
                "conn_type": "http",
                "host": self.url,
                "password": self.state.api_key,
                "extra": {"rate_limit_wait": 0.01, **extra},
            }
        )

    def __enter__(self) -> LocalDifyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
