"""The object copy step and the Storage stand-in, with the real ``supabase`` client.

The copy runs on a hand-made ``staging.files__transformed``/``__validated`` pair in a fresh
database and a media root of real files; the local Storage server keeps what arrives on
disk, so every test reads back the bytes, checksums and metadata that reached "Storage".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from storage3.exceptions import StorageApiError
from supabase import create_client

from include.entities import get_phase
from include.entities.phase2_relationships import FILES
from migration_ops import pipeline, quarantine, runs, staging, storage
from migration_ops.db import connect
from migration_ops.errors import MigrationError, ValidationFailed
from migration_ops.local_storage import LocalStorageServer, StorageError
from migration_ops.storage import StorageSettings, copy_objects, settings_from_connection
from migration_ops.validate import QuarantineLimit

BUCKET = "legacy-files"
RULE = "files.source_object_present"
#: (legacy id, source path, object key, mime type, bytes or None for a missing source)
ROWS: list[tuple[int, str, str, str, bytes | None]] = [
    (1, "files/aa/u1/scan.stl", "u1/scan.stl", "model/stl", b"solid x\nendsolid x\n"),
    (2, "files/bb/u2/plan.pdf", "u2/plan.pdf", "application/pdf", b"%PDF-1.4 tiny"),
    (3, "files/cc/u3/photo.jpg", "u3/photo.jpg", "image/jpeg", b"\xff\xd8\xff\xd9"),
    (4, "files/dd/u4/gone.stl", "u4/gone.stl", "model/stl", None),
]


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    for _, path, _, _, content in ROWS:
        if content is not None:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)
    return root


@pytest.fixture
def server(tmp_path: Path):
    with LocalStorageServer(tmp_path / "storage") as running:
        yield running


@pytest.fixture
def staged(make_db) -> str:
    """A target with the migration schema and a validated files table of :data:`ROWS`."""
    dsn = make_db("p2copy")
    runs.apply_schema(dsn, get_phase(1))
    with connect(dsn) as conn:
        conn.execute(
            """
            create schema if not exists staging;
            create unlogged table staging.files__transformed (
                legacy_file_id integer, mime_type text, storage_bucket text, storage_path text,
                sha256 text, _source_path text, _object_key text);
            """
        )
        with conn.cursor().copy(
            "copy staging.files__transformed (legacy_file_id, _source_path, _object_key, mime_type)"
            " from stdin"
        ) as copy:
            for legacy_id, path, key, mime_type, _ in ROWS:
                copy.write_row((legacy_id, path, key, mime_type))
        conn.execute(
            "create unlogged table staging.files__validated as select * from staging.files__transformed"
        )
    return dsn


def settings_for(server: LocalStorageServer, media: Path, **extra: Any) -> StorageSettings:
    return StorageSettings(url=server.url, key=server.key, bucket=BUCKET, media_root=media, **extra)


def validated(dsn: str) -> dict[int, dict[str, Any]]:
    with connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("select * from staging.files__validated")
        return {r["legacy_file_id"]: r for r in cur.fetchall()}


def quarantined(dsn: str) -> set[tuple[int, str]]:
    """The run's staged quarantine decisions (they reach migration.quarantine with the load)."""
    with connect(dsn) as conn:
        return {
            (int(r[0]), r[1])
            for r in conn.execute("select legacy_id, rule from staging.files__quarantine")
        }


LIMIT = QuarantineLimit(fraction=1.0)


# ----------------------------------------------------------------------------- the copy
@pytest.mark.e2e
def test_bytes_arrive_with_their_sha256_and_missing_sources_are_quarantined(
    staged, media, server
) -> None:
    outcome = copy_objects(staged, FILES, settings_for(server, media), limit=LIMIT)
    assert (outcome.uploaded, outcome.skipped, outcome.missing, outcome.out_of_scope) == (
        3,
        0,
        1,
        0,
    )
    assert (outcome.quarantined_rows, outcome.validated_rows) == (1, 3)
    assert quarantined(staged) == {(4, RULE)}
    with connect(staged) as conn:
        detail = conn.execute("select detail from staging.files__quarantine").fetchone()[0]
    assert "missing" in detail and "gone" not in detail, "a reason, never a file name"
    rows = validated(staged)
    assert set(rows) == {1, 2, 3}
    for legacy_id, _path, key, mime_type, content in ROWS[:3]:
        assert content is not None
        digest = hashlib.sha256(content).hexdigest()
        assert (rows[legacy_id]["storage_bucket"], rows[legacy_id]["storage_path"]) == (BUCKET, key)
        assert rows[legacy_id]["sha256"] == digest
        assert server.storage.object_path(BUCKET, key).read_bytes() == content
        info = server.storage.info(BUCKET, key)
        assert info["metadata"] == {"sha256": digest} and info["content_type"] == mime_type
    assert server.storage.bucket(BUCKET)["public"] is False


