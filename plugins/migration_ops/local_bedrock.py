"""A local server implementing Bedrock's Titan Text Embeddings v2 ``InvokeModel`` contract.

Bedrock cannot run here, so the real boto3 client (SigV4 signing, serialisation, error
parsing, botocore's retry modes) and the amazon provider's ``BedrockRuntimeHook`` talk to this
stand-in over HTTP. It implements ``POST /model/{modelId}/invoke`` as the AWS Bedrock user
guide documents it for ``amazon.titan-embed-text-v2:0``:

* request: ``Authorization`` (SigV4) present, ``modelId`` the Titan v2 id, a JSON body with only
  ``inputText`` (required, 1..50,000 characters), ``dimensions`` (256 | 512 | 1024),
  ``normalize`` (bool) and ``embeddingTypes``; anything else is a 400 ``ValidationException``;
* response: ``{"embedding", "inputTextTokenCount", "embeddingsByType": {"float"}}``; the
  vector is the deterministic hashing embedding (normalised), so a test knows what to expect;
* throttling: :meth:`LocalBedrockServer.throttle` scripts the next N calls (or every call for
  a text containing a marker) to answer HTTP 429 with ``x-amzn-ErrorType:
  ThrottlingException``, exactly as Bedrock does over its RPM quota.

Every call is counted per outcome (``calls``), so tests assert exact attempt counts. Texts are
never logged or kept.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from migration_ops.ai.providers import TITAN_MAX_CHARS, TITAN_V2, HashingProvider

ALLOWED_KEYS = {"inputText", "dimensions", "normalize", "embeddingTypes"}


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.throttle_next = 0
        self.throttle_marker: str | None = None
        self.hashing = HashingProvider()


def _validate(model_id: str, body: dict[str, Any]) -> str | None:
    """The ValidationException message for a request Titan v2 would refuse, else None."""
    if model_id != TITAN_V2:
        return f"The provided model identifier is invalid: {model_id[:60]}"
    unknown = set(body) - ALLOWED_KEYS
    if unknown:
        return f"extraneous key [{sorted(unknown)[0]}] is not permitted"
    text = body.get("inputText")
    if not isinstance(text, str) or not text or len(text) > TITAN_MAX_CHARS:
        return "expected inputText of 1 to 50000 characters"
    if body.get("dimensions", 1024) not in (256, 512, 1024):
        return "dimensions must be one of 256, 512, 1024"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: request lines are not logged (the paths carry nothing, but bodies do)."""

    def _send(self, status: int, payload: dict[str, Any], error_type: str | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "local-0000")
        if error_type:
            self.send_header("x-amzn-ErrorType", f"{error_type}:http://internal.amazon.com/")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - stdlib hook name
        """``POST /model/{modelId}/invoke``."""
        state = self.server.state
        parts = self.path.strip("/").split("/")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if len(parts) != 3 or parts[0] != "model" or parts[2] != "invoke":
            self._send(404, {"message": "Not Found"}, "UnknownOperationException")
            return
        if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            self._send(403, {"message": "Missing Authentication Token"}, "AccessDeniedException")
            return
        from urllib.parse import unquote

        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        problem = (
            "malformed JSON body"
            if not isinstance(body, dict)
            else _validate(unquote(parts[1]), body)
        )
        if problem:
            state.calls["invalid"] += 1
            self._send(400, {"message": problem}, "ValidationException")
            return
        assert isinstance(body, dict)
        with state.lock:
            marked = (
                state.throttle_marker is not None and state.throttle_marker in body["inputText"]
            )
            throttled = marked or state.throttle_next > 0
            if state.throttle_next > 0 and not marked:
                state.throttle_next -= 1
            state.calls["throttled" if throttled else "ok"] += 1
        if throttled:
            self._send(
                429,
                {"message": "Too many requests, please wait before trying again."},
                "ThrottlingException",
            )
            return
        self._send(200, _embedding(state, body))


def _embedding(state: _State, body: dict[str, Any]) -> dict[str, Any]:
    dims = int(body.get("dimensions", 1024))
    vector = state.hashing.embed([body["inputText"]])[0][:dims]
    if body.get("normalize", True):
        norm = float(np.linalg.norm(vector))
        vector = vector / norm if norm else vector
    floats = [float(x) for x in vector]
    return {
        "embedding": floats,
        "inputTextTokenCount": len(body["inputText"].split()),
        "embeddingsByType": {"float": floats},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state


class LocalBedrockServer:
    """The Titan v2 contract server on ``127.0.0.1``; a context manager."""

    def __init__(self, port: int = 0) -> None:
        self.state = _State()
        self._server = _Server(("127.0.0.1", port), self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, for ``endpoint_url`` / ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def calls(self) -> Counter[str]:
        """HTTP calls answered, by outcome: ``ok``, ``throttled``, ``invalid``."""
        return self.state.calls

    def throttle(self, next_calls: int = 0, *, marker: str | None = None) -> None:
        """Answer the next ``next_calls`` calls, or every call whose text holds ``marker``, 429."""
        with self.state.lock:
            self.state.throttle_next = next_calls
            self.state.throttle_marker = marker

    def connection(self) -> str:
        """An ``AIRFLOW_CONN_AWS_BEDROCK`` value (JSON) pointing the hook at this server."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": "local-access-key",
                "password": "local-secret-key",
                "extra": {"region_name": "us-east-1", "endpoint_url": self.url},
            }
        )

    def __enter__(self) -> LocalBedrockServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
