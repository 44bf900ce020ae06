"""TextRank kernels against their NumPy references, plus the JIT fallback machinery in kernels._jit."""

from __future__ import annotations

import logging
import math
import threading

import numpy as np
import pytest

from kernels import _jit
from kernels._jit import call_with_fallback, jit, kernel_backend
from kernels.textrank import (
    _pagerank_kernel,
    _similarity_kernel,
    pagerank,
    pagerank_reference,
    rank_sentences,
    similarity_matrix,
    similarity_matrix_reference,
)
from tests.conftest import run_python

SIZES = [0, 1, 2, 50, 51, 300]
JIT_ON = kernel_backend() == "numba"


def random_csr(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n sentences over a random vocabulary, with some empty and one-token sentences mixed in."""
    rng = np.random.default_rng(seed)
    vocab = int(rng.integers(1, 400))
    rows = []
    for _ in range(n):
        length = int(rng.integers(0, min(vocab, 25) + 1))
        rows.append(np.sort(rng.choice(vocab, size=length, replace=False)))
    indptr = np.zeros(n + 1, np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    return indptr, indices


# --- similarity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", SIZES)
def test_similarity_matches_reference(n: int, seed: int) -> None:
    indptr, indices = random_csr(n, seed)
    got = similarity_matrix(indptr, indices)
    want = similarity_matrix_reference(indptr, indices)
    assert got.shape == (n, n) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # The compiled kernel itself, not only whatever the wrapper dispatched to.
    np.testing.assert_allclose(_similarity_kernel(indptr, indices), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n", SIZES)
def test_similarity_is_symmetric_non_negative_with_zero_diagonal(n: int) -> None:
    weights = similarity_matrix(*random_csr(n, seed=7))
    np.testing.assert_array_equal(weights, weights.T)
    np.testing.assert_array_equal(np.diag(weights), np.zeros(n))
    assert np.all(weights >= 0) and np.all(np.isfinite(weights))


def test_similarity_hand_computed() -> None:
    # {1,2,3} {2,3,4} {5} {7} {7} {7,8} {}
    sentences = [[1, 2, 3], [2, 3, 4], [5], [7], [7], [7, 8], []]
    indptr = np.array([0, 3, 6, 7, 8, 9, 11, 11])
    indices = np.array([t for s in sentences for t in s])
    want = np.zeros((7, 7))
    want[0, 1] = want[1, 0] = 2 / (math.log(3) + math.log(3))
    # {7} vs {7}: denominator log 1 + log 1 = 0, so no edge despite the shared token.
    want[3, 5] = want[5, 3] = want[4, 5] = want[5, 4] = 1 / (math.log(1) + math.log(2))
    np.testing.assert_allclose(similarity_matrix(indptr, indices), want, rtol=1e-15)
    np.testing.assert_allclose(similarity_matrix_reference(indptr, indices), want, rtol=1e-15)


def test_similarity_accepts_int32_and_lists() -> None:
    indptr, indices = random_csr(40, seed=3)
    want = similarity_matrix_reference(indptr, indices)
    np.testing.assert_allclose(similarity_matrix(indptr.astype(np.int32), indices.astype(np.int32)), want)
    np.testing.assert_allclose(similarity_matrix(indptr.tolist(), indices.tolist()), want)
    np.testing.assert_array_equal(similarity_matrix([0], []), np.zeros((0, 0)))


def test_similarity_reference_handles_large_token_ids() -> None:
    # Hashed token ids: the reference must not allocate a column per possible id.
    indptr = np.array([0, 2, 4])
    indices = np.array([5, 2**40, 2**40, 2**50])
    np.testing.assert_allclose(similarity_matrix_reference(indptr, indices), similarity_matrix(indptr, indices))


@pytest.mark.parametrize(
    ("indptr", "indices", "error", "match"),
    [
        ([1, 2], [3], ValueError, "start at 0"),
        ([], [], ValueError, "start at 0"),
        ([0, 2, 1], [1, 2], ValueError, "non-decreasing"),
        ([0, 2], [1, 2, 3], ValueError, "indices has 3 entries but indptr ends at 2"),
        ([0, 2, 4], [1, 2, 5, 3], ValueError, "sentence 1 must be sorted"),
        ([0, 2, 4], [1, 2, 3, 3], ValueError, "sentence 1 must be sorted"),
        ([0, 3], [1, 1, 2], ValueError, "sentence 0 must be sorted"),
        ([0, 2], [-1, 2], ValueError, "non-negative"),
        ([[0, 2]], [1, 2], ValueError, "indptr must be 1-D"),
        ([0, 2], [[1, 2]], ValueError, "indices must be 1-D"),
        ([0.0, 2.0], [1, 2], TypeError, "indptr must hold integers"),
        ([0, 2], [1.0, 2.5], TypeError, "indices must hold integers"),
    ],
)
def test_similarity_validation(indptr: list, indices: list, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        similarity_matrix(np.asarray(indptr), np.asarray(indices))


def test_similarity_allows_decrease_across_sentences() -> None:
    # Order is only required within a sentence; 9 then 1 at a sentence boundary is fine.
    indptr, indices = np.array([0, 0, 2, 2, 4]), np.array([3, 9, 1, 4])
    np.testing.assert_allclose(similarity_matrix(indptr, indices), similarity_matrix_reference(indptr, indices))


# --- PageRank -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n", SIZES)
def test_pagerank_matches_reference(n: int, seed: int) -> None:
    weights = similarity_matrix(*random_csr(n, seed))
    got = pagerank(weights)
    want = pagerank_reference(weights)
    assert got.shape == (n,) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    if n:
        np.testing.assert_allclose(_pagerank_kernel(weights, 0.85, 1e-8, 200), want, rtol=1e-9, atol=1e-12)
        assert got.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(got > 0)


def test_pagerank_asymmetric_and_other_parameters_match_reference() -> None:
    rng = np.random.default_rng(11)
    weights = rng.random((60, 60)) * (rng.random((60, 60)) < 0.1)
    weights[5] = 0.0  # a dangling row
    for damping, tol, max_iter in [(0.5, 1e-12, 500), (0.99, 1e-6, 3), (0.85, 0.0, 1)]:
        np.testing.assert_allclose(
            pagerank(weights, damping, tol, max_iter), pagerank_reference(weights, damping, tol, max_iter), rtol=1e-9
        )


def test_pagerank_hand_computed() -> None:
    # Sentences 0 and 1 link only to each other; sentence 2 is isolated (dangling, spreads evenly).
    # Stationary: c = (1-d)/3 + d*c/3  =>  c = (1-d)/(3-d); the pair shares the rest.
    d = 0.85
    isolated = (1 - d) / (3 - d)
    want = np.array([(1 - isolated) / 2, (1 - isolated) / 2, isolated])
    np.testing.assert_allclose(rank_sentences([[3, 1, 2, 2], [2, 3, 4], [5]]), want, rtol=1e-7)
    weights = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(pagerank(weights, tol=1e-14), want, rtol=1e-12)


def test_pagerank_edge_cases() -> None:
    np.testing.assert_array_equal(pagerank(np.zeros((0, 0))), np.zeros(0))
    np.testing.assert_array_equal(pagerank(np.zeros((1, 1))), [1.0])
    np.testing.assert_allclose(pagerank(np.zeros((4, 4))), np.full(4, 0.25))
    np.testing.assert_allclose(pagerank(np.ones((3, 3), dtype=np.int32)), np.full(3, 1 / 3))
    np.testing.assert_allclose(pagerank(np.eye(2, dtype=bool)), [0.5, 0.5])


@pytest.mark.parametrize(
    ("weights", "kwargs", "error", "match"),
    [
        (np.zeros((2, 3)), {}, ValueError, "square"),
        (np.zeros(4), {}, ValueError, "square"),
        (np.zeros((2, 2, 2)), {}, ValueError, "square"),
        (np.array([[0.0, -1.0], [1.0, 0.0]]), {}, ValueError, "non-negative"),
        (np.array([[0.0, np.nan], [1.0, 0.0]]), {}, ValueError, "finite"),
        (np.array([[0.0, np.inf], [1.0, 0.0]]), {}, ValueError, "finite"),
        (np.zeros((2, 2), complex), {}, TypeError, "real numbers"),
        (np.array([["a", "b"], ["c", "d"]]), {}, TypeError, "real numbers"),
        (np.zeros((2, 2)), {"damping": 0.0}, ValueError, "damping"),
        (np.zeros((2, 2)), {"damping": 1.0}, ValueError, "damping"),
        (np.zeros((2, 2)), {"damping": float("nan")}, ValueError, "damping"),
        (np.zeros((2, 2)), {"tol": -1.0}, ValueError, "tol"),
        (np.zeros((2, 2)), {"max_iter": 0}, ValueError, "max_iter"),
        (np.zeros((2, 2)), {"max_iter": 2.5}, ValueError, "max_iter"),
    ],
)
def test_pagerank_validation(weights: np.ndarray, kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        pagerank(weights, **kwargs)


# --- rank_sentences, determinism ----------------------------------------------------------------


def test_rank_sentences_matches_references() -> None:
    rng = np.random.default_rng(5)
    token_lists = [rng.integers(0, 80, rng.integers(0, 20)).tolist() for _ in range(120)]  # unsorted, repeats
    indptr = np.zeros(len(token_lists) + 1, np.int64)
    rows = [np.unique(t).astype(np.int64) for t in token_lists]
    indptr[1:] = np.cumsum([len(r) for r in rows])
    want = pagerank_reference(similarity_matrix_reference(indptr, np.concatenate(rows)))
    np.testing.assert_allclose(rank_sentences(token_lists), want, rtol=1e-9)
    assert rank_sentences([]).shape == (0,)


def test_kernels_are_deterministic() -> None:
    indptr, indices = random_csr(300, seed=9)
    first_w = similarity_matrix(indptr, indices)
    first_p = pagerank(first_w)
    for _ in range(3):
        np.testing.assert_array_equal(similarity_matrix(indptr, indices), first_w)
        np.testing.assert_array_equal(pagerank(first_w), first_p)


def test_kernels_agree_across_threads() -> None:
    indptr, indices = random_csr(200, seed=4)
    want = pagerank(similarity_matrix(indptr, indices))
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(5):
            results.append(pagerank(similarity_matrix(indptr, indices)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20
    for got in results:
        np.testing.assert_array_equal(got, want)


# --- the Python path and the JIT machinery ------------------------------------------------------


def test_kernels_run_as_python_with_jit_disabled() -> None:
    script = """
        import numpy as np
        from kernels._jit import kernel_backend
        from kernels import textrank as tr

        assert kernel_backend() == "numpy", kernel_backend()
        assert not hasattr(tr._similarity_kernel, "py_func"), "kernel is still a numba dispatcher"
        rng = np.random.default_rng(0)
        for n in (0, 1, 2, 40):
            rows = [np.unique(rng.integers(0, 60, rng.integers(0, 12))) for _ in range(n)]
            indptr = np.zeros(n + 1, np.int64)
            indptr[1:] = np.cumsum([len(r) for r in rows])
            indices = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
            w = tr.similarity_matrix(indptr, indices)
            np.testing.assert_allclose(w, tr.similarity_matrix_reference(indptr, indices), rtol=1e-12)
            np.testing.assert_allclose(tr.pagerank(w), tr.pagerank_reference(w), rtol=1e-9, atol=1e-12)
        print("python path ok")
    """
    done = run_python(script, NUMBA_DISABLE_JIT="1")
    assert done.returncode == 0, done.stderr
    assert "python path ok" in done.stdout


@pytest.mark.skipif(not JIT_ON, reason="needs compiled kernels")
def test_parallel_kernel_is_safe_from_threads_on_the_workqueue_layer() -> None:
    # Numba's workqueue layer aborts the process on concurrent parallel launches; _jit serializes them.
    script = """
        import threading
        import numpy as np
        from kernels import _jit
        from kernels.textrank import similarity_matrix

        assert not _jit._parallel_threadsafe()
        indptr = np.arange(0, 2001, 5, dtype=np.int64)
        indices = np.tile(np.arange(5, dtype=np.int64), 400)
        want = similarity_matrix(indptr, indices)

        def work():
            for _ in range(20):
                np.testing.assert_array_equal(similarity_matrix(indptr, indices), want)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("workqueue ok")
    """
    done = run_python(script, NUMBA_THREADING_LAYER="workqueue")
    assert done.returncode == 0, done.stderr
    assert "workqueue ok" in done.stdout


@jit()
def _untypable(x):  # pragma: no cover - never compiles
    return x + "text"  # an int plus a str has no Numba typing


def _double(x: int) -> int:
    return 2 * x


@pytest.mark.skipif(not JIT_ON, reason="needs compiled kernels")
def test_call_with_fallback_uses_reference_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from numba.core.errors import TypingError

    with pytest.raises(TypingError):
        _untypable(3)
    monkeypatch.setattr(_jit, "_fallen_back", set())
    caplog.set_level(logging.WARNING, logger="pagereel.jit")

    assert call_with_fallback(_untypable, _double, 3, name="untypable") == 6
    assert call_with_fallback(_untypable, _double, 4, name="untypable") == 8
    warnings = [r for r in caplog.records if r.name == "pagereel.jit"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "untypable" in warnings[0].getMessage() and "TypingError" in warnings[0].getMessage()
    assert _jit.kernels_on_fallback() == ("untypable",)
    assert kernel_backend() == "numba"  # other kernels still compile


def test_call_with_fallback_passes_through_results_and_other_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_jit, "_fallen_back", set())
    assert call_with_fallback(lambda x: x + 1, _double, 3, name="ok") == 4

    def broken(x: int) -> int:
        raise ZeroDivisionError(x)

    with pytest.raises(ZeroDivisionError):  # only Numba's compile errors fall back
        call_with_fallback(broken, _double, 3, name="broken")
    assert _jit.kernels_on_fallback() == ()


def test_jit_applies_the_shared_options() -> None:
    if not JIT_ON:
        pytest.skip("needs compiled kernels")
    from numba.core.caching import NullCache

    for kernel, parallel in [(_similarity_kernel, True), (_pagerank_kernel, False)]:
        assert not isinstance(kernel._cache, NullCache)  # cache=True
        options = kernel.targetoptions
        assert options["nogil"]
        assert options.get("parallel", False) == parallel
        assert options.get("fastmath", False) == _jit.FASTMATH
