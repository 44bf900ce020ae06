"""Frames and layers as BT.709 yuv420p planes: the backdrop's move, layers converted once, blending.

Frames are drawn in the encoder's own yuv420p planes: the backdrop is resampled straight into Y,
U and V (the picture is converted once per scene), which costs half of resampling RGB and needs no
conversion per frame, and each layer, converted once, blends plane by plane with alpha_over's
arithmetic.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import av
import numpy as np
from PIL import Image, ImageFilter

from kernels.compositing import (
    crossfade,
    ken_burns,
    ken_burns_plane,
    ken_burns_window,
    plane_over,
    rgb_to_yuv420p,
    yuv420p_planes,
)
from tasks.layout import Palette, gradient

if TYPE_CHECKING:
    from tasks.images import Picture


class Backdrop:
    """The moving picture behind a scene: a picture with Ken Burns, or a drifting gradient.

    A picture too small or too narrow for the frame moves whole on a blurred, darkened copy of itself.
    """

    def __init__(self, picture: Picture | None, size: tuple[int, int], palette: Palette, seed: int, dim: float):
        # Shared with other scenes' backdrops of the same picture (or theme) and light: never written.
        self.image, self.planes = backdrop_pixels(picture, size, palette, dim)
        self.size = size
        # Alternate the direction of the move from scene to scene.
        self.pan = (0.06 if seed % 2 == 0 else -0.06, 0.03 if seed % 3 == 0 else -0.03)
        self.zoom = (1.0, 1.12) if seed % 2 == 0 else (1.12, 1.0)

    def window(self, u: float) -> tuple[float, float, float, float]:
        h, w = self.image.shape[:2]
        return ken_burns_window(w, h, self.size[0], self.size[1], u, zoom_from=self.zoom[0], zoom_to=self.zoom[1],
                                pan=self.pan)

    def draw(self, out: np.ndarray, u: float) -> None:
        """The whole frame in RGB."""
        ken_burns(self.image, out, *self.window(u))

    def draw_planes(self, y: np.ndarray, cb: np.ndarray, cr: np.ndarray, u: float) -> None:
        """The whole frame as yuv420p planes."""
        x0, y0, ww, wh = self.window(u)
        ken_burns_plane(self.planes[0], y, x0, y0, ww, wh)
        for source, out in zip(self.planes[1:], (cb, cr), strict=True):
            ken_burns_plane(source, out, x0 / 2, y0 / 2, ww / 2, wh / 2)


@functools.lru_cache(maxsize=4)
def backdrop_pixels(picture: Picture | None, size: tuple[int, int], palette: Palette,
                    dim: float) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A backdrop's dimmed RGB pixels and their yuv420p planes, made once for the scenes that share them.

    Each scene draws its own backdrop and, for the cross-fade, the previous scene's; every scene
    without a picture has the same theme gradient. At 1080p making one (the gradient is 1.3x the
    frame on each side, in float32) cost as much CPU as drawing a second of frames, and a video
    made it twice per scene. The few kept are those that scenes rendering side by side are using.
    """
    w, h = size
    if picture is not None:
        rgb = picture.to_rgb()
        if too_small_or_narrow(rgb.shape[1], rgb.shape[0], w, h):
            rgb = on_blurred_copy(rgb, w, h)
    else:
        # A gradient larger than the frame, so the same pan-and-zoom makes it drift.
        rgb = _theme_gradient(int(w * 1.3) + 2, int(h * 1.3) + 2, palette)
    if dim < 1.0:
        rgb = np.ascontiguousarray((rgb.astype(np.uint16) * int(dim * 256) >> 8).astype(np.uint8))
    return rgb, yuv_planes(rgb)


@functools.lru_cache(maxsize=2)
def _theme_gradient(width: int, height: int, palette: Palette) -> np.ndarray:
    """The theme's gradient, made once for title and body scenes alike (they differ only in dimming); never written."""
    return gradient(width, height, palette)


#: A picture that would have to be enlarged more than this to cover the frame, or lose more than this
#: share of its width or height to the frame's shape, is set whole on a blurred copy of itself.
MAX_ENLARGE = 1.5
MAX_CROPPED = 0.35
#: The blurred copy's light, and how much larger than the frame the set picture is (room for the move).
SURROUND_LIGHT = 0.45
SURROUND_MARGIN = 1.12


def too_small_or_narrow(pw: int, ph: int, width: int, height: int) -> bool:
    """Whether a ``pw`` x ``ph`` picture would be stretched or cropped too much to fill a ``width`` x ``height``."""
    cover = max(width / pw, height / ph)
    over = max(pw * cover / width, ph * cover / height)  # 1.0 where the shapes agree
    return cover > MAX_ENLARGE or 1 - 1 / over > MAX_CROPPED


