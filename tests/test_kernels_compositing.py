"""Frame kernels against their NumPy references, plus a real libx264 round trip through PyAV.

The kernels do their per-pixel work in integers and the references repeat that arithmetic, so
compiled and reference results are compared exactly (atol 0). The fixed-point colour conversion
is compared to the float BT.709 formula within one level.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from kernels._jit import kernel_backend
from kernels.compositing import (
    BT709_FIXED,
    _alpha_over_kernel,
    _crossfade_kernel,
    _div255,
    _ken_burns_kernel,
    _rgb_to_yuv420p_kernel,
    alpha_over,
    alpha_over_reference,
    cover_window,
    crossfade,
    crossfade_reference,
    ease_in_out,
    ken_burns,
    ken_burns_reference,
    ken_burns_window,
    rgb_frame_to_av,
    rgb_to_yuv420p,
    rgb_to_yuv420p_reference,
    tag_bt709,
    yuv420p_planes,
)
from tests.conftest import run_python

JIT_ON = kernel_backend() == "numba"


def random_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


# --- Ken Burns ----------------------------------------------------------------------------------

KB_CASES = [
    # (image h, w), (out h, w), window (x0, y0, win_w, win_h)
    ((31, 47), (17, 23), (3.25, 2.5, 30.0, 22.0)),  # odd sizes, downscale
    ((30, 48), (45, 71), (1.0, 0.0, 40.0, 25.0)),  # upscale
    ((64, 64), (64, 64), (0.0, 0.0, 64.0, 64.0)),  # identity
    ((120, 200), (36, 64), (-10.0, -7.5, 80.0, 45.0)),  # window past the top-left corner: edge clamping
    ((120, 200), (36, 64), (150.0, 90.0, 80.0, 45.0)),  # past the bottom-right corner
    ((1, 1), (5, 7), (0.0, 0.0, 1.0, 1.0)),  # single-pixel image
    ((301, 457), (72, 128), ken_burns_window(457, 301, 128, 72, 0.37, pan=(0.1, -0.05))),
]


@pytest.mark.parametrize(("image_shape", "out_shape", "window"), KB_CASES)
def test_ken_burns_matches_reference(image_shape, out_shape, window) -> None:
    image = random_image(*image_shape, seed=sum(image_shape))
    got = np.zeros((*out_shape, 3), np.uint8)
    want = np.zeros_like(got)
    assert ken_burns(image, got, *window) is got
    ken_burns_reference(image, want, *window)
    np.testing.assert_allclose(got, want, atol=0)
    direct = np.zeros_like(got)
    _ken_burns_kernel(image, direct, *map(float, window))  # the compiled kernel itself
    np.testing.assert_array_equal(direct, want)


def test_ken_burns_full_window_at_same_size_is_a_copy() -> None:
    image = random_image(37, 51)
    out = np.empty_like(image)
    np.testing.assert_array_equal(ken_burns(image, out, 0.0, 0.0, 51.0, 37.0), image)


def test_ken_burns_of_a_flat_image_is_flat_and_halfway_samples_average() -> None:
    flat = np.full((20, 30, 3), 77, np.uint8)
    out = np.zeros((9, 13, 3), np.uint8)
    assert (ken_burns(flat, out, 2.3, 1.7, 17.1, 11.9) == 77).all()
    # Two columns 0 and 100, sampled exactly between them at 2x upscale: (0 * 3 + 100) / 4 = 25, then 75.
    pair = np.zeros((1, 2, 3), np.uint8)
    pair[0, 1] = 100
    row = np.zeros((1, 4, 3), np.uint8)
    ken_burns(pair, row, 0.0, 0.0, 2.0, 1.0)
    np.testing.assert_array_equal(row[0, :, 0], [0, 25, 75, 100])


def test_cover_window_fills_the_frame_aspect_and_stays_inside() -> None:
    x0, y0, w, h = cover_window(1000, 500, 1280, 720, 500.0, 250.0)
    assert (w, h) == pytest.approx((500 * 1280 / 720, 500.0)) and y0 == 0.0
    assert x0 == pytest.approx((1000 - w) / 2)
    # A tall image in a wide frame: full width, cropped height.
    assert cover_window(400, 900, 1280, 720, 200.0, 450.0)[2:] == pytest.approx((400.0, 225.0))
    # A centre near the corner is clamped, and zoom shrinks the window.
    x0, y0, w, h = cover_window(1000, 500, 1280, 720, 0.0, 1e6, zoom=2.0)
    assert (x0, y0) == (0.0, 500 - h) and w == pytest.approx(500 * 1280 / 720 / 2)
    with pytest.raises(ValueError, match="zoom"):
        cover_window(10, 10, 10, 10, 5.0, 5.0, zoom=0.5)


def test_ken_burns_window_animates_zoom_and_pan_with_easing() -> None:
    size = (1600, 900, 1280, 720)
    start = ken_burns_window(*size, 0.0, zoom_from=1.0, zoom_to=1.25, pan=(0.1, 0.0))
    mid = ken_burns_window(*size, 0.5, zoom_from=1.0, zoom_to=1.25, pan=(0.1, 0.0))
    end = ken_burns_window(*size, 1.0, zoom_from=1.0, zoom_to=1.25, pan=(0.1, 0.0))
    assert start == pytest.approx((0.0, 0.0, 1600.0, 900.0))
    assert end[2:] == pytest.approx((1280.0, 720.0))
    assert end[0] + end[2] / 2 == pytest.approx(800 + 0.05 * 1600)  # centre panned right by half of dx
    assert mid[2] == pytest.approx(1600 / 1.125)
    assert (ease_in_out(0.0), ease_in_out(0.5), ease_in_out(1.0)) == (0.0, 0.5, 1.0)
    assert ease_in_out(0.1) < 0.1 and ease_in_out(0.9) > 0.9
    for t in np.linspace(0, 1, 11):
        x0, y0, w, h = ken_burns_window(457, 301, 720, 1280, float(t), zoom_to=1.3, pan=(0.5, 0.5))
        assert 0 <= x0 and x0 + w <= 457 + 1e-9 and 0 <= y0 and y0 + h <= 301 + 1e-9
        assert w / h == pytest.approx(720 / 1280)
    with pytest.raises(ValueError, match="t must lie"):
        ken_burns_window(*size, 1.5)


# --- alpha over ---------------------------------------------------------------------------------


def alpha_over_oracle(dst: np.ndarray, layer: np.ndarray, x: int, y: int, opacity: float) -> np.ndarray:
    """Composite onto a canvas big enough for the whole layer, then crop: clipping by construction."""
    h, w = dst.shape[:2]
    lh, lw = layer.shape[:2]
    pad = max(lh, lw) + abs(x) + abs(y)
    canvas = np.zeros((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    canvas[pad : pad + h, pad : pad + w] = dst
    alpha_over_reference(canvas, layer, x + pad, y + pad, 0, 0, lw, lh, round(opacity * 255))
    return canvas[pad : pad + h, pad : pad + w]


ALPHA_CASES = [
    ((37, 53), (11, 17), 5, 7, 1.0),
    ((36, 64), (10, 10), 0, 0, 0.5),
    ((37, 53), (11, 17), -6, -4, 0.8),  # clipped at the top-left
    ((37, 53), (11, 17), 45, 30, 1.0),  # clipped at the bottom-right
    ((20, 20), (40, 41), -9, -11, 0.3),  # layer bigger than the frame on every side
    ((20, 20), (5, 5), 20, 0, 1.0),  # just off the right edge: no-op
    ((20, 20), (5, 5), -5, -5, 1.0),  # just off the top-left: no-op
    ((720, 1280), (101, 333), 1000, -50, 0.9),
]


@pytest.mark.parametrize(("frame_shape", "layer_shape", "x", "y", "opacity"), ALPHA_CASES)
def test_alpha_over_matches_reference_and_clips(frame_shape, layer_shape, x, y, opacity) -> None:
    dst = random_image(*frame_shape, seed=1)
    layer = random_image(*layer_shape, channels=4, seed=2)
    want = alpha_over_oracle(dst, layer, x, y, opacity)
    got = dst.copy()
    assert alpha_over(got, layer, x, y, opacity) is got
    np.testing.assert_allclose(got, want, atol=0)


def test_alpha_over_kernel_matches_reference_directly() -> None:
    dst = random_image(50, 71, seed=3)
    layer = random_image(20, 33, channels=4, seed=4)
    got, want = dst.copy(), dst.copy()
    _alpha_over_kernel(got, layer, 0, 40, 5, 0, 28, 10, 178)
    alpha_over_reference(want, layer, 0, 40, 5, 0, 28, 10, 178)
    np.testing.assert_array_equal(got, want)


def test_shift_division_by_255_is_exact_over_the_blend_range() -> None:
    # The largest value the blend divides is 255 * 255 + 127.
    values = np.arange(255 * 255 + 128, dtype=np.int32)
    np.testing.assert_array_equal(_div255(values), values // 255)
    assert all(_div255(np.int32(v)) == v // 255 for v in (0, 254, 255, 509, 510, 65152))


def test_alpha_over_extremes_of_alpha_and_opacity() -> None:
    dst = random_image(8, 9, seed=5)
    layer = random_image(8, 9, channels=4, seed=6)
    layer[..., 3] = 255
    opaque = alpha_over(dst.copy(), layer, 0, 0)
    np.testing.assert_array_equal(opaque, layer[..., :3])
    np.testing.assert_array_equal(alpha_over(dst.copy(), layer, 0, 0, opacity=0.0), dst)
    layer[..., 3] = 0
    np.testing.assert_array_equal(alpha_over(dst.copy(), layer, 0, 0), dst)
    # Half alpha over black: (200 * 128 + 127) // 255 = 100.
    layer[..., :3], layer[..., 3] = 200, 128
    assert (alpha_over(np.zeros((8, 9, 3), np.uint8), layer, 0, 0) == 100).all()


# --- crossfade ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 3), (37, 53, 3), (72, 128, 3), (5, 7), (11,)])
@pytest.mark.parametrize("t", [0.0, 0.25, 0.5, 0.731, 1.0])
def test_crossfade_matches_reference(shape, t) -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = rng.integers(0, 256, shape, dtype=np.uint8)
    got = crossfade(a, b, np.empty_like(a), t)
    want = np.empty_like(a)
    crossfade_reference(a.reshape(shape[0], -1), b.reshape(shape[0], -1), want.reshape(shape[0], -1),
                        round(t * 65536))
    np.testing.assert_allclose(got, want, atol=0)
    float_blend = a * (1 - t) + b.astype(np.float64) * t
    np.testing.assert_allclose(got, float_blend, atol=0.5 + 1e-9)


def test_crossfade_ends_are_exact_and_midpoints_lie_between() -> None:
    a = random_image(36, 64, seed=8)
    b = random_image(36, 64, seed=9)
    np.testing.assert_array_equal(crossfade(a, b, np.empty_like(a), 0.0), a)
    np.testing.assert_array_equal(crossfade(a, b, np.empty_like(a), 1.0), b)
    mid = crossfade(a, b, np.empty_like(a), 0.4)
    assert ((mid >= np.minimum(a, b)) & (mid <= np.maximum(a, b))).all()
    pixel_a, pixel_b = np.array([[[0, 100, 255]]], np.uint8), np.array([[[255, 100, 0]]], np.uint8)
    np.testing.assert_array_equal(crossfade(pixel_a, pixel_b, np.empty_like(pixel_a), 0.5), [[[128, 100, 128]]])
    # In place, as the renderer fades the previous scene into the current frame.
    frame = b.copy()
    crossfade(a, frame, frame, 0.4)
    np.testing.assert_array_equal(frame, mid)


def test_crossfade_kernel_directly() -> None:
    a = random_image(10, 12, seed=10).reshape(10, -1)
    b = random_image(10, 12, seed=11).reshape(10, -1)
    got, want = np.empty_like(a), np.empty_like(a)
    _crossfade_kernel(a, b, got, 12345)
    crossfade_reference(a, b, want, 12345)
    np.testing.assert_array_equal(got, want)


# --- RGB -> yuv420p -----------------------------------------------------------------------------


def yuv_float_formula(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.709 limited range from the textbook float formula, chroma from 2x2 means, rounded half up."""
    kr, kb = 0.2126, 0.0722
    px = rgb.astype(np.float64)
    luma = kr * px[..., 0] + (1 - kr - kb) * px[..., 1] + kb * px[..., 2]
    y = 16 + 219 / 255 * luma
    h, w = rgb.shape[:2]
    quad = px.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    qluma = kr * quad[..., 0] + (1 - kr - kb) * quad[..., 1] + kb * quad[..., 2]
    u = 128 + 224 / 255 * (quad[..., 2] - qluma) / (2 * (1 - kb))
    v = 128 + 224 / 255 * (quad[..., 0] - qluma) / (2 * (1 - kr))
    return tuple(np.floor(p + 0.5) for p in (y, u, v))


