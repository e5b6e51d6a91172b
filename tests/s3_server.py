"""A local S3-compatible server for tests: moto in server mode, on a free loopback port.

The backup store talks to it through the real amazon provider ``S3Hook`` and boto3, over
HTTP, exactly as it would talk to AWS; only the endpoint differs (connection extra
``endpoint_url``).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def s3_server() -> Iterator[str]:
    """Run a moto S3 server for the duration of the block; yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def aws_connection(endpoint: str) -> str:
    """An ``AIRFLOW_CONN_*`` value (JSON) for an aws connection to the local server."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )
