"""Auditor sign-off: row-level proof legacy ↔ target, preflight, HTML reports and charts.

See ``docs/decisions/0010-row-level-proof.md`` and ``docs/auditor-guide.md``.
"""
