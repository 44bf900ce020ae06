"""One scene → one self-contained MP4 segment (H.264 yuv420p + AAC), built frame by frame.

Three parts: the scene's plan (``tasks/scene_plan.py``: backdrops, named layers with their places
and times, the look), each frame drawn as a pure function of the plan and its index
(:func:`draw_frame`), and the encoder loop here. A frame is the backdrop (the scene's picture
under a slow Ken Burns move, or an animated theme gradient), a cross-fade in from the previous
scene's backdrop, then pre-rendered layers blended on top (title or caption, subtitles,
presenter, progress bar). Text and sprites are laid out once per scene; per frame only kernels run.

Frames are drawn in the encoder's own yuv420p planes (``tasks/planes.py``). Frame k+1 is drawn
while the encoder takes frame k.
"""

from __future__ import annotations

import functools
import io
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from tasks.blobs import StoredNarration, StoredSegment, loaded_narration, run_storage, stored_segment
from tasks.errors import RenderError
from tasks.models import Narration, RenderOptions, Scene, Segment

# PyAV, Pillow, the kernels (Numba and LLVM) and the scene's plan are imported where a frame is drawn
# or encoded, never at import: a run whose scenes all come from the cache keys and looks up the render
# task without loading them. (Its cache key still covers them: tasks.cachekeys reads imports anywhere.)
if TYPE_CHECKING:
    import av
    import numpy as np

    from tasks.images import Picture
    from tasks.planes import Planes
    from tasks.scene_plan import FrameState, ScenePlan

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


def render_scene(
    scene: Scene,
    narration: Narration,
    options: RenderOptions,
    picture: Picture | None = None,
    previous_picture: Picture | None = None,
    context: SceneContext | None = None,
) -> Segment:
    """Render ``scene`` with its ``narration`` into a self-contained MP4 segment."""
    import av

    from tasks.planes import Planes
    from tasks.scene_plan import plan_scene

    context = context or SceneContext()
    if narration.scene_id != scene.id:
        raise RenderError(f"narration of scene {narration.scene_id!r} was given for scene {scene.id!r}")
    plan = plan_scene(scene, narration, options, context, picture, previous_picture)
    stills: list[bytes] = []
    compose = functools.partial(_compose, plan, Planes.blank(plan.width, plan.height), stills)
    try:
        mp4 = _encode(plan, options, narration.sample_rate, compose)
    except av.FFmpegError as exc:
        raise RenderError(f"encoding scene {scene.id!r} failed: {exc}", transient=True) from exc
    return Segment(scene_id=scene.id, mp4=mp4, duration_s=plan.frames / plan.fps, frames=plan.frames,
                   width=plan.width, height=plan.height, fps=plan.fps, still=stills[0] if stills else None)


def render_scene_kept(
    scene: Scene,
    narration: Narration | StoredNarration,
    options: RenderOptions,
    picture: Picture | None = None,
    previous_picture: Picture | None = None,
    context: SceneContext | None = None,
    *,
    blobs: bool = False,
) -> Segment | StoredSegment:
    """:func:`render_scene` as a task runs it: the narration may be a stored one, read back from the run's
    result storage, and with ``blobs`` the MP4 goes there too and a small :class:`StoredSegment` is returned.
    """
    storage = run_storage()
    segment = render_scene(scene, loaded_narration(storage, narration), options, picture, previous_picture, context)
    if blobs and storage is not None:
        return stored_segment(storage, segment)
    return segment


def draw_frame(plan: ScenePlan, k: int, planes: Planes) -> FrameState:
    """Draw frame ``k`` of ``plan`` into ``planes`` (and nothing else); returns what the frame shows."""
    from tasks.scene_plan import frame_at

    state = frame_at(plan, k)
    plan.backdrop.draw_planes(planes.y, planes.cb, planes.cr, state.u)
    if state.fade is not None:
        planes.crossfade_from(plan.previous_planes, state.fade)
    for shown in state.layers:
        # In the planes a layer moves in whole chroma blocks, so the progress bar's end may sit one pixel short.
        shown.layer.planes.blend(planes, shown.opacity, shown.dx & ~1)
    return state


