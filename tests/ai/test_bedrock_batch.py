"""Bedrock batch inference's S3 ends against a local S3 server (moto, over HTTP, real boto3)."""

from __future__ import annotations

import json

import boto3
import pytest

from migration_ops.ai import bedrock_batch
from migration_ops.ai.providers import HashingProvider
from tests.s3_server import s3_server


def test_jsonl_in_and_out_join_by_record_id_whatever_the_order() -> None:
    with s3_server() as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )
        s3.create_bucket(Bucket="embeddings")
        items = [("row-a", "rescan the molar"), ("row-b", "intrude incisors"), ("row-c", "ipr")]
        uri, keys = bedrock_batch.write_input(s3, "embeddings", "job-1", items)
        assert uri == "s3://embeddings/job-1/records.jsonl"
        assert keys == {"R0000000000": "row-a", "R0000000001": "row-b", "R0000000002": "row-c"}
        lines = s3.get_object(Bucket="embeddings", Key="job-1/records.jsonl")["Body"].read()
        first = json.loads(lines.decode().splitlines()[0])
        assert first == {
            "recordId": "R0000000000",
            "modelInput": {"inputText": "rescan the molar", "dimensions": 1024, "normalize": True},
        }
        # what Bedrock writes: out of order, one line failed, one missing
        vector = HashingProvider().embed(["intrude incisors"])[0].tolist()
        out_lines = [
            {"recordId": "R0000000001", "modelInput": {}, "modelOutput": {"embedding": vector}},
            {
                "recordId": "R0000000000",
                "modelInput": {},
                "error": {"errorCode": 400, "errorMessage": "echoes input"},
            },
        ]
        s3.put_object(
            Bucket="embeddings",
            Key="job-1/out/records.jsonl.out",
            Body="\n".join(json.dumps(x) for x in out_lines).encode(),
        )
        s3.put_object(Bucket="embeddings", Key="job-1/out/manifest.json.out", Body=b"{}")
        got = bedrock_batch.read_output(s3, "embeddings", "job-1/out", keys)
    assert list(got.vectors) == ["row-b"] and got.vectors["row-b"].shape == (1024,)
    assert got.failures == {"row-a": "400", "row-c": "missing"}


def test_over_long_text_is_refused_before_upload() -> None:
    with pytest.raises(ValueError, match="outside Titan"):
        bedrock_batch.write_input(None, "b", "p", [("k", "x" * 50_001)])
