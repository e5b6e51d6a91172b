"""Patient (and any person) de-duplication by probabilistic record linkage.

* :mod:`.engine`: :func:`deduplicate`, records + role mapping + thresholds → pairs, clusters.
* :mod:`.metrics`: pairwise precision, recall and F1 against labelled truth.
* :mod:`.cli`: ``python -m migration_ops.cli dedup`` (CSV in, clusters CSV out).
* :mod:`.step`: the phase-1 step that links duplicate patient profiles (linked, not
  destroyed), its review band and ``unlink``.
* :mod:`.report`: the auditors' report (ids, scores, field agreement; never values).

Splink and DuckDB are imported lazily, inside the functions that use them, so that parsing
the DAGs never pays for them.
"""