def planes_for(h: int, w: int, pad: int = 0, fill: int = 7) -> list[np.ndarray]:
    return [
        np.full((h, w + pad), fill, np.uint8),
        np.full((h // 2, w // 2 + pad), fill, np.uint8),
        np.full((h // 2, w // 2 + pad), fill, np.uint8),
    ]


@pytest.mark.parametrize(("h", "w", "pad"), [(2, 2, 0), (36, 64, 0), (48, 70, 26), (72, 128, 32), (720, 1280, 0)])
def test_rgb_to_yuv420p_matches_reference_and_float_formula(h, w, pad) -> None:
    rgb = random_image(h, w, seed=h + w)
    got, want = planes_for(h, w, pad), planes_for(h, w, pad)
    rgb_to_yuv420p(rgb, *got)
    rgb_to_yuv420p_reference(rgb, *want)
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(g, r, atol=0)
        assert (g[:, g.shape[1] - pad :] == 7).all() if pad else True  # line padding left alone
    direct = planes_for(h, w, pad)
    _rgb_to_yuv420p_kernel(rgb, *direct, BT709_FIXED)
    for d, r in zip(direct, want, strict=True):
        np.testing.assert_array_equal(d, r)
    # Fixed-point coefficients (1/65536) are within one level of the float formula.
    for g, f in zip(got, yuv_float_formula(rgb), strict=True):
        np.testing.assert_allclose(g[:, : f.shape[1]], f, atol=1)


@pytest.mark.parametrize(
    ("colour", "yuv"),
    [
        ((0, 0, 0), (16, 128, 128)),
        ((255, 255, 255), (235, 128, 128)),
        ((128, 128, 128), (126, 128, 128)),  # 16 + 219 * 128 / 255 = 125.9
        ((255, 0, 0), (63, 102, 240)),
        ((0, 255, 0), (173, 42, 26)),
        ((0, 0, 255), (32, 240, 118)),
    ],
)
def test_rgb_to_yuv420p_pure_colours(colour, yuv) -> None:
    rgb = np.empty((4, 6, 3), np.uint8)
    rgb[:] = colour
    planes = planes_for(4, 6)
    rgb_to_yuv420p(rgb, *planes)
    assert tuple(int(p[0, 0]) for p in planes) == yuv
    assert all((p == p[0, 0]).all() for p in planes)


def test_av_plane_views_are_writable_numpy_arrays() -> None:
    frame = av.VideoFrame(70, 48, "yuv420p")  # 70 is not a multiple of the line alignment: padded lines
    y, u, v = yuv420p_planes(frame)
    assert y.shape[0] == 48 and y.shape[1] >= 70 and u.shape[0] == 24 and u.shape[1] >= 35
    assert y.flags.writeable and y.flags.c_contiguous
    y[:, :70], u[:, :35], v[:, :35] = 200, 90, 160
    back = frame.to_ndarray()  # yuv420p to_ndarray: the planes stacked without line padding
    assert back[0, 0] == 200 and back[47, 69] == 200
    with pytest.raises(ValueError, match="yuv420p"):
        yuv420p_planes(av.VideoFrame(8, 8, "rgb24"))


@pytest.mark.integration
def test_libx264_round_trip_keeps_colours(tmp_path: Path) -> None:
    w, h, fps = 96, 64, 10
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128), (200, 100, 50), (30, 60, 90)]
    path = tmp_path / "clip.mp4"
    frame = av.VideoFrame(w, h, "yuv420p")  # one frame reused for every picture
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "12", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        tag_bt709(stream.codec_context)
        for k, colour in enumerate(colours):
            rgb = np.empty((h, w, 3), np.uint8)
            rgb[:] = colour
            rgb[: h // 2, : w // 2] = 255 - np.array(colour, np.uint8)  # a second colour in one corner
            rgb_frame_to_av(rgb, frame)
            frame.pts = k
            frame.time_base = Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))

    with av.open(str(path)) as clip:
        video = clip.streams.video[0]
        assert video.codec_context.name == "h264"
        decoded = list(clip.decode(video))
    assert len(decoded) == len(colours)
    assert float(decoded[-1].time) == pytest.approx((len(colours) - 1) / fps)
    for frame_out, colour in zip(decoded, colours, strict=True):
        assert frame_out.colorspace == 1  # the stream says BT.709
        rgb = frame_out.to_ndarray(format="rgb24")
        np.testing.assert_allclose(rgb[h - 8, w - 8], colour, atol=4)
        np.testing.assert_allclose(rgb[8, 8], 255 - np.array(colour), atol=4)


# --- validation ---------------------------------------------------------------------------------


def test_validation_errors() -> None:
    image = random_image(10, 12)
    out = np.zeros((6, 8, 3), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        ken_burns(image.astype(np.float32), out, 0, 0, 12, 10)
    with pytest.raises(ValueError, match=r"\[height, width, 3\]"):
        ken_burns(image[..., :2].copy(), out, 0, 0, 12, 10)
    with pytest.raises(ValueError, match="C-contiguous"):
        ken_burns(image[:, ::2], out, 0, 0, 6, 10)
    with pytest.raises(ValueError, match="positive"):
        ken_burns(image, out, 0, 0, 0, 10)
    with pytest.raises(ValueError, match="finite"):
        ken_burns(image, out, float("nan"), 0, 12, 10)
    readonly = out.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        ken_burns(image, readonly, 0, 0, 12, 10)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        ken_burns(image.tolist(), out, 0, 0, 12, 10)

    layer = random_image(4, 4, channels=4)
    with pytest.raises(ValueError, match=r"\[height, width, 4\]"):
        alpha_over(image, image, 0, 0)
    with pytest.raises(TypeError, match="integers"):
        alpha_over(image, layer, 1.5, 0)
    with pytest.raises(ValueError, match="opacity"):
        alpha_over(image, layer, 0, 0, opacity=1.2)

    with pytest.raises(ValueError, match="one shape"):
        crossfade(image, image[:5].copy(), image.copy(), 0.5)
    with pytest.raises(ValueError, match="t must lie"):
        crossfade(image, image, image.copy(), float("nan"))

    with pytest.raises(ValueError, match="even"):
        rgb_to_yuv420p(random_image(9, 12), *planes_for(9, 12))
    with pytest.raises(ValueError, match="plane u"):
        y, _, v = planes_for(10, 12)
        rgb_to_yuv420p(image, y, np.zeros((5, 5), np.uint8), v)
    with pytest.raises(ValueError, match="frame is 16 x 10"):
        rgb_frame_to_av(image, av.VideoFrame(16, 10, "yuv420p"))


# --- the Python path ----------------------------------------------------------------------------


def test_kernels_run_as_python_with_jit_disabled() -> None:
    script = """
        import numpy as np
        from kernels._jit import kernel_backend
        from kernels import compositing as c

        assert kernel_backend() == "numpy", kernel_backend()
        assert not hasattr(c._ken_burns_kernel, "py_func"), "kernel is still a numba dispatcher"
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
        got, want = np.zeros((9, 14, 3), np.uint8), np.zeros((9, 14, 3), np.uint8)
        c.ken_burns(image, got, 1.5, -2.0, 25.0, 16.0)
        c.ken_burns_reference(image, want, 1.5, -2.0, 25.0, 16.0)
        np.testing.assert_array_equal(got, want)

        layer = rng.integers(0, 256, (7, 9, 4), dtype=np.uint8)
        got, want = image.copy(), image.copy()
        c.alpha_over(got, layer, -3, 20, 0.6)
        c.alpha_over_reference(want, layer, 0, 20, 3, 0, 6, 3, 153)
        np.testing.assert_array_equal(got, want)

        rgb = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
        got = [np.zeros((6, 16), np.uint8), np.zeros((3, 8), np.uint8), np.zeros((3, 8), np.uint8)]
        want = [p.copy() for p in got]
        c.rgb_to_yuv420p(rgb, *got)
        c.rgb_to_yuv420p_reference(rgb, *want)
        for g, r in zip(got, want):
            np.testing.assert_array_equal(g, r)
        print("python path ok")
    """
    done = run_python(script, NUMBA_DISABLE_JIT="1")
    assert done.returncode == 0, done.stderr
    assert "python path ok" in done.stdout


@pytest.mark.parametrize(("image_shape", "out_shape", "window"), KB_CASES)
def test_ken_burns_plane_matches_reference_and_the_rgb_kernel(image_shape, out_shape, window) -> None:
    from kernels.compositing import _ken_burns_plane_kernel, ken_burns_plane, ken_burns_plane_reference

    image = random_image(*image_shape, seed=sum(image_shape) + 1)
    plane = np.ascontiguousarray(image[..., 1])
    got = np.zeros(out_shape, np.uint8)
    want = np.zeros_like(got)
    assert ken_burns_plane(plane, got, *window) is got
    ken_burns_plane_reference(plane, want, *window)
    np.testing.assert_array_equal(got, want)
    direct = np.zeros_like(got)
    _ken_burns_plane_kernel(plane, direct, *map(float, window))
    np.testing.assert_array_equal(direct, want)
    rgb = np.zeros((*out_shape, 3), np.uint8)
    ken_burns(image, rgb, *window)
    np.testing.assert_array_equal(rgb[..., 1], got)  # one channel of the RGB resample, to the bit
    with pytest.raises(ValueError, match="height, width"):
        ken_burns_plane(image, got, *window)


@pytest.mark.parametrize(("x", "y", "opacity"), [(0, 0, 1.0), (-5, 3, 0.6), (40, 20, 1.0), (70, 2, 0.3), (3, -9, 0.0)])
def test_plane_over_matches_reference_and_each_channel_of_alpha_over(x, y, opacity) -> None:
    from kernels.compositing import _plane_over_kernel, plane_over, plane_over_reference

    rng = np.random.default_rng(abs(x * 31 + y))
    frame = rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)
    layer = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    rgb = alpha_over(frame.copy(), layer, x, y, opacity)
    alpha = np.ascontiguousarray(layer[..., 3])
    for c in range(3):
        dst = np.ascontiguousarray(frame[..., c])
        src = np.ascontiguousarray(layer[..., c])
        got = plane_over(dst.copy(), src, alpha, x, y, opacity)
        np.testing.assert_array_equal(got, rgb[..., c])  # one channel of the RGB blend, to the bit
        want = dst.copy()
        dx, dy = max(x, 0), max(y, 0)
        cw, ch = min(x + 30, 64) - dx, min(y + 20, 36) - dy
        level = round(opacity * 255)
        if level and cw > 0 and ch > 0:
            plane_over_reference(want, src, alpha, dx, dy, dx - x, dy - y, cw, ch, level)
            direct = dst.copy()
            _plane_over_kernel(direct, src, alpha, dx, dy, dx - x, dy - y, cw, ch, level)
            np.testing.assert_array_equal(direct, want)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="one shape"):
        plane_over(dst, src, alpha[:5], 0, 0)


