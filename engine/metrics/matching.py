"""Accuracy of an unsupervised code as a classifier, under the best one-to-one matching."""

from __future__ import annotations

import numpy as np


def best_assignment(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost perfect matching of a square cost matrix (Hungarian method, O(n³)).

    Returns match[row] = column.
    """
    n = cost.shape[0]
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    owner = np.zeros(n + 1, dtype=int)  # owner[column] = row (1-based; 0 = free)
    way = np.zeros(n + 1, dtype=int)
    for row in range(1, n + 1):
        owner[0] = row
        column = 0
        slack = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[column] = True
            r = owner[column]
            delta, next_column = np.inf, 0
            for j in range(1, n + 1):
                if not used[j]:
                    reduced = cost[r - 1, j - 1] - u[r] - v[j]
                    if reduced < slack[j]:
                        slack[j], way[j] = reduced, column
                    if slack[j] < delta:
                        delta, next_column = slack[j], j
            for j in range(n + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    slack[j] -= delta
            column = next_column
            if owner[column] == 0:
                break
        while column:
            previous = way[column]
            owner[column] = owner[previous]
            column = previous
    match = np.zeros(n, dtype=int)
    for j in range(1, n + 1):
        if owner[j]:
            match[owner[j] - 1] = j - 1
    return match


def matched_accuracy(predicted: np.ndarray, truth: np.ndarray, classes: int | None = None) -> float:
    """Share of samples whose predicted code, mapped one-to-one onto labels as well as possible, is right."""
    predicted, truth = np.asarray(predicted, dtype=int), np.asarray(truth, dtype=int)
    k = classes or int(max(predicted.max(), truth.max()) + 1)
    counts = np.zeros((k, k))
    np.add.at(counts, (predicted, truth), 1)
    match = best_assignment(-counts)
    return float(counts[np.arange(k), match].sum() / len(truth))
