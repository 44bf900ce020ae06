"""Time each frame and audio kernel against its NumPy reference on a 1280x720 frame.

    python benchmarks/kernels_frame.py [--repeat 7] [--width 1280 --height 720] [--seconds 60]

Each row is one kernel: best-of-``repeat`` seconds per call for the compiled kernel (after a
warm-up call, so compilation or cache loading is not counted) and for the reference, their ratio
(reference / numba; above 1 means the kernel is faster), and the kernel's effective bandwidth
(bytes it must read and write per call over its time) as a share of this machine's copy bandwidth
to memory, the limit of a streaming kernel whose data does not fit in cache (a frame or three
can, so a light kernel may pass 100%). A last table sets the RGB -> yuv420p step the renderer
runs per frame against the peer it replaces, FFmpeg's swscale through PyAV.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Run as ``python benchmarks/kernels_frame.py``, this file's folder leads sys.path, and
# benchmarks/kernels.py there would shadow the ``kernels`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.harness import Bench, best_seconds, kernel_machine  # noqa: E402
from kernels.audio import (  # noqa: E402
    _mix_ducked_kernel,
    _rms_envelope_kernel,
    mix_ducked_reference,
    rms_envelope_reference,
)
from kernels.compositing import (  # noqa: E402
    BT709_FIXED,
    _alpha_over_kernel,
    _crossfade_kernel,
    _ken_burns_kernel,
    _ken_burns_plane_kernel,
    _plane_over_kernel,
    _rgb_to_yuv420p_kernel,
    alpha_over_reference,
    crossfade_reference,
    ken_burns_plane_reference,
    ken_burns_reference,
    ken_burns_window,
    plane_over_reference,
    rgb_frame_to_av,
    rgb_to_yuv420p_reference,
    tag_bt709,
)


def benches(width: int, height: int, seconds: float, seed: int = 0) -> list[Bench]:
    rng = np.random.default_rng(seed)
    frame_bytes = width * height * 3
    # A picture bigger than the frame, under the window the renderer asks for a third of the way in.
    image = rng.integers(0, 256, (int(height * 1.5), int(width * 1.5), 3), dtype=np.uint8)
    window = ken_burns_window(image.shape[1], image.shape[0], width, height, 0.33, zoom_to=1.12, pan=(0.06, 0.03))
    window_bytes = int(window[2] * window[3] * 3)
    luma = np.ascontiguousarray(image[..., 0])  # one plane of the picture, as the renderer resamples Y
    frame_a = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame_b = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    layer = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)  # a full-frame RGBA overlay
    chroma = (height // 2, width // 2)
    rate = 48000
    samples = int(seconds * rate)
    voice = np.round(9000 * np.sin(np.arange(samples) / 7.0) * (np.arange(samples) // rate % 3 > 0)).astype(np.int16)
    music = rng.integers(-20000, 20000, samples).astype(np.int16)
    duck = (0.25, 0.5, 0.02 * 32768, round(0.05 * rate), round(0.25 * rate), round(0.2 * rate))

    def planes() -> tuple[np.ndarray, ...]:
        return (frame_a, np.empty((height, width), np.uint8), np.empty(chroma, np.uint8), np.empty(chroma, np.uint8))

    def yuv_planes(args: tuple[Any, ...], returned: Any) -> Any:
        return np.concatenate([p.ravel() for p in args[1:4]])

    # A scene without a picture: its gradient is 1.3x the frame on each side, drawn into Y, Cb and Cr.
    gh, gw = int(height * 1.3) + 2, int(width * 1.3) + 2
    backdrop = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((gh, gw), (gh // 2, gw // 2))]
    backdrop.append(backdrop[1].copy())
    backdrop_window = ken_burns_window(gw, gh, width, height, 0.33, zoom_to=1.12, pan=(0.06, 0.03))

    def backdrop_planes() -> tuple[np.ndarray, ...]:
        return (*backdrop, np.empty((height, width), np.uint8), np.empty(chroma, np.uint8), np.empty(chroma, np.uint8))

    def written(index: int) -> Callable[[tuple[Any, ...], Any], Any]:
        return lambda args, returned: args[index]

    return [
        Bench("compositing.ken_burns", _ken_burns_kernel, ken_burns_reference,
              lambda: (image, np.empty((height, width, 3), np.uint8), *window),
              window_bytes + frame_bytes, written(1)),
        Bench("compositing.ken_burns_plane", _ken_burns_plane_kernel, ken_burns_plane_reference,
              lambda: (luma, np.empty((height, width), np.uint8), *window),
              window_bytes // 3 + frame_bytes // 3, written(1)),
        Bench("compositing.backdrop Y+Cb+Cr", _three_planes(_ken_burns_plane_kernel, backdrop_window),
              _three_planes(ken_burns_plane_reference, backdrop_window), backdrop_planes,
              int(backdrop_window[2] * backdrop_window[3] * 1.5) + frame_bytes // 2, yuv_planes_of(3)),
        Bench("compositing.alpha_over", _alpha_over_kernel, alpha_over_reference,
              lambda: (frame_a.copy(), layer, 0, 0, 0, 0, width, height, 230),
              layer.nbytes + 2 * frame_bytes, written(0)),
        Bench("compositing.plane_over", _plane_over_kernel, plane_over_reference,
              lambda: (np.ascontiguousarray(frame_a[..., 0]), np.ascontiguousarray(layer[..., 0]),
                       np.ascontiguousarray(layer[..., 3]), 0, 0, 0, 0, width, height, 230),
              4 * frame_bytes // 3, written(0)),
        Bench("compositing.crossfade", _crossfade_kernel, crossfade_reference,
              lambda: (frame_a.reshape(height, -1), frame_b.reshape(height, -1),
                       np.empty((height, width * 3), np.uint8), 26214),
              3 * frame_bytes, written(2)),
        Bench("compositing.rgb_to_yuv420p", lambda *a: _rgb_to_yuv420p_kernel(*a, BT709_FIXED),
              rgb_to_yuv420p_reference, planes, frame_bytes + frame_bytes // 2, yuv_planes),
        Bench(f"audio.rms_envelope {seconds:g}s", _rms_envelope_kernel, rms_envelope_reference,
              lambda: (voice, rate, 30.0, int(seconds * 30)), voice.nbytes),
        Bench(f"audio.mix_ducked {seconds:g}s", _mix_ducked_kernel, mix_ducked_reference,
              lambda: (voice, music, *duck), 3 * voice.nbytes),
    ]


def _three_planes(kernel: Callable[..., Any], window: tuple[float, float, float, float]) -> Callable[..., None]:
    """``kernel`` over a backdrop's Y, Cb and Cr planes, as the renderer draws each frame's backdrop."""
    x0, y0, win_w, win_h = window

    def draw(py: np.ndarray, pu: np.ndarray, pv: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        kernel(py, y, x0, y0, win_w, win_h)
        kernel(pu, u, x0 / 2, y0 / 2, win_w / 2, win_h / 2)
        kernel(pv, v, x0 / 2, y0 / 2, win_w / 2, win_h / 2)

    return draw


def yuv_planes_of(first: int) -> Callable[[tuple[Any, ...], Any], Any]:
    return lambda args, returned: np.concatenate([p.ravel() for p in args[first:first + 3]])


def copy_bandwidth(repeat: int, nbytes: int = 256 << 20) -> float:
    """Bytes per second moved (read + written) by ``np.copyto`` of a buffer far larger than the caches."""
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    return 2 * nbytes / best_seconds(np.copyto, (dst, src), repeat)


def peer_rows(width: int, height: int, repeat: int) -> list[tuple[str, float]]:
    """RGB -> yuv420p ``av.VideoFrame`` as the renderer does it, and as PyAV's swscale does it."""
    import av

    rgb = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = av.VideoFrame(width, height, "yuv420p")

    def ours() -> None:
        rgb_frame_to_av(rgb, frame)

    def swscale() -> None:
        # BT.709 limited range like ours; swscale's default bilinear chroma filter.
        src = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        tag_bt709(src.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"))

    ours()  # warm-up
    swscale()
    return [("rgb_frame_to_av (numba)", best_seconds(ours, (), repeat)),
            ("PyAV from_ndarray+reformat", best_seconds(swscale, (), repeat))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed batches per kernel; the best is kept")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the synthetic audio")
    options = parser.parse_args(argv)

    limit = copy_bandwidth(options.repeat)
    print(kernel_machine())
    print(f"input: {options.width}x{options.height} frames; best of {options.repeat}; "
          f"copy bandwidth {limit / 1e9:.1f} GB/s")
    print(f"{'kernel':<30} {'numba s':>11} {'numpy s':>11} {'numpy/numba':>12} {'GB/s':>7} {'of limit':>9}")
    for bench in benches(options.width, options.height, options.seconds):
        args, ref_args = bench.checked_args()  # also the warm-up
        fast = best_seconds(bench.numba_fn, args, options.repeat)
        slow = best_seconds(bench.reference_fn, ref_args, options.repeat)
        rate = bench.bytes_moved / fast
        print(f"{bench.name:<30} {fast:>11.3e} {slow:>11.3e} {slow / fast:>11.1f}x "
              f"{rate / 1e9:>7.2f} {rate / limit:>8.0%}")

    rows = peer_rows(options.width, options.height, options.repeat)
    print(f"\nper-frame RGB -> yuv420p av.VideoFrame, {options.width}x{options.height}")
    for name, seconds in rows:
        print(f"{name:<30} {seconds:>11.3e} {seconds / rows[0][1]:>11.1f}x  ({1 / seconds:,.0f} frames/s)")


if __name__ == "__main__":
    main()