def draw_rgb(plan: ScenePlan, state: FrameState) -> np.ndarray:
    """The frame ``state`` in RGB (the thumbnail, drawn once per scene)."""
    import numpy as np

    from kernels.compositing import alpha_over, crossfade

    whole = np.empty((plan.height, plan.width, 3), np.uint8)
    plan.backdrop.draw(whole, state.u)
    if state.fade is not None:
        crossfade(plan.previous_rgb, whole, whole, state.fade)
    for shown in state.layers:
        alpha_over(whole, shown.layer.rgba, shown.layer.x + shown.dx, shown.layer.y, shown.opacity)
    return whole


def _compose(plan: ScenePlan, scratch: Planes, stills: list[bytes], k: int, vf: av.VideoFrame) -> av.VideoFrame:
    """Draw frame ``k`` into ``vf``'s yuv420p planes (keeping the thumbnail when it comes by)."""
    from tasks.planes import Planes

    planes = Planes.of_frame(vf) or scratch
    state = draw_frame(plan, k, planes)
    if k == plan.still_at:
        stills.append(_still(draw_rgb(plan, state)))
    fill_av_frame(planes, vf)
    vf.pts = k
    return vf


def fill_av_frame(planes: Planes, vf: av.VideoFrame) -> av.VideoFrame:
    """Copy finished planes into the encoder's frame unless they were drawn there, and tag it BT.709."""
    from kernels.compositing import tag_bt709, yuv420p_planes

    for view, plane in zip(yuv420p_planes(vf), (planes.y, planes.cb, planes.cr), strict=True):
        if view.ctypes.data != plane.ctypes.data:  # rows of the frame may be padded
            view[:, : plane.shape[1]] = plane
    return tag_bt709(vf)


Compose = Callable[[int, "av.VideoFrame"], "av.VideoFrame"]


def _encode(plan: ScenePlan, options: RenderOptions, sample_rate: int, compose: Compose) -> bytes:
    """Encode the plan's frames, drawn by ``compose``, and its sound into an MP4."""
    import av

    from kernels._jit import limit_kernel_threads
    from tasks.pcm import encode as encode_pcm

    buf = io.BytesIO()
    cores = core_share()
    # Drawing gets half the cores and the encoder the rest: the two run side by side, so kernels
    # spread over every core would only queue behind x264 (on 2 cores, one thread draws). A
    # worker given one core draws and encodes in turn, and leaves the other cores to its peers.
    drawing = max(1, (cores or _machine_cores()) // 2)
    with (av.open(buf, "w", format="mp4") as out,
          ThreadPoolExecutor(1, "pagereel-compose", limit_kernel_threads, (drawing,)) as composer):
        video, audio = _streams(out, options, sample_rate, options.threads or cores)
        # Two encoder frames in turn: frame k+1 is drawn into one while x264 takes frame k from
        # the other. Kernels and the encoder both run without the GIL, so the two overlap.
        slots = [av.VideoFrame(plan.width, plan.height, "yuv420p") for _ in range(2)]
        for vf in slots:
            vf.time_base = Fraction(1, plan.fps)
        if cores == 1:
            limit_kernel_threads(1)
            frames: Iterator[av.VideoFrame] = (compose(k, slots[0]) for k in range(plan.frames))
        else:
            frames = _drawn_ahead(composer, compose, slots, plan.frames)
        for vf in frames:
            out.mux(video.encode(vf))
        out.mux(video.encode(None))
        encode_pcm(out, audio, plan.pcm, sample_rate)
    return buf.getvalue()


def _drawn_ahead(composer: ThreadPoolExecutor, compose: Compose, slots: list[av.VideoFrame],
                 frames: int) -> Iterator[av.VideoFrame]:
    """Frames in order, each next one already being drawn (in the other slot) while the caller encodes this one."""
    pending = composer.submit(compose, 0, slots[0])
    for k in range(frames):
        vf = pending.result()
        if k + 1 < frames:
            # Slot (k+1) % 2 last held frame k-1, whose encode call has returned.
            pending = composer.submit(compose, k + 1, slots[(k + 1) % 2])
        yield vf


def _still(frame: np.ndarray) -> bytes:
    from PIL import Image

    image = Image.fromarray(frame)
    height = round(image.height * STILL_WIDTH / image.width)
    out = io.BytesIO()
    # The fastest zlib level: the default spent as long on one thumbnail as on a second of video.
    thumbnail = image.resize((STILL_WIDTH, max(2, height - height % 2)), Image.Resampling.LANCZOS)
    thumbnail.save(out, "PNG", compress_level=1)
    return out.getvalue()


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
    from kernels.compositing import tag_bt709

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