@pytest.mark.parametrize("t", [0.0, 0.41, 1.0])
def test_ken_burns_plane_at_frame_size_matches_reference_at_the_extremes(t) -> None:
    # The kernel blends down before across; only exact integer sums make that order bit-identical,
    # so the largest values (a 0/255 checkerboard) and a real frame size are checked.
    from kernels.compositing import _ken_burns_plane_kernel, ken_burns_plane_reference

    plane = np.where((np.arange(1080)[:, None] + np.arange(1920)[None, :]) % 2 == 0, 255, 0).astype(np.uint8)
    plane[:, :7] = 255  # a solid edge, so clamped columns read the maximum
    window = ken_burns_window(1920, 1080, 1280, 720, t, zoom_to=1.12, pan=(0.06, 0.03))
    for source, out_shape, scale in ((plane, (720, 1280), 1), (np.ascontiguousarray(plane[::2, ::2]), (360, 640), 2)):
        win = tuple(v / scale for v in window)
        got, want = np.zeros(out_shape, np.uint8), np.zeros(out_shape, np.uint8)
        _ken_burns_plane_kernel(source, got, *win)
        ken_burns_plane_reference(source, want, *win)
        np.testing.assert_array_equal(got, want)
    outside = np.zeros((9, 16), np.uint8), np.zeros((9, 16), np.uint8)  # a window wholly left of the plane
    _ken_burns_plane_kernel(plane, outside[0], -50.0, 3.0, 16.0, 9.0)
    ken_burns_plane_reference(plane, outside[1], -50.0, 3.0, 16.0, 9.0)
    np.testing.assert_array_equal(*outside)


