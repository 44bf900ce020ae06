"""Time the SSIM kernel against its NumPy reference and scikit-image on 720p luma planes.

    python benchmarks/quality.py [--repeat 5] [--width 1280 --height 720]

Best-of-``repeat`` seconds per frame pair for each, after a warm-up call, and the ratios
(peer / kernel; above 1 means the kernel is faster). The tuning flow runs this once per frame of
every trial, so it sets how long a trial's quality check takes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Run as ``python benchmarks/quality.py``, this folder leads sys.path and benchmarks/kernels.py
# would shadow the ``kernels`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from kernels._jit import kernel_backend  # noqa: E402
from kernels.quality import ssim, ssim_reference  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.height, args.width)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    x = np.clip(120 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + rng.normal(0, 15, shape), 0, 255).astype(np.uint8)
    y = np.clip(x + rng.normal(0, 5, shape), 0, 255).astype(np.uint8)
    rows = [(f"pagereel kernel ({kernel_backend()})", best_of(lambda: ssim(x, y), args.repeat)),
            ("NumPy reference", best_of(lambda: ssim_reference(x, y), args.repeat))]
    try:
        from skimage.metrics import structural_similarity

        rows.append(("scikit-image", best_of(lambda: structural_similarity(
            x, y, win_size=7, data_range=255, gaussian_weights=False, use_sample_covariance=True), args.repeat)))
    except ImportError:
        pass
    kernel_s = rows[0][1]
    print(f"SSIM of two {args.width}x{args.height} luma planes, best of {args.repeat}")
    for name, seconds in rows:
        print(f"  {name:<28} {seconds * 1000:8.2f} ms   {seconds / kernel_s:6.1f}x the kernel's time")


if __name__ == "__main__":
    main()