def on_blurred_copy(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` whole and unstretched, centred on a blurred, darkened copy of itself that fills the frame.

    Drawn once per scene (Pillow); the result is a little larger than the frame, so the Ken Burns
    move still has room.
    """
    cw, ch = round(width * SURROUND_MARGIN), round(height * SURROUND_MARGIN)
    picture = Image.fromarray(rgb)
    cover = max(cw / picture.width, ch / picture.height)
    small = picture.resize((max(1, round(picture.width * cover / 8)), max(1, round(picture.height * cover / 8))),
                           Image.Resampling.BILINEAR)
    surround = small.filter(ImageFilter.GaussianBlur(max(2, min(small.size) // 12)))
    surround = surround.resize((round(picture.width * cover), round(picture.height * cover)), Image.Resampling.BILINEAR)
    left, top = (surround.width - cw) // 2, (surround.height - ch) // 2
    canvas = surround.crop((left, top, left + cw, top + ch)).point(lambda v: int(v * SURROUND_LIGHT))
    fit = min(cw * 0.9 / picture.width, ch * 0.9 / picture.height, MAX_ENLARGE)
    size = (max(1, round(picture.width * fit)), max(1, round(picture.height * fit)))
    canvas.paste(picture.resize(size, Image.Resampling.LANCZOS), ((cw - size[0]) // 2, (ch - size[1]) // 2))
    return np.ascontiguousarray(np.array(canvas, dtype=np.uint8))


def yuv_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.709 yuv420p planes of a picture (an odd last row or column is repeated to make it even)."""
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        rgb = np.ascontiguousarray(np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
        h, w = rgb.shape[:2]
    y = np.empty((h, w), np.uint8)
    cb = np.empty((h // 2, w // 2), np.uint8)
    cr = np.empty((h // 2, w // 2), np.uint8)
    rgb_to_yuv420p(rgb, y, cb, cr)
    return y, cb, cr


@dataclass
class Planes:
    """A frame's Y, U and V planes: arrays of its own, or an encoder frame's planes drawn in place."""

    y: np.ndarray
    cb: np.ndarray
    cr: np.ndarray

    @classmethod
    def blank(cls, width: int, height: int) -> Planes:
        chroma = (height // 2, width // 2)
        return cls(np.empty((height, width), np.uint8), np.empty(chroma, np.uint8), np.empty(chroma, np.uint8))

    @classmethod
    def of_frame(cls, vf: av.VideoFrame) -> Planes | None:
        """``vf``'s own planes, or None where its rows are padded (the kernels need contiguous planes).

        Drawing straight into the encoder's frame saves copying every finished frame into it.
        """
        y, cb, cr = yuv420p_planes(vf)
        if y.shape[1] != vf.width or cb.shape[1] != vf.width // 2 or cr.shape[1] != vf.width // 2:
            return None
        return cls(y, cb, cr)

    def crossfade_from(self, previous: Planes, t: float) -> None:
        for a, b in ((previous.y, self.y), (previous.cb, self.cb), (previous.cr, self.cr)):
            crossfade(a, b, b, t)


@dataclass
class PlaneLayer:
    """A layer as Y, U and V planes with their alphas, its corner and size even: it blends without RGB."""

    y: np.ndarray
    alpha: np.ndarray
    cb: np.ndarray
    cr: np.ndarray
    chroma_alpha: np.ndarray
    x: int
    top: int

    def blend(self, planes: Planes, opacity: float, dx: int = 0) -> None:
        """Blend over ``planes``, moved ``dx`` (even) pixels to the right."""
        x = self.x + dx
        plane_over(planes.y, self.y, self.alpha, x, self.top, opacity)
        plane_over(planes.cb, self.cb, self.chroma_alpha, x // 2, self.top // 2, opacity)
        plane_over(planes.cr, self.cr, self.chroma_alpha, x // 2, self.top // 2, opacity)


def plane_layer(rgba: np.ndarray, x: int, y: int) -> PlaneLayer:
    """Convert an RGBA layer placed at ``(x, y)`` once, so frames blend it plane by plane."""
    # Transparent padding puts the corner and the far edge on even pixels: whole chroma blocks.
    left, top = x % 2, y % 2
    h, w = rgba.shape[:2]
    padded = np.pad(rgba, ((top, (h + top) % 2), (left, (w + left) % 2), (0, 0)))
    rgb, alpha = np.ascontiguousarray(padded[..., :3]), np.ascontiguousarray(padded[..., 3])
    ph, pw = alpha.shape
    luma = np.empty((ph, pw), np.uint8)
    cb = np.empty((ph // 2, pw // 2), np.uint8)
    cr = np.empty_like(cb)
    rgb_to_yuv420p(rgb, luma, cb, cr)
    # A block's chroma is its alpha-weighted colour: where a glyph's edge covers part of a block, the
    # colour is the glyph's and the block's alpha (the mean) says how much of it shows.
    # Sums of four 8-bit products fit in int32; summing the four corners of each block as strided
    # views keeps every temporary a quarter of the layer (int64 over 2x2 blocks cost 1080p runs seconds).
    weights = alpha.astype(np.int32)
    total = _block_sums(weights)
    pixels = rgb.astype(np.int32)
    weighted = _block_sums(pixels * weights[..., None])
    plain = _block_sums(pixels)
    colour = np.where(total[..., None] > 0, (weighted + total[..., None] // 2) // np.maximum(total, 1)[..., None],
                      (plain + 2) // 4).astype(np.uint8)
    block_rgb = np.ascontiguousarray(np.repeat(np.repeat(colour, 2, axis=0), 2, axis=1))
    rgb_to_yuv420p(block_rgb, np.empty_like(luma), cb, cr)
    chroma_alpha = ((total + 2) // 4).astype(np.uint8)
    return PlaneLayer(luma, alpha, cb, cr, chroma_alpha, x - left, y - top)


def _block_sums(a: np.ndarray) -> np.ndarray:
    """Sums over the 2x2 blocks of ``a`` (even height and width), in ``a``'s dtype."""
    return a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]
