"""One scene → one self-contained MP4 segment (H.264 yuv420p + AAC), built frame by frame.

A frame is a pure function of its index: the backdrop (the scene's picture under a slow Ken
Burns move, or an animated theme gradient), a cross-fade in from the previous scene's backdrop,
then pre-rendered layers blended on top (title or caption, subtitles, presenter, progress bar).
Text and sprites are laid out once per scene; per frame only kernels run, and only one frame is
held at a time.
"""

from __future__ import annotations

import io
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
from kernels.compositing import alpha_over, crossfade, ken_burns, ken_burns_window, rgb_frame_to_av, tag_bt709
from tasks.avatar import AvatarSprites, load_avatar
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

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(0, ge=0)
    total: int = Field(1, ge=1)
    theme: str = "midnight"
    previous_kind: str | None = None
    avatar: str | None = None
    #: Content hash of a PNG avatar, so editing the file re-renders the scenes that show it.
    avatar_digest: str | None = None


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
        self.size = size
        # Alternate the direction of the move from scene to scene.
        self.pan = (0.06 if seed % 2 == 0 else -0.06, 0.03 if seed % 3 == 0 else -0.03)
        self.zoom = (1.0, 1.12) if seed % 2 == 0 else (1.12, 1.0)

    def draw(self, out: np.ndarray, u: float) -> None:
        h, w = self.image.shape[:2]
        x0, y0, ww, wh = ken_burns_window(w, h, self.size[0], self.size[1], u, zoom_from=self.zoom[0],
                                          zoom_to=self.zoom[1], pan=self.pan)
        ken_burns(self.image, out, x0, y0, ww, wh)


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
    avatar = load_avatar(context.avatar, int(height * 0.26)) if context.avatar else None
    pcm = scene_pcm(narration, frames, fps)
    envelope = rms_envelope(pcm, narration.sample_rate, fps, frames)
    loudness = np.clip(envelope / max(1e-6, float(envelope.max(initial=0.0))) * 1.2, 0.0, 1.0)
    bar_h = max(4, height // 120)

    fade_frames = max(1, round(FADE_S * fps)) if previous is not None else 0
    caption_frames = max(1, round(CAPTION_FADE_S * fps))
    # The bar is one full-width layer slid in from the left: its visible part is the progress.
    full_bar = bar(width, bar_h, palette.accent)
    frame = np.empty((height, width, 3), np.uint8)
    still_at = int(frames * STILL_AT)
    stills: list[bytes] = []

    def compose(k: int, vf: av.VideoFrame) -> av.VideoFrame:
        """Draw frame ``k`` and write it into ``vf``'s yuv420p planes."""
        u = k / max(1, frames - 1)
        backdrop.draw(frame, u)
        if k < fade_frames:
            crossfade(previous, frame, frame, (k + 1) / (fade_frames + 1))
        for n, layer in enumerate(layers):
            opacity = 1.0 if n > 0 else min(1.0, (k + 1) / caption_frames)
            alpha_over(frame, layer.rgba, layer.x, layer.y, opacity)
        cue = _active(cues, k / fps - LEAD_S)
        if cue is not None:
            alpha_over(frame, cue.rgba, cue.x, cue.y, 1.0)
        if avatar is not None:
            _draw_avatar(frame, avatar, float(loudness[k]), width, height, bar_h)
        progress = int(width * (context.index + u) / max(1, context.total))
        if progress > 0:
            alpha_over(frame, full_bar, progress - width, height - bar_h, 1.0)
        if k == still_at:
            stills.append(_still(frame))
        rgb_frame_to_av(frame, vf)
        vf.pts = k
        return vf

    buf = io.BytesIO()
    try:
        cores = core_share()
        with (av.open(buf, "w", format="mp4") as out,
              ThreadPoolExecutor(1, "pagereel-compose", limit_kernel_threads, (cores,)) as composer):
            video, audio = _streams(out, options, narration.sample_rate, options.threads or cores)
            # Two encoder frames in turn: frame k+1 is drawn into one while x264 takes frame k from
            # the other. Kernels and the encoder both run without the GIL, so the two overlap.
            slots = [av.VideoFrame(width, height, "yuv420p") for _ in range(2)]
            for vf in slots:
                vf.time_base = Fraction(1, fps)
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
    image.resize((STILL_WIDTH, max(2, height - height % 2)), Image.Resampling.LANCZOS).save(out, "PNG")
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


def _draw_avatar(frame: np.ndarray, avatar: AvatarSprites, loudness: float, width: int, height: int,
                 bar_h: int) -> None:
    sprite = avatar.for_level(loudness)
    sh, sw = sprite.shape[:2]
    alpha_over(frame, sprite, width - sw - int(width * 0.02), height - sh - bar_h, 1.0)


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

