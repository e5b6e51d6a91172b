"""Bedrock batch inference for a large first backfill: S3 JSONL in, S3 JSONL out.

Optional path beside on-demand ``InvokeModel`` (about half the price, no RPM throttling, but
minutes to hours per job). The queue's rows are written as ``records.jsonl`` under an S3
prefix, one ``{"recordId", "modelInput"}`` line each (``modelInput`` is the InvokeModel body);
Bedrock writes ``records.jsonl.out`` with ``modelOutput`` or an ``error`` per line, **in no
guaranteed order**, so lines are joined back by ``recordId``. Record ids are short
alphanumeric ids (``R`` + 10 digits; the docs ask for alphanumeric, an older version for 11
characters), mapped back to queue rows here; an ``error`` line goes back to the on-demand path.

The job itself is ``create_model_invocation_job`` on the ``bedrock`` client (or the amazon
provider's ``BedrockBatchInferenceOperator`` in deferrable mode); only the S3 ends are here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from migration_ops.ai.providers import DIMENSIONS, TITAN_MAX_CHARS

INPUT_FILE = "records.jsonl"


def record_id(number: int) -> str:
    """The short alphanumeric record id of the ``number``-th item of a job."""
    return f"R{number:010d}"


@dataclass
class BatchOutput:
    """Vectors by item key, and failed items with Bedrock's error code (never its message)."""

    vectors: dict[Any, np.ndarray] = field(default_factory=dict)
    failures: dict[Any, str] = field(default_factory=dict)


def write_input(
    s3: Any, bucket: str, prefix: str, items: Sequence[tuple[Any, str]]
) -> tuple[str, dict[str, Any]]:
    """Write the job's JSONL input; return its S3 URI and ``recordId`` → item key.

    Texts over Titan's limit are refused here, before anything is uploaded.
    """
    keys: dict[str, Any] = {}
    lines = []
    for number, (key, text) in enumerate(items):
        if not text or len(text) > TITAN_MAX_CHARS:
            raise ValueError(f"item {number}: text outside Titan's 1..50000 characters")
        rid = record_id(number)
        keys[rid] = key
        body = {"inputText": text, "dimensions": DIMENSIONS, "normalize": True}
        lines.append(json.dumps({"recordId": rid, "modelInput": body}))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{INPUT_FILE}", Body="\n".join(lines).encode())
    return f"s3://{bucket}/{prefix}/{INPUT_FILE}", keys


def read_output(s3: Any, bucket: str, prefix: str, keys: dict[str, Any]) -> BatchOutput:
    """Read every ``*.jsonl.out`` under ``prefix`` and join its lines by ``recordId``.

    Items with no output line at all count as failed (``missing``), so nothing is lost.
    """
    out = BatchOutput()
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    for item in listing:
        if not item["Key"].endswith(".jsonl.out"):
            continue
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
        for line in filter(None, body.splitlines()):
            record = json.loads(line)
            key = keys.get(record.get("recordId"))
            if key is None:
                continue
            if "error" in record:
                out.failures[key] = str(record["error"].get("errorCode", "error"))
            else:
                vector = record["modelOutput"]["embedding"]
                out.vectors[key] = np.asarray(vector, dtype=np.float32)
    for key in keys.values():
        if key not in out.vectors and key not in out.failures:
            out.failures[key] = "missing"
    return out
