"""One scene → one self-contained MP4 segment (H.264 yuv420p + AAC), built frame by frame.

A frame is a pure function of its index: the backdrop (the scene's picture under a slow Ken
Burns move, or an animated theme gradient), a cross-fade in from the previous scene's backdrop,
then pre-rendered layers blended on top (title or caption, subtitles, presenter, progress bar).
Text and sprites are laid out once per scene; per frame only kernels run.

Frames are drawn in the encoder's own yuv420p planes: the backdrop is resampled straight into Y,
U and V (the picture is converted once per scene), which costs half of resampling RGB and needs no
conversion per frame, and each layer, converted once, blends plane by plane with alpha_over's
arithmetic. Frame k+1 is drawn while the encoder takes frame k.
"""

from __future__ import annotations

import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import av
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from kernels._jit import limit_kernel_threads
from kernels.audio import rms_envelope
from kernels.compositing import (
    alpha_over,
    crossfade,
    ken_burns,
    ken_burns_plane,
    ken_burns_window,
    plane_over,
    rgb_to_yuv420p,
    tag_bt709,
    yuv420p_planes,
)
from tasks.avatar import load_avatar
from tasks.errors import RenderError
from tasks.layout import PALETTES, Cue, Palette, bar, gradient, subtitle_cues, text_panel, wrap
from tasks.models import Narration, RenderOptions, Scene, Segment
from tasks.timeline import LEAD_S, scene_frames, scene_pcm

if TYPE_CHECKING:
    from tasks.images import Picture

FADE_S = 0.4
CAPTION_FADE_S = 0.5
AUDIO_FRAME = 1024
STILL_AT = 0.4
STILL_WIDTH = 640


class SceneContext(BaseModel):
    """Where a scene sits in its video: position, theme, presenter, and the kind of scene before it."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    index: int = Field(0, ge=0)
    total: int = Field(1, ge=1)
    theme: str = "midnight"
    previous_kind: str | None = None
    avatar: str | None = None
    #: Content hash of a PNG avatar, so editing the file re-renders the scenes that show it.
    avatar_digest: str | None = None
    #: The PNG avatar itself, read where the flow runs: a worker on another machine has no such file.
    avatar_png: bytes | None = Field(None, repr=False)


class _Backdrop:
    """The moving picture behind a scene: a picture with Ken Burns, or a drifting gradient."""

    def __init__(self, picture: Picture | None, size: tuple[int, int], palette: Palette, seed: int, dim: float):
        w, h = size
        if picture is not None:
            rgb = picture.to_rgb()
        else:
            # A gradient larger than the frame, so the same pan-and-zoom makes it drift.
            rgb = gradient(int(w * 1.3) + 2, int(h * 1.3) + 2, palette)
        if dim < 1.0:
            rgb = np.ascontiguousarray((rgb.astype(np.uint16) * int(dim * 256) >> 8).astype(np.uint8))
        self.image = rgb
        self.planes = _yuv_planes(rgb)
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


def _yuv_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
class _Planes:
    """A frame's Y, U and V planes: arrays of its own, or an encoder frame's planes drawn in place."""

    y: np.ndarray
    cb: np.ndarray
    cr: np.ndarray

    @classmethod
    def blank(cls, width: int, height: int) -> _Planes:
        chroma = (height // 2, width // 2)
        return cls(np.empty((height, width), np.uint8), np.empty(chroma, np.uint8), np.empty(chroma, np.uint8))

    @classmethod
    def of_frame(cls, vf: av.VideoFrame) -> _Planes | None:
        """``vf``'s own planes, or None where its rows are padded (the kernels need contiguous planes).

        Drawing straight into the encoder's frame saves copying every finished frame into it.
        """
        y, cb, cr = yuv420p_planes(vf)
        if y.shape[1] != vf.width or cb.shape[1] != vf.width // 2 or cr.shape[1] != vf.width // 2:
            return None
        return cls(y, cb, cr)

    def crossfade_from(self, previous: _Planes, t: float) -> None:
        for a, b in ((previous.y, self.y), (previous.cb, self.cb), (previous.cr, self.cr)):
            crossfade(a, b, b, t)


def fill_av_frame(planes: _Planes, vf: av.VideoFrame) -> av.VideoFrame:
    """Copy finished planes into the encoder's frame unless they were drawn there, and tag it BT.709."""
    for view, plane in zip(yuv420p_planes(vf), (planes.y, planes.cb, planes.cr), strict=True):
        if view.ctypes.data != plane.ctypes.data:  # rows of the frame may be padded
            view[:, : plane.shape[1]] = plane
    return tag_bt709(vf)


