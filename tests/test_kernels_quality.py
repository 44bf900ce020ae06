"""SSIM: the NumPy reference against scikit-image, the Numba kernel against the reference."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from kernels.quality import ssim, ssim_reference
from tests.conftest import run_python

SHAPES = [(7, 7), (8, 13), (31, 17), (72, 128), (181, 320)]


def _pair(shape: tuple[int, int], seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # A smooth picture plus texture, and a noisy copy: SSIM well inside (0, 1), as for real frames.
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 120 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 20, shape)
    x = np.clip(base, 0, 255).astype(np.uint8)
    y = np.clip(base + rng.normal(0, noise, shape), 0, 255).astype(np.uint8)
    return x, y


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("noise", [0.0, 4.0, 40.0])
def test_reference_matches_scikit_image(shape: tuple[int, int], noise: float) -> None:
    x, y = _pair(shape, sum(shape), noise)
    want = structural_similarity(x, y, win_size=7, data_range=255, gaussian_weights=False,
                                 use_sample_covariance=True)
    assert ssim_reference(x, y) == pytest.approx(want, abs=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("win_size", [3, 7, 11])
def test_kernel_matches_reference(shape: tuple[int, int], win_size: int) -> None:
    x, y = _pair(shape, shape[0] * 7 + win_size, 12.0)
    if min(shape) < win_size:
        with pytest.raises(ValueError, match="smaller than"):
            ssim(x, y, win_size)
        return
    np.testing.assert_allclose(ssim(x, y, win_size), ssim_reference(x, y, win_size), rtol=1e-12)


def test_identical_and_extreme_planes() -> None:
    x, _ = _pair((64, 96), 1, 0)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    black, white = np.zeros((32, 32), np.uint8), np.full((32, 32), 255, np.uint8)
    assert ssim(black, white) == pytest.approx(ssim_reference(black, white), rel=1e-12)
    assert ssim(black, white) < 0.01


def test_a_720p_luma_plane() -> None:
    x, y = _pair((720, 1280), 5, 6.0)
    np.testing.assert_allclose(ssim(x, y), ssim_reference(x, y), rtol=1e-12)


@pytest.mark.parametrize(
    ("x", "y", "error", "match"),
    [
        (np.zeros((8, 8), np.float32), np.zeros((8, 8), np.uint8), TypeError, "dtype uint8"),
        ([[0] * 8] * 8, np.zeros((8, 8), np.uint8), TypeError, "numpy.ndarray"),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), ValueError, "2-D"),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8), ValueError, "differ in shape"),
        (np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint8), ValueError, "smaller than"),
    ],
)
def test_bad_input_is_refused(x: object, y: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ssim(x, y)  # type: ignore[arg-type]


def test_even_window_is_refused() -> None:
    x = np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match="odd"):
        ssim(x, x, win_size=6)


def test_python_path_without_jit() -> None:
    script = """
        import numpy as np
        from kernels import quality as q
        rng = np.random.default_rng(3)
        x = rng.integers(0, 256, (20, 33), dtype=np.uint8)
        y = rng.integers(0, 256, (20, 33), dtype=np.uint8)
        np.testing.assert_allclose(q.ssim(x, y), q.ssim_reference(x, y), rtol=1e-12)
        print("python path ok")
    """
    done = run_python(script, NUMBA_DISABLE_JIT="1")
    assert done.returncode == 0, done.stderr
    assert "python path ok" in done.stdout