@pytest.mark.e2e
def test_a_rerun_skips_what_is_stored_and_replaces_what_changed(staged, media, server) -> None:
    settings = settings_for(server, media)
    copy_objects(staged, FILES, settings, limit=LIMIT)
    versions = {key: server.storage.info(BUCKET, key)["version"] for _, _, key, _, c in ROWS if c}
    (media / ROWS[1][1]).write_bytes(b"%PDF-1.4 revised")
    with connect(staged) as conn:  # what run 2's validate step does first
        quarantine.reset(conn, FILES)
    quarantine.rebuild_validated(staged, FILES)
    second = copy_objects(staged, FILES, settings, limit=LIMIT)
    assert (second.uploaded, second.skipped, second.missing) == (1, 2, 1)
    after = {key: server.storage.info(BUCKET, key)["version"] for key in versions}
    assert after["u1/scan.stl"] == versions["u1/scan.stl"]
    assert after["u2/plan.pdf"] != versions["u2/plan.pdf"]
    assert validated(staged)[2]["sha256"] == hashlib.sha256(b"%PDF-1.4 revised").hexdigest()


@pytest.mark.e2e
def test_an_interrupted_copy_resumes_where_it_stopped(staged, media, server, monkeypatch) -> None:
    real_put = server.storage.put
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise StorageError(503, "ServiceUnavailable", "try again")
        return real_put(*args, **kwargs)

    monkeypatch.setattr(server.storage, "put", flaky)
    settings = settings_for(server, media, workers=1)
    with pytest.raises(StorageApiError):
        copy_objects(staged, FILES, settings, limit=LIMIT)
    stored_first = server.storage.keys(BUCKET)
    assert len(stored_first) == 1, "one object made it before the failure"
    version = server.storage.info(BUCKET, stored_first[0])["version"]

    monkeypatch.setattr(server.storage, "put", real_put)  # the retry, Storage healthy again
    outcome = copy_objects(staged, FILES, settings, limit=LIMIT)
    assert (outcome.uploaded, outcome.skipped) == (2, 1)
    assert server.storage.info(BUCKET, stored_first[0])["version"] == version
    assert len(server.storage.keys(BUCKET)) == 3


@pytest.mark.e2e
def test_only_listed_objects_are_in_scope(staged, media, server, tmp_path) -> None:
    listing = tmp_path / "expected.txt"
    listing.write_text(f"# sandbox manifest\n{ROWS[0][1]}\n\n{ROWS[3][1]}\n{ROWS[0][1]}\n")
    settings = settings_for(server, media, expected_objects=listing)
    outcome = copy_objects(staged, FILES, settings, limit=LIMIT)
    assert (outcome.uploaded, outcome.missing, outcome.out_of_scope) == (1, 1, 2)
    rows = validated(staged)
    assert rows[1]["sha256"] is not None
    assert rows[2]["storage_path"] is None and rows[3]["storage_path"] is None, "metadata only"
    assert quarantined(staged) == {(4, RULE)}


@pytest.mark.e2e
def test_a_source_outside_the_media_root_is_never_read(staged, media, server, tmp_path) -> None:
    (tmp_path / "secret.txt").write_text("outside")
    with connect(staged) as conn:
        for table in ("transformed", "validated"):
            conn.execute(
                f"update staging.files__{table} set _source_path = '../secret.txt' "
                "where legacy_file_id = 3"
            )
    outcome = copy_objects(staged, FILES, settings_for(server, media), limit=LIMIT)
    assert outcome.missing == 2
    assert quarantined(staged) == {(3, RULE), (4, RULE)}
    assert not server.storage.object_path(BUCKET, "u3/photo.jpg").exists()


@pytest.mark.e2e
def test_too_many_missing_sources_fail_the_step(staged, media, server) -> None:
    with pytest.raises(ValidationFailed, match=r"\[files\] rule files.source_object_present"):
        copy_objects(staged, FILES, settings_for(server, media), limit=QuarantineLimit(0.0, 0))


@pytest.mark.e2e
def test_the_pipeline_step_records_the_quarantine_for_reconciliation(staged, media, server) -> None:
    run = runs.begin_run(staged, get_phase(2), "step", triggered_by="pytest", params={})
    with connect(staged) as conn:
        staging.claim(conn, run.run_id, FILES, empty=False)
    runs.record_stage(staged, run, FILES, "validated", quarantined_rows=0, source_rows=4)
    counts = pipeline.object_copy_step(
        staged, run, FILES, settings=settings_for(server, media), limit=LIMIT
    )
    assert counts["quarantined_rows"] == 1 and counts["validated_rows"] == 3
    with connect(staged) as conn:
        stage, held = conn.execute(
            "select stage, quarantined_rows from migration.checkpoints where run_id = 'step'"
        ).fetchone()
    assert (stage, held) == ("validated", 1)


# ----------------------------------------------------------------------------- settings
class _Conn:
    def __init__(self, host: str | None, password: str | None, extra: dict[str, Any], **kw: Any):
        self.host, self.password, self.extra_dejson = host, password, extra
        self.schema, self.conn_type, self.port = (
            kw.get("schema"),
            kw.get("conn_type"),
            kw.get("port"),
        )


