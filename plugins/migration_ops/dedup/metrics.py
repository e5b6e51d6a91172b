"""Pairwise precision, recall and F1 of a de-duplication against labelled truth.

Pairwise metrics count unordered record pairs: a predicted pair is two records the
de-duplication put in one cluster, a true pair two records of one true entity. This is the
standard measure for FEBRL-style benchmarks and what ``make bench`` and the tests report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PairMetrics:
    """Counts and scores of predicted against true pairs."""

    true_positives: int
    predicted: int
    actual: int

    @property
    def precision(self) -> float:
        """Share of predicted pairs that are true (1.0 when nothing was predicted)."""
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        """Share of true pairs that were predicted (1.0 when there are none)."""
        return self.true_positives / self.actual if self.actual else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def line(self) -> str:
        """One human line: ``precision 0.9998 recall 0.9928 F1 0.9963 (tp/pred/true)``."""
        return (
            f"precision {self.precision:.4f} recall {self.recall:.4f} F1 {self.f1:.4f} "
            f"({self.true_positives} of {self.predicted} predicted pairs true, "
            f"{self.actual} true pairs)"
        )


def ordered(pairs: Iterable[tuple[Any, Any]]) -> set[tuple[Any, Any]]:
    """Pairs as ``(smaller, larger)``, so that ``(a, b)`` and ``(b, a)`` are one pair."""
    return {(a, b) if a <= b else (b, a) for a, b in pairs if a != b}


def pair_metrics(
    predicted: Iterable[tuple[Any, Any]], actual: Iterable[tuple[Any, Any]]
) -> PairMetrics:
    """Compare predicted with true pairs (order within a pair does not matter)."""
    predicted_set, actual_set = ordered(predicted), ordered(actual)
    return PairMetrics(len(predicted_set & actual_set), len(predicted_set), len(actual_set))
