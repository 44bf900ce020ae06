"""TextRank kernels: sentence similarity and weighted PageRank, each with a NumPy reference.

Sentences come in CSR form: ``indptr`` (n+1) and ``indices`` holding each sentence's sorted,
unique token ids. Similarity is TextRank's |Si ∩ Sj| / (log|Si| + log|Sj|).
"""

from __future__ import annotations

import numpy as np

from kernels._jit import call_with_fallback, jit, prange


@jit(parallel=True)
def _similarity_kernel(indptr, indices, out):  # pragma: no cover - compiled
    n = indptr.shape[0] - 1
    for i in prange(n):
        a0, a1 = indptr[i], indptr[i + 1]
        li = a1 - a0
        for j in range(i + 1, n):
            b0, b1 = indptr[j], indptr[j + 1]
            lj = b1 - b0
            if li == 0 or lj == 0:
                continue
            denom = np.log(li) + np.log(lj)
            if denom <= 0.0:
                continue
            p, q, common = a0, b0, 0
            while p < a1 and q < b1:
                x, y = indices[p], indices[q]
                if x == y:
                    common += 1
                    p += 1
                    q += 1
                elif x < y:
                    p += 1
                else:
                    q += 1
            w = common / denom
            out[i, j] = w
            out[j, i] = w


def similarity_matrix_reference(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """NumPy reference: dense bag-of-words overlaps divided by the log-length sums."""
    n = len(indptr) - 1
    vocab = int(indices.max()) + 1 if len(indices) else 1
    bags = np.zeros((n, vocab), np.float64)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    bags[rows, indices] = 1.0
    overlap = bags @ bags.T
    lengths = np.diff(indptr).astype(np.float64)
    with np.errstate(divide="ignore"):
        logs = np.where(lengths > 0, np.log(np.maximum(lengths, 1)), -np.inf)
    denom = logs[:, None] + logs[None, :]
    valid = (lengths[:, None] > 0) & (lengths[None, :] > 0) & (denom > 0)
    out = np.where(valid, overlap / np.where(valid, denom, 1.0), 0.0)
    np.fill_diagonal(out, 0.0)
    return out


def _similarity_numba(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    out = np.zeros((len(indptr) - 1, len(indptr) - 1), np.float64)
    _similarity_kernel(indptr, indices, out)
    return out


def similarity_matrix(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Pairwise TextRank similarity of sentences given as sorted unique token ids (CSR)."""
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    if indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0:
        raise ValueError("indptr must be a 1-D array starting at 0 with one entry per sentence plus one")
    if np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must be non-decreasing")
    if indices.ndim != 1 or len(indices) != indptr[-1]:
        raise ValueError(f"indices has {len(indices)} entries but indptr ends at {indptr[-1]}")
    if len(indices) and indices.min() < 0:
        raise ValueError("token ids must be non-negative")
    for i in range(len(indptr) - 1):
        row = indices[indptr[i] : indptr[i + 1]]
        if np.any(np.diff(row) <= 0):
            raise ValueError(f"token ids of sentence {i} must be sorted and unique")
    return call_with_fallback(_similarity_numba, similarity_matrix_reference, indptr, indices, name="similarity")


@jit()
def _pagerank_kernel(weights, damping, tol, max_iter):  # pragma: no cover - compiled
    n = weights.shape[0]
    sums = np.zeros(n)
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += weights[i, j]
        sums[i] = s
    scores = np.full(n, 1.0 / n)
    nxt = np.empty(n)
    for _ in range(max_iter):
        dangling = 0.0
        for i in range(n):
            if sums[i] == 0.0:
                dangling += scores[i]
        base = (1.0 - damping) / n + damping * dangling / n
        for j in range(n):
            nxt[j] = base
        for i in range(n):
            if sums[i] > 0.0:
                share = damping * scores[i] / sums[i]
                for j in range(n):
                    nxt[j] += share * weights[i, j]
        total = 0.0
        delta = 0.0
        for j in range(n):
            total += nxt[j]
        for j in range(n):
            nxt[j] /= total
            delta += abs(nxt[j] - scores[j])
            scores[j] = nxt[j]
        if delta < tol:
            break
    return scores


def pagerank_reference(
    weights: np.ndarray, damping: float = 0.85, tol: float = 1e-8, max_iter: int = 200
) -> np.ndarray:
    """NumPy reference: power iteration on the row-normalised weights; dangling rows spread evenly."""
    n = weights.shape[0]
    sums = weights.sum(axis=1)
    safe = np.where(sums > 0, sums, 1.0)
    transition = weights / safe[:, None]
    dangling_rows = sums == 0
    scores = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        dangling = scores[dangling_rows].sum()
        nxt = (1.0 - damping) / n + damping * dangling / n + damping * (scores @ transition)
        nxt /= nxt.sum()
        delta = np.abs(nxt - scores).sum()
        scores = nxt
        if delta < tol:
            break
    return scores


def pagerank(weights: np.ndarray, damping: float = 0.85, tol: float = 1e-8, max_iter: int = 200) -> np.ndarray:
    """Weighted PageRank scores (summing to 1) of a non-negative square weight matrix."""
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"weights must be a square matrix, got shape {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("weights must be finite and non-negative")
    if not 0.0 < damping < 1.0:
        raise ValueError(f"damping must lie in (0, 1), got {damping}")
    if weights.shape[0] == 0:
        return np.zeros(0)
    return call_with_fallback(_pagerank_kernel, pagerank_reference, weights, float(damping), float(tol),
                              int(max_iter), name="pagerank")


def rank_sentences(token_lists: list[list[int]]) -> np.ndarray:
    """TextRank score of each sentence, given the token ids of each."""
    rows = [np.unique(np.asarray(t, dtype=np.int64)) for t in token_lists]
    indptr = np.zeros(len(rows) + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return pagerank(similarity_matrix(indptr, indices))
