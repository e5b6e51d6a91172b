"""The nightly incremental sync: the target follows the live legacy database until cut-over.

:mod:`~migration_ops.sync.detect` finds and stages each entity's delta inside one legacy
snapshot; the phases' own transform, validate, load and checkpoint steps then run on it;
:mod:`~migration_ops.sync.apply` records cursors, hashes and removals inside each load's
transaction. See ``docs/sync.md``.
"""
