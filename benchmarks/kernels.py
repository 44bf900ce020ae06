"""Time each Numba kernel against its NumPy reference on the same synthetic input.

    python benchmarks/kernels.py [--repeat 7] [--sentences 300]

Each row is one kernel: best-of-``repeat`` seconds per call for the compiled kernel (after a
warm-up call, so compilation or cache loading is not counted) and for the reference, and their
ratio (reference / numba; above 1 means the kernel is faster). Add a kernel by appending a
``Bench`` to ``benches()``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# Run as ``python benchmarks/kernels.py``, this file's folder leads sys.path and its name would
# shadow the ``kernels`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.harness import Bench, best_seconds, kernel_machine  # noqa: E402
from kernels.textrank import (  # noqa: E402
    _pagerank_kernel,
    _similarity_kernel,
    pagerank_reference,
    similarity_matrix_reference,
)


def synthetic_sentences(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """CSR token ids of n article-like sentences: 5-30 distinct tokens each, Zipf-distributed over 3,000 words."""
    rng = np.random.default_rng(seed)
    vocab = 3000
    popularity = 1.0 / np.arange(1, vocab + 1)
    popularity /= popularity.sum()
    rows = [np.unique(rng.choice(vocab, size=int(rng.integers(5, 31)), p=popularity)) for _ in range(n)]
    indptr = np.zeros(n + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    return indptr, np.concatenate(rows).astype(np.int64)


def benches(sentences: int) -> list[Bench]:
    csr = synthetic_sentences(sentences)
    weights = similarity_matrix_reference(*csr)
    return [
        Bench("textrank.similarity", _similarity_kernel, similarity_matrix_reference, lambda: csr, rtol=1e-9),
        Bench("textrank.pagerank", _pagerank_kernel, pagerank_reference, lambda: (weights, 0.85, 1e-8, 200),
              rtol=1e-9),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed batches per kernel; the best is kept")
    parser.add_argument("--sentences", type=int, default=300, help="sentences in the synthetic article")
    options = parser.parse_args(argv)

    print(kernel_machine())
    print(f"input: {options.sentences} synthetic sentences; best of {options.repeat}")
    print(f"{'kernel':<24} {'numba s':>12} {'numpy s':>12} {'numpy/numba':>12}")
    for bench in benches(options.sentences):
        args, ref_args = bench.checked_args()
        fast = best_seconds(bench.numba_fn, args, options.repeat)
        slow = best_seconds(bench.reference_fn, ref_args, options.repeat)
        print(f"{bench.name:<24} {fast:>12.3e} {slow:>12.3e} {slow / fast:>11.1f}x")


if __name__ == "__main__":
    main()