@dataclass
class _PlaneLayer:
    """A layer as Y, U and V planes with their alphas, its corner and size even: it blends without RGB."""

    y: np.ndarray
    alpha: np.ndarray
    cb: np.ndarray
    cr: np.ndarray
    chroma_alpha: np.ndarray
    x: int
    top: int

    def blend(self, planes: _Planes, opacity: float, dx: int = 0) -> None:
        """Blend over ``planes``, moved ``dx`` (even) pixels to the right."""
        x = self.x + dx
        plane_over(planes.y, self.y, self.alpha, x, self.top, opacity)
        plane_over(planes.cb, self.cb, self.chroma_alpha, x // 2, self.top // 2, opacity)
        plane_over(planes.cr, self.cr, self.chroma_alpha, x // 2, self.top // 2, opacity)


def _plane_layer(rgba: np.ndarray, x: int, y: int) -> _PlaneLayer:
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
    weights = alpha.reshape(ph // 2, 2, pw // 2, 2).astype(np.int64)
    total = weights.sum(axis=(1, 3))
    blocks = rgb.reshape(ph // 2, 2, pw // 2, 2, 3).astype(np.int64)
    weighted = (blocks * weights[..., None]).sum(axis=(1, 3))
    plain = blocks.sum(axis=(1, 3))
    colour = np.where(total[..., None] > 0, (weighted + total[..., None] // 2) // np.maximum(total, 1)[..., None],
                      (plain + 2) // 4).astype(np.uint8)
    block_rgb = np.ascontiguousarray(np.repeat(np.repeat(colour, 2, axis=0), 2, axis=1))
    rgb_to_yuv420p(block_rgb, np.empty_like(luma), cb, cr)
    chroma_alpha = ((total + 2) // 4).astype(np.uint8)
    return _PlaneLayer(luma, alpha, cb, cr, chroma_alpha, x - left, y - top)


@dataclass
class _Layer:
    rgba: np.ndarray
    x: int
    y: int


def render_scene(
    scene: Scene,
    narration: Narration,
    options: RenderOptions,
    picture: Picture | None = None,
    previous_picture: Picture | None = None,
    context: SceneContext | None = None,
) -> Segment:
    """Render ``scene`` with its ``narration`` into a self-contained MP4 segment."""
    context = context or SceneContext()
    if narration.scene_id != scene.id:
        raise RenderError(f"narration of scene {narration.scene_id!r} was given for scene {scene.id!r}")
    width, height = options.size
    fps = options.fps
    palette = PALETTES.get(context.theme, PALETTES["midnight"])
    frames = scene_frames(narration.duration_s, fps)
    dim = 0.55 if scene.kind == "title" else 0.8
    backdrop = _Backdrop(picture, (width, height), palette, context.index, dim)
    previous = None
    if context.index > 0:
        prev_dim = 0.55 if context.previous_kind == "title" else 0.8
        prev = _Backdrop(previous_picture, (width, height), palette, context.index - 1, prev_dim)
        previous = np.empty((height, width, 3), np.uint8)
        prev.draw(previous, 1.0)

    layers = _static_layers(scene, palette, width, height)
    cues = [_cue_layer(c, palette, width, height) for c in subtitle_cues(narration.words, narration.duration_s)]
    avatar = load_avatar(context.avatar, int(height * 0.26), context.avatar_png) if context.avatar else None
    pcm = scene_pcm(narration, frames, fps)
    envelope = rms_envelope(pcm, narration.sample_rate, fps, frames)
    loudness = np.clip(envelope / max(1e-6, float(envelope.max(initial=0.0))) * 1.2, 0.0, 1.0)
    bar_h = max(4, height // 120)

    fade_frames = max(1, round(FADE_S * fps)) if previous is not None else 0
    caption_frames = max(1, round(CAPTION_FADE_S * fps))
    # The bar is one full-width layer slid in from the left: its visible part is the progress.
    full_bar = bar(width, bar_h, palette.accent)
    bar_planes = _plane_layer(full_bar, 0, height - bar_h)
    static_planes = [_plane_layer(layer.rgba, layer.x, layer.y) for layer in layers]
    cue_planes = {id(layer): _plane_layer(layer.rgba, layer.x, layer.y) for _, layer in cues}
    avatar_planes = {}
    if avatar is not None:
        for sprite in avatar.sprites:
            rgba, x, y, _ = _avatar_layer(sprite, width, height, bar_h)
            avatar_planes[id(sprite)] = _plane_layer(rgba, x, y)
    scratch = _Planes.blank(width, height)
    previous_planes = None
    if previous is not None:
        previous_planes = _Planes.blank(width, height)
        prev.draw_planes(previous_planes.y, previous_planes.cb, previous_planes.cr, 1.0)
    still_at = int(frames * STILL_AT)
    stills: list[bytes] = []

    def layers_at(k: int, u: float) -> list[tuple[np.ndarray, int, int, float, _PlaneLayer, int]]:
        """The layers of frame ``k``, bottom first: ``(rgba, x, y, opacity, planes, planes_dx)``."""
        out = [(layer.rgba, layer.x, layer.y, 1.0 if n > 0 else min(1.0, (k + 1) / caption_frames), converted, 0)
               for n, (layer, converted) in enumerate(zip(layers, static_planes, strict=True))]
        cue = _active(cues, k / fps - LEAD_S)
        if cue is not None:
            out.append((cue.rgba, cue.x, cue.y, 1.0, cue_planes[id(cue)], 0))
        if avatar is not None:
            sprite = avatar.for_level(float(loudness[k]))
            out.append((*_avatar_layer(sprite, width, height, bar_h), avatar_planes[id(sprite)], 0))
        progress = int(width * (context.index + u) / max(1, context.total))
        if progress > 0:
            # In the planes the bar moves in whole chroma blocks, so its end may sit one pixel short.
            out.append((full_bar, progress - width, height - bar_h, 1.0, bar_planes, (progress - width) & ~1))
        return out

    def compose(k: int, vf: av.VideoFrame) -> av.VideoFrame:
        """Draw frame ``k`` and write it into ``vf``'s yuv420p planes."""
        u = k / max(1, frames - 1)
        fade = (k + 1) / (fade_frames + 1) if k < fade_frames else None
        visible = layers_at(k, u)
        planes = _Planes.of_frame(vf) or scratch
        backdrop.draw_planes(planes.y, planes.cb, planes.cr, u)
        if fade is not None:
            planes.crossfade_from(previous_planes, fade)
        for *_, opacity, converted, dx in visible:
            converted.blend(planes, opacity, dx)
        if k == still_at:  # the thumbnail is drawn in RGB, once
            whole = np.empty((height, width, 3), np.uint8)
            backdrop.draw(whole, u)
            if fade is not None:
                crossfade(previous, whole, whole, fade)
            for rgba, x, y, opacity, *_ in visible:
                alpha_over(whole, rgba, x, y, opacity)
            stills.append(_still(whole))
        fill_av_frame(planes, vf)
        vf.pts = k
        return vf

    buf = io.BytesIO()
    try:
        cores = core_share()
        # Drawing gets half the cores and the encoder the rest: the two run side by side, so kernels
        # spread over every core would only queue behind x264 (on 2 cores, one thread draws). A
        # worker given one core draws and encodes in turn, and leaves the other cores to its peers.
        drawing = max(1, (cores or _machine_cores()) // 2)
        with (av.open(buf, "w", format="mp4") as out,
              ThreadPoolExecutor(1, "pagereel-compose", limit_kernel_threads, (drawing,)) as composer):
            video, audio = _streams(out, options, narration.sample_rate, options.threads or cores)
            # Two encoder frames in turn: frame k+1 is drawn into one while x264 takes frame k from
            # the other. Kernels and the encoder both run without the GIL, so the two overlap.
            slots = [av.VideoFrame(width, height, "yuv420p") for _ in range(2)]
            for vf in slots:
                vf.time_base = Fraction(1, fps)
            if cores == 1:
                limit_kernel_threads(1)
                for k in range(frames):
                    out.mux(video.encode(compose(k, slots[0])))
            else:
                pending = composer.submit(compose, 0, slots[0])
                for k in range(frames):
                    vf = pending.result()
                    if k + 1 < frames:
                        # Slot (k+1) % 2 last held frame k-1, whose encode call has returned.
                        pending = composer.submit(compose, k + 1, slots[(k + 1) % 2])
                    out.mux(video.encode(vf))
            out.mux(video.encode(None))
            _encode_audio(out, audio, pcm, narration.sample_rate)
    except av.FFmpegError as exc:
        raise RenderError(f"encoding scene {scene.id!r} failed: {exc}", transient=True) from exc
    still = stills[0] if stills else None
    return Segment(scene_id=scene.id, mp4=buf.getvalue(), duration_s=frames / fps, frames=frames, width=width,
                   height=height, fps=fps, still=still)


def _still(frame: np.ndarray) -> bytes:
    image = Image.fromarray(frame)
    height = round(image.height * STILL_WIDTH / image.width)
    out = io.BytesIO()
    # The fastest zlib level: the default spent as long on one thumbnail as on a second of video.
    thumbnail = image.resize((STILL_WIDTH, max(2, height - height % 2)), Image.Resampling.LANCZOS)
    thumbnail.save(out, "PNG", compress_level=1)
    return out.getvalue()


# --------------------------------------------------------------------------- layers


def _static_layers(scene: Scene, palette: Palette, width: int, height: int) -> list[_Layer]:
    """The text that stays put for the whole scene; the first layer fades in."""
    unit = min(height, int(width * 1.25))
    margin = int(unit * 0.05)
    if scene.kind == "title":
        title = scene.narration.rstrip(".")
        size = int(unit * 0.075)
        lines = wrap(title, max(12, int(width * 0.8 / (size * 0.5))))[:4]
        panel = text_panel(lines, size, palette.text, None)
        layers = [_Layer(panel, (width - panel.shape[1]) // 2, int(height * 0.42) - panel.shape[0] // 2)]
        if scene.caption:
            sub = text_panel([scene.caption], int(unit * 0.04), palette.accent, None)
            layers.append(_Layer(sub, (width - sub.shape[1]) // 2, layers[0].y + panel.shape[0] + margin // 2))
        return layers
    if scene.kind == "closing":
        size = int(unit * 0.06)
        panel = text_panel(wrap(scene.caption or "Source", 30)[:2], size, palette.text, palette.panel)
        return [_Layer(panel, (width - panel.shape[1]) // 2, int(height * 0.38) - panel.shape[0] // 2)]
    if not scene.caption:
        return []
    size = int(unit * 0.05)
    max_chars = max(10, int(width * 0.7 / (size * 0.52)))
    panel = text_panel(wrap(scene.caption, max_chars)[:2], size, palette.text, palette.panel, align="left")
    # A thin accent stripe on the caption's left edge ties it to the theme.
    panel[:, : max(3, size // 8), :3] = palette.accent
    panel[:, : max(3, size // 8), 3] = 255
    return [_Layer(panel, margin, margin)]


def _cue_layer(cue: Cue, palette: Palette, width: int, height: int) -> tuple[Cue, _Layer]:
    size = max(14, min(int(height * 0.042), int(width * 0.9 / (42 * 0.52))))
    panel = text_panel(cue.lines, size, (255, 255, 255), (0, 0, 0, 170), pad=size // 3)
    y = height - panel.shape[0] - int(height * 0.06)
    return cue, _Layer(panel, (width - panel.shape[1]) // 2, y)


def _active(cues: list[tuple[Cue, _Layer]], t: float) -> _Layer | None:
    for cue, layer in cues:
        if cue.start_s <= t < cue.end_s:
            return layer
    return None


def _avatar_layer(sprite: np.ndarray, width: int, height: int, bar_h: int) -> tuple[np.ndarray, int, int, float]:
    sh, sw = sprite.shape[:2]
    return sprite, width - sw - int(width * 0.02), height - sh - bar_h, 1.0


# --------------------------------------------------------------------------- encoding


def core_share() -> int:
    """Cores this render may use: its Dask worker's threads inside a Dask worker, else 0 (the whole machine).

    A Dask worker is sized to the cores it was given; an encoder and kernels spread over the whole
    machine in each of several workers would only queue for the same cores.
    """
    distributed = sys.modules.get("distributed")  # loaded in every Dask worker; never imported here
    if distributed is None:
        return 0
    try:
        return max(1, int(distributed.get_worker().state.nthreads))
    except (ValueError, AttributeError):  # not inside a worker
        return 0


def _machine_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _streams(out: av.container.OutputContainer, options: RenderOptions, sample_rate: int, threads: int):
    codec_options = {"preset": options.preset, "crf": str(options.crf), "bf": "0"}
    if options.keyframe_interval is not None:
        codec_options["g"] = str(options.keyframe_interval)
    video = out.add_stream("libx264", rate=options.fps, options=codec_options)
    video.codec_context.thread_count = threads
    video.width, video.height = options.size
    video.pix_fmt = "yuv420p"
    video.codec_context.time_base = Fraction(1, options.fps)
    tag_bt709(video.codec_context)
    audio = out.add_stream("aac", rate=sample_rate, layout="mono", options={"aac_coder": "fast"})
    return video, audio


def _encode_audio(out: av.container.OutputContainer, stream, pcm: np.ndarray, sample_rate: int) -> None:
    for start in range(0, len(pcm), AUDIO_FRAME):
        chunk = np.ascontiguousarray(pcm[start : start + AUDIO_FRAME]).reshape(1, -1)
        af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        af.sample_rate = sample_rate
        af.pts = start
        af.time_base = Fraction(1, sample_rate)
        out.mux(stream.encode(af))
    out.mux(stream.encode(None))