def test_settings_from_a_connection(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(storage.MEDIA_ROOT_ENV, raising=False)
    conn = _Conn("abc.supabase.co", "secret-key", {"media_root": "/m", "workers": "3"})
    settings = settings_from_connection(conn)  # type: ignore[arg-type]
    assert settings.url == "https://abc.supabase.co" and settings.bucket == storage.DEFAULT_BUCKET
    assert (settings.media_root, settings.workers, settings.expected_objects) == (
        Path("/m"),
        3,
        None,
    )
    assert "secret-key" not in repr(settings)
    local = _Conn("127.0.0.1", "k", {"bucket": "b"}, schema="http", port=9000)
    monkeypatch.setenv(storage.MEDIA_ROOT_ENV, str(tmp_path))
    settings = settings_from_connection(local)  # type: ignore[arg-type]
    assert (settings.url, settings.bucket, settings.media_root) == (
        "http://127.0.0.1:9000",
        "b",
        tmp_path,
    )


def test_missing_configuration_fails_clearly(monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SUPABASE_STORAGE", raising=False)
    monkeypatch.delenv(storage.MEDIA_ROOT_ENV, raising=False)
    with pytest.raises(
        MigrationError, match=r"\[files\] rule object_copy.configured: .*AIRFLOW_CONN"
    ):
        storage.env_settings("files")
    with pytest.raises(MigrationError, match="needs the Storage URL as host and the service key"):
        settings_from_connection(_Conn("h", None, {"media_root": "/m"}))  # type: ignore[arg-type]
    with pytest.raises(MigrationError, match="no legacy media root"):
        settings_from_connection(_Conn("h", "k", {}))  # type: ignore[arg-type]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SUPABASE_STORAGE",
        json.dumps(
            {
                "conn_type": "http",
                "host": "http://x:1",
                "password": "k",
                "extra": {"media_root": "/m"},
            }
        ),
    )
    assert storage.env_settings("files").url == "http://x:1"


def test_run_entity_refuses_to_guess_a_storage(monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SUPABASE_STORAGE", raising=False)
    calls: list[str] = []
    for step in ("transform_step", "validate_step", "load_step"):
        monkeypatch.setattr(pipeline, step, lambda *a, _s=step, **k: calls.append(_s))
    run = runs.RunContext("r", 2, "2025-11-01T00:00:00+00:00")
    with pytest.raises(MigrationError, match="Supabase Storage is not configured"):
        pipeline.run_entity("target", run, FILES)
    assert calls == ["transform_step", "validate_step"], "nothing loads"


# ----------------------------------------------------------------------------- the stand-in
def test_the_stand_in_speaks_the_storage_api(tmp_path) -> None:
    with LocalStorageServer(tmp_path) as server:
        client = create_client(server.url, server.key).storage
        client.create_bucket("b")
        with pytest.raises(StorageApiError) as duplicate:
            client.create_bucket("b")
        assert (duplicate.value.status, duplicate.value.code) == ("409", "Duplicate")
        bucket = client.from_("b")
        assert not bucket.exists("a/one.txt")
        for key in ("a/one.txt", "a/two.txt", "a/deeper/three.txt", "top.txt"):
            bucket.upload(key, key.encode(), {"content-type": "text/plain"})
        with pytest.raises(StorageApiError) as exists:
            bucket.upload("top.txt", b"again")
        assert exists.value.status == "409"
        bucket.upload("top.txt", b"again", {"upsert": "true"})
        assert bucket.download("top.txt") == b"again"
        bucket.update("a/one.txt", b"updated")
        assert server.storage.object_path("b", "a/one.txt").read_bytes() == b"updated"
        assert bucket.exists("a/one.txt")
        names = [e["name"] for e in bucket.list("a")]
        assert names == ["deeper", "one.txt", "two.txt"]
        assert [e["id"] is None for e in bucket.list("a")] == [True, False, False]
        assert [
            e["name"] for e in bucket.list("a", {"search": "t", "sortBy": {"order": "desc"}})
        ] == ["two.txt"]
        assert [e["name"] for e in bucket.list("a", {"limit": 1, "offset": 1})] == ["one.txt"]
        assert bucket.list()[0]["name"] == "a"
        with pytest.raises(StorageApiError) as invalid:
            bucket.upload("a/é.txt", b"x")
        assert invalid.value.status == "400"
        with pytest.raises(StorageApiError) as unknown:
            bucket.info("nope.txt")
        assert (unknown.value.status, unknown.value.code) == ("404", "not_found")
        assert [r["name"] for r in bucket.remove(["top.txt"])] == ["top.txt"]
        assert not bucket.exists("top.txt")
        with pytest.raises(StorageApiError) as denied:
            create_client(server.url, "wrong-key").storage.get_bucket("b")
        assert denied.value.status == "403"