@pytest.mark.parametrize(("out_shape", "window", "picked"), [
    ((36, 64), (10.3, 7.1, 150.2, 84.6), True),  # reduced: pixels picked from rows blended across
    ((36, 64), (150.0, 90.0, 80.0, 45.0), True),  # clamped at the right edge: repeated columns, weight 0
    ((36, 64), (-10.0, -7.5, 80.0, 45.0), False),  # clamped at the left edge: column 0 also starts a blend
    ((90, 160), (20.5, 10.25, 60.0, 33.75), False),  # enlarged: columns shared with other weights, gathered
])
def test_ken_burns_plane_both_ways_across_match_reference(out_shape, window, picked) -> None:
    from kernels.compositing import (
        _column_weights,
        _ken_burns_plane_kernel,
        _plane_columns,
        _sample_axis,
        ken_burns_plane_reference,
    )

    plane = np.ascontiguousarray(random_image(120, 200, seed=5)[..., 0])
    lo, span, first, weight = _plane_columns(*_sample_axis(window[0], window[2], out_shape[1], plane.shape[1]))
    assert _column_weights(first, weight, span)[1] is picked  # the case takes the path it names
    got, want = np.zeros(out_shape, np.uint8), np.zeros(out_shape, np.uint8)
    _ken_burns_plane_kernel(plane, got, *window)
    ken_burns_plane_reference(plane, want, *window)
    np.testing.assert_array_equal(got, want)
