"""Errors that name the entity, the legacy id (where there is one) and the rule, never a value."""

from __future__ import annotations


class MigrationError(Exception):
    """A migration step could not complete; the message is safe to log (no PHI)."""

    def __init__(self, entity: str, message: str, *, rule: str | None = None) -> None:
        self.entity = entity
        self.rule = rule
        prefix = f"[{entity}]" + (f" rule {rule}:" if rule else "")
        super().__init__(f"{prefix} {message}")


class SchemaDriftError(MigrationError):
    """The legacy database no longer has a table or column an entity spec extracts."""


class ValidationFailed(MigrationError):
    """A suite-level expectation failed: the load is blocked."""


class GateClosed(Exception):
    """A phase was asked to run before the phase it depends on has validated."""
