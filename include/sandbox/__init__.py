"""Sandbox legacy database: the production Django schema at a chosen scale, defects included.

``build_sandbox`` fills a PostgreSQL database with synthetic, deterministic data shaped
like the legacy system (tables, volumes, relationships and the data defects documented
for production), so the migration can be developed, demonstrated and tested without
touching real patient data. See ``docs/sandbox.md``.
"""

from include.sandbox.generator import build_sandbox, media_complete, sandbox_exists
from include.sandbox.media import media_relative_path
from include.sandbox.volumes import scaled_volumes

__all__ = [
    "build_sandbox",
    "media_complete",
    "media_relative_path",
    "sandbox_exists",
    "scaled_volumes",
]
