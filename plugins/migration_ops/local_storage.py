"""A local server implementing the Supabase Storage REST endpoints the ``supabase`` client uses.

Supabase Storage cannot run here, so the migration's real client (``supabase`` 2.34 /
``storage3``) talks to this stand-in instead, over HTTP, with the same paths, headers, bodies
and error shapes as the Storage API (``supabase/storage``: ``src/http/routes``), under the
``/storage/v1`` prefix the client puts in front of them:

==========================================  =========================================
``POST /bucket``, ``GET /bucket[/{id}]``    create (409 ``Duplicate``), get, list buckets
``POST /object/{bucket}/{key}``             upload (multipart ``file``, ``cacheControl``,
                                            ``metadata``; ``x-upsert: true`` replaces,
                                            otherwise an existing key is 409 ``Duplicate``)
``PUT /object/{bucket}/{key}``              replace an existing object
``GET /object/info/{bucket}/{key}``         object info: size, mime type, etag, user metadata
``HEAD /object/{bucket}/{key}``             existence and headers, no body
``GET /object/{bucket}/{key}``              the bytes
``POST /object/list/{bucket}``              one folder level under ``prefix`` (files and
                                            sub-folders), ``search``, ``sortBy``, paging
``DELETE /object/{bucket}``                 remove ``prefixes``
==========================================  =========================================

Errors are ``{"statusCode": "<code>", "error": ..., "message": ...}`` with that HTTP status
(``not_found`` for a missing object, as the client's ``exists()`` expects). Requests must
carry ``Authorization: Bearer <service key>``; object keys are checked with Storage's own
key rule. Bytes are stored on disk under ``root/<bucket>/<key>`` (metadata beside them in
``root/.meta``), so a test can read back exactly what arrived, and a server restarted on the
same root (``make demo`` reruns) still has every object.

Also here: :func:`write_expected_objects`, the sandbox's media manifest as the object copy's
expected-objects listing (the demo and the tests use it; the migration never reads the
sandbox schema).

Command line: ``python -m migration_ops.local_storage --root .local/storage [--port 54321]
[--host 0.0.0.0] [--key KEY]`` (the key defaults to ``$STORAGE_SERVICE_KEY``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

#: The Storage API's key rule (``isValidKey`` in supabase/storage): ASCII word characters and
#: a few punctuation marks; nothing else is accepted as an object key.
VALID_KEY = re.compile(r"^(\w|/|!|-|\.|\*|'|\(|\)| |&|\$|@|=|;|:|\+|,|\?)*$", re.ASCII)
PREFIX = "/storage/v1/"


class StorageError(Exception):
    """An API error: HTTP status, Storage error code and message."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class LocalStorage:
    """Buckets and objects on disk; one lock serialises writes (reads see whole files only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ paths
    def object_path(self, bucket: str, key: str) -> Path:
        """Where the bytes of ``bucket/key`` are kept."""
        return self.root / bucket / key

    def _meta_path(self, bucket: str, key: str) -> Path:
        return self.root / ".meta" / bucket / f"{key}.json"

    def _bucket_path(self, bucket: str) -> Path:
        return self.root / ".buckets" / f"{bucket}.json"

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)

    # ------------------------------------------------------------------ buckets
    def bucket(self, bucket_id: str) -> dict[str, Any]:
        """The bucket's record, or a 404."""
        path = self._bucket_path(bucket_id)
        if not path.is_file():
            raise StorageError(404, "Bucket not found", "Bucket not found")
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return record

    def buckets(self) -> list[dict[str, Any]]:
        """Every bucket's record."""
        folder = self.root / ".buckets"
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return [json.loads(p.read_text(encoding="utf-8")) for p in files]

    def create_bucket(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a bucket; 409 when it exists."""
        bucket_id = str(body.get("id") or body.get("name") or "")
        if not bucket_id or not VALID_KEY.fullmatch(bucket_id) or "/" in bucket_id:
            raise StorageError(400, "Invalid Input", "The bucket name is invalid")
        with self._lock:
            path = self._bucket_path(bucket_id)
            if path.exists():
                raise StorageError(409, "Duplicate", "The resource already exists")
            now = _now()
            record = {
                "id": bucket_id,
                "name": str(body.get("name") or bucket_id),
                "owner": "",
                "public": bool(body.get("public", False)),
                "file_size_limit": body.get("file_size_limit"),
                "allowed_mime_types": body.get("allowed_mime_types"),
                "created_at": now,
                "updated_at": now,
            }
            self._write(path, json.dumps(record).encode())
        return {"name": bucket_id}

    # ------------------------------------------------------------------ objects
    @staticmethod
    def check_key(key: str) -> None:
        """Storage's key rule, plus no empty or dot segments (the client refuses those too)."""
        parts = key.split("/")
        if not key or not VALID_KEY.fullmatch(key) or any(p in ("", ".", "..") for p in parts):
            raise StorageError(400, "InvalidKey", f"Invalid key: {key}")

    def info(self, bucket: str, key: str) -> dict[str, Any]:
        """The object's record (what ``GET /object/info`` returns), or a 404."""
        self.bucket(bucket)
        path = self._meta_path(bucket, key)
        if not path.is_file():
            raise StorageError(404, "not_found", "Object not found")
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return record

    def read(self, bucket: str, key: str) -> tuple[dict[str, Any], bytes]:
        """The object's record and bytes."""
        record = self.info(bucket, key)
        return record, self.object_path(bucket, key).read_bytes()

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        user_metadata: dict[str, Any] | None,
        upsert: bool,
        must_exist: bool = False,
    ) -> dict[str, Any]:
        """Store an object (create, upsert or update) and return its record."""
        self.check_key(key)
        self.bucket(bucket)
        with self._lock:
            meta_path = self._meta_path(bucket, key)
            exists = meta_path.is_file()
            if exists and not upsert and not must_exist:
                raise StorageError(409, "Duplicate", "The resource already exists")
            if must_exist and not exists:
                raise StorageError(404, "not_found", "Object not found")
            previous = json.loads(meta_path.read_text(encoding="utf-8")) if exists else {}
            now = _now()
            record = {
                "id": previous.get("id") or str(uuid.uuid4()),
                "name": key,
                "version": str(uuid.uuid4()),
                "bucket_id": bucket,
                "size": len(data),
                "content_type": content_type,
                "cache_control": f"max-age={cache_control}",
                "etag": f'"{hashlib.md5(data).hexdigest()}"',  # noqa: S324 - an etag, like S3's
                "metadata": user_metadata,
                "last_modified": now,
                "created_at": previous.get("created_at") or now,
            }
            self._write(self.object_path(bucket, key), data)
            self._write(meta_path, json.dumps(record).encode())
        return record

    def keys(self, bucket: str) -> list[str]:
        """Every object key of the bucket, sorted."""
        base = self.root / ".meta" / bucket
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(base))[: -len(".json")] for p in base.rglob("*.json"))

    def list_folder(self, bucket: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """One folder level under ``prefix``: sub-folders (``id`` null) and files."""
        self.bucket(bucket)
        prefix = str(body.get("prefix") or "").strip("/")
        prefix = f"{prefix}/" if prefix else ""
        search = str(body.get("search") or "").lower()
        entries: dict[str, dict[str, Any]] = {}
        for key in self.keys(bucket):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            name, _, deeper = rest.partition("/")
            if search and not name.lower().startswith(search):
                continue
            if deeper:
                entries.setdefault(
                    name,
                    {
                        "name": name,
                        "id": None,
                        "updated_at": None,
                        "created_at": None,
                        "last_accessed_at": None,
                        "metadata": None,
                    },
                )
            else:
                record = self.info(bucket, key)
                entries[name] = {
                    "name": name,
                    "id": record["id"],
                    "updated_at": record["last_modified"],
                    "created_at": record["created_at"],
                    "last_accessed_at": record["last_modified"],
                    "metadata": {
                        "eTag": record["etag"],
                        "size": record["size"],
                        "mimetype": record["content_type"],
                        "cacheControl": record["cache_control"],
                        "lastModified": record["last_modified"],
                        "contentLength": record["size"],
                        "httpStatusCode": 200,
                    },
                }
        sort = body.get("sortBy") or {}
        column = sort.get("column") or "name"
        rows = sorted(
            entries.values(),
            key=lambda e: (e.get(column) or "", e["name"]),
            reverse=sort.get("order") == "desc",
        )
        offset = int(body.get("offset") or 0)
        limit = int(body.get("limit") or 100)
        return rows[offset : offset + limit]

    def remove(self, bucket: str, keys: list[str]) -> list[dict[str, Any]]:
        """Delete objects; return the records of those that existed."""
        removed = []
        with self._lock:
            for key in keys:
                meta = self._meta_path(bucket, key)
                if meta.is_file():
                    removed.append(json.loads(meta.read_text(encoding="utf-8")))
                    meta.unlink()
                    self.object_path(bucket, key).unlink(missing_ok=True)
        return removed


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # -------------------------------------------------------------- plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: object keys may carry file names."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(
        self,
        status: int,
        payload: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        head: bool = False,
    ) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        content_type = "application/json" if raw is None else "application/octet-stream"
        for name, value in {"Content-Type": content_type, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, method: str) -> None:
        body = self._body() if method in ("POST", "PUT", "DELETE") else b""
        try:
            if self.headers.get("Authorization") != f"Bearer {self.server.key}":
                raise StorageError(403, "Unauthorized", "invalid signature")
            path = urlsplit(self.path).path
            if not path.startswith(PREFIX):
                raise StorageError(404, "not_found", "Route not found")
            parts = [unquote(p) for p in path[len(PREFIX) :].split("/")]
            self._dispatch(method, parts, body)
        except StorageError as error:
            payload = {
                "statusCode": str(error.status),
                "error": error.error,
                "message": error.message,
            }
            self._send(error.status, payload, head=method == "HEAD")

    def _dispatch(self, method: str, parts: list[str], body: bytes) -> None:
        store = self.server.storage
        if parts[0] == "bucket":
            if method == "POST" and len(parts) == 1:
                self._send(200, store.create_bucket(json.loads(body or b"{}")))
            elif method == "GET" and len(parts) == 1:
                self._send(200, store.buckets())
            elif method == "GET" and len(parts) == 2:
                self._send(200, store.bucket(parts[1]))
            else:
                raise StorageError(404, "not_found", "Route not found")
            return
        if parts[0] != "object" or len(parts) < 2:
            raise StorageError(404, "not_found", "Route not found")
        rest = parts[1:]
        if method == "POST" and rest[0] == "list" and len(rest) == 2:
            self._send(200, store.list_folder(rest[1], json.loads(body or b"{}")))
        elif method == "GET" and rest[0] == "info":
            rest = rest[2:] if len(rest) > 2 and rest[1] == "authenticated" else rest[1:]
            self._send(200, store.info(rest[0], "/".join(rest[1:])))
        elif method == "DELETE" and len(rest) == 1:
            self._send(
                200, store.remove(rest[0], list(json.loads(body or b"{}").get("prefixes", [])))
            )
        elif method in ("GET", "HEAD"):
            rest = rest[1:] if rest[0] == "authenticated" else rest
            record, data = store.read(rest[0], "/".join(rest[1:]))
            headers = {"ETag": record["etag"], "Cache-Control": record["cache_control"]}
            self._send(
                200,
                raw=data,
                headers={"Content-Type": record["content_type"], **headers},
                head=method == "HEAD",
            )
        elif method in ("POST", "PUT") and len(rest) >= 2:
            self._upload(method, rest[0], "/".join(rest[1:]), body)
        else:
            raise StorageError(404, "not_found", "Route not found")

    def _upload(self, method: str, bucket: str, key: str, body: bytes) -> None:
        content_type = self.headers.get("Content-Type", "")
        fields: dict[str, tuple[str, bytes]] = {}
        if content_type.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + body
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                fields[str(name)] = (
                    part.get_content_type(),
                    payload if isinstance(payload, bytes) else b"",
                )
        else:  # a raw body upload (also allowed by the API)
            fields["file"] = (content_type or "application/octet-stream", body)
        if "file" not in fields:
            raise StorageError(400, "Invalid Input", "No file in the request")
        mime, data = fields["file"]
        metadata_field = fields.get("metadata", ("", b""))[1]
        record = self.server.storage.put(
            bucket,
            key,
            data,
            content_type=mime,
            cache_control=fields.get("cacheControl", ("", b"3600"))[1].decode() or "3600",
            user_metadata=json.loads(metadata_field) if metadata_field else None,
            upsert=method == "PUT" or self.headers.get("x-upsert") == "true",
            must_exist=method == "PUT",
        )
        self._send(200, {"Key": f"{bucket}/{key}", "id": record["id"]})

    def do_GET(self) -> None:  # noqa: N802 - stdlib hook names
        """Handle GET."""
        self._route("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        """Handle HEAD."""
        self._route("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        """Handle POST."""
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802
        """Handle PUT."""
        self._route("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        """Handle DELETE."""
        self._route("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], storage: LocalStorage, key: str) -> None:
        super().__init__(address, _Handler)
        self.storage = storage
        self.key = key


class LocalStorageServer:
    """The Storage stand-in on ``127.0.0.1`` (or ``host``) in a background thread.

    Use as a context manager (``with LocalStorageServer(root) as server: ...``) or call
    :meth:`start` / :meth:`stop`. ``host="0.0.0.0"`` serves other containers (the compose
    file's ``storage`` service).
    """

    def __init__(
        self,
        root: Path,
        *,
        key: str = "local-service-role-key",
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.storage = LocalStorage(root)
        self.key = key
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Project URL to give the ``supabase`` client (it appends ``/storage/v1``)."""
        assert self._server is not None, "server not started"
        return f"http://{self._host}:{self._server.server_address[1]}"

    def start(self) -> LocalStorageServer:
        """Bind and serve in a daemon thread."""
        self._server = _Server((self._host, self._port), self.storage, self.key)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-storage", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalStorageServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def connection(
        self,
        media_root: Path,
        *,
        bucket: str = "legacy-files",
        expected_objects: Path | None = None,
    ) -> str:
        """The ``AIRFLOW_CONN_SUPABASE_STORAGE`` value (JSON form) pointing at this server."""
        extra: dict[str, str] = {"bucket": bucket, "media_root": str(media_root)}
        if expected_objects is not None:
            extra["expected_objects"] = str(expected_objects)
        return json.dumps(
            {"conn_type": "http", "host": self.url, "password": self.key, "extra": extra}
        )


def write_expected_objects(legacy_dsn: str, path: Path) -> Path:
    """Write the sandbox's media manifest (every file meant to have bytes) as a listing.

    The sandbox gives bytes to ~2 % of its ``dispatch_file`` rows and records them, including
    the ones whose bytes it deliberately left out (the ``file_missing_media`` defect), in
    ``sandbox.media_manifest``; that set is the object copy's scope for a sandbox.
    """
    from migration_ops.db import connect_legacy

    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        connect_legacy(legacy_dsn, application_name="migration:storage:manifest") as conn,
        path.open("w", encoding="utf-8") as out,
    ):
        out.write("# relative paths the sandbox media store is expected to hold\n")
        for (relative,) in conn.execute(
            "select relative_path from sandbox.media_manifest order by file_id"
        ):
            out.write(f"{relative}\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; print the project URL and key."""
    parser = argparse.ArgumentParser(prog="python -m migration_ops.local_storage")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=54321)
    parser.add_argument(
        "--key", default=os.environ.get("STORAGE_SERVICE_KEY", "local-service-role-key")
    )
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other hosts")
    args = parser.parse_args(argv)
    server = LocalStorageServer(args.root, key=args.key, port=args.port, host=args.host).start()
    # the key is a secret (the compose file's STORAGE_SERVICE_KEY): never printed
    print(f"Supabase Storage stand-in on {server.url}; Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
