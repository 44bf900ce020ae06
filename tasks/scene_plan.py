"""The plan of a scene: its backdrops, its layers as named pictures with a place and a time, its timings.

A scene is planned once, by a pure function of the scene, its narration, the render options and
where it sits in the video (:func:`plan_scene`); every frame is then a pure function of the plan
and the frame's index (:func:`frame_at`): how far the backdrop has moved, how far the cross-fade
from the previous scene has gone, which layers show and how strongly. ``tasks/render.py`` draws
those frames and drives the encoder.

The look (how much a backdrop is dimmed, where the title, caption, subtitles and presenter sit,
how big their text is) is a :class:`Look`. A new layout or caption style is another ``Look``
passed to :func:`plan_scene`; nothing in the drawing or the encoding changes with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from kernels.audio import rms_envelope
from tasks.avatar import AvatarSprites, load_avatar
from tasks.captions import Box, Stage, caption_pictures
from tasks.layout import PALETTES, Cue, Overlay, Palette, bar, fit_text, text_panel
from tasks.models import CaptionStyle, Narration, RenderOptions, Scene
from tasks.planes import Backdrop, PlaneLayer, Planes, plane_layer
from tasks.scene_layouts import quote_said_s, scene_layout
from tasks.timeline import LEAD_S, scene_frames, scene_pcm

if TYPE_CHECKING:
    from tasks.images import Picture
    from tasks.render import SceneContext

#: The cross-fade from the previous scene's backdrop, and the fade-in of a scene's first text layer.
FADE_S = 0.4
CAPTION_FADE_S = 0.5
#: The fade-in of a layout's first state (a section card, a quote, the first bullet).
LAYOUT_FADE_S = 0.3
#: Where in the scene (a share of its frames) the thumbnail is taken.
STILL_AT = 0.4


@dataclass(frozen=True, eq=False)
class Layer:
    """A picture over the backdrop: its name, its pixels (RGBA and converted planes), its place and time.

    ``start_s`` and ``end_s`` are seconds on the scene's clock; ``first`` and ``stop`` are the frames
    it shows in (``stop`` excluded), and the first ``fade_in`` of them fade it in.
    """

    name: str
    rgba: np.ndarray
    planes: PlaneLayer
    x: int
    y: int
    start_s: float
    end_s: float
    first: int
    stop: int
    fade_in: int = 0

    def shows_at(self, k: int) -> bool:
        return self.first <= k < self.stop

    def opacity(self, k: int) -> float:
        return min(1.0, (k - self.first + 1) / self.fade_in) if self.fade_in else 1.0


@dataclass(frozen=True, eq=False)
class ScenePlan:
    """Everything a scene's frames are drawn from, decided once per scene."""

    width: int
    height: int
    fps: int
    frames: int
    backdrop: Backdrop
    #: The previous scene's backdrop where it ended (RGB and planes), or None for the first scene.
    previous_rgb: np.ndarray | None
    previous_planes: Planes | None
    fade_frames: int
    #: Text that stays for the whole scene (title or caption), then the layout's states, bottom first.
    layers: tuple[Layer, ...]
    #: Captions (subtitles in the scene's caption style), each shown in its own frames; at most one at a time.
    cues: tuple[Layer, ...]
    #: The presenter: one layer per mouth or pulse, and which one each frame shows.
    avatar: tuple[Layer, ...]
    avatar_at: tuple[int, ...]
    #: The progress bar, full width: each frame slides it in from the left.
    progress: Layer
    index: int
    total: int
    still_at: int
    #: The scene's sound, timed to its frames (mono s16).
    pcm: np.ndarray


@dataclass(frozen=True)
class Shown:
    """A layer in one frame: how strongly it shows and how far (pixels) it is moved right of its place."""

    layer: Layer
    opacity: float = 1.0
    dx: int = 0


@dataclass(frozen=True)
class FrameState:
    """What frame ``k`` shows: the backdrop's move ``u`` (0..1), the cross-fade (or None), the layers bottom first."""

    k: int
    u: float
    fade: float | None
    layers: tuple[Shown, ...]


def frame_at(plan: ScenePlan, k: int) -> FrameState:
    """Frame ``k`` of ``plan``: a pure function of the index."""
    u = k / max(1, plan.frames - 1)
    fade = (k + 1) / (plan.fade_frames + 1) if k < plan.fade_frames else None
    shown = [Shown(layer, layer.opacity(k)) for layer in plan.layers if layer.shows_at(k)]
    cue = next((layer for layer in plan.cues if layer.shows_at(k)), None)
    if cue is not None:
        shown.append(Shown(cue))
    if plan.avatar:
        shown.append(Shown(plan.avatar[plan.avatar_at[k]]))
    progress = int(plan.width * (plan.index + u) / max(1, plan.total))
    if progress > 0:
        shown.append(Shown(plan.progress, 1.0, progress - plan.width))
    return FrameState(k, u, fade, tuple(shown))


# --------------------------------------------------------------------------- the look


class Look:
    """How a scene looks: backdrop dimming and where each layer sits. Subclass it for a new layout."""

    def dim(self, kind: str | None) -> float:
        """How much of the backdrop's light shows under a scene of ``kind``."""
        return 0.55 if kind == "title" else 0.8

    def avatar_height(self, height: int) -> int:
        return int(height * 0.26)

    def bar_height(self, height: int) -> int:
        return max(4, height // 120)

    def text(self, scene: Scene, palette: Palette, width: int, height: int) -> list[tuple[str, np.ndarray, int, int]]:
        """The text that stays put for the whole scene, bottom first, as ``(name, rgba, x, y)``."""
        unit = min(height, int(width * 1.25))
        if scene.kind == "title":
            return self._title(scene, palette, width, height, unit)
        if scene.kind == "closing":
            # Text is fitted by its drawn width at the frame's size (tasks.layout.fit_text), in any script.
            size = max(4, int(unit * 0.06))
            lines, size = fit_text(scene.caption or "Source", size, int(width * 0.8) - size, 2, min(size, 10))
            panel = text_panel(lines, size, palette.text, palette.panel)
            return [("source", panel, (width - panel.shape[1]) // 2, int(height * 0.38) - panel.shape[0] // 2)]
        if not scene.caption:
            return []
        size = max(4, int(unit * 0.05))
        lines, size = fit_text(scene.caption, size, int(width * 0.7), 2, min(size, 10))
        panel = text_panel(lines, size, palette.text, palette.panel, align="left")
        # A thin accent stripe on the caption's left edge ties it to the theme.
        panel[:, : max(3, size // 8), :3] = palette.accent
        panel[:, : max(3, size // 8), 3] = 255
        margin = int(unit * 0.05)
        return [("caption", panel, margin, margin)]

    def _title(self, scene: Scene, palette: Palette, width: int, height: int,
               unit: int) -> list[tuple[str, np.ndarray, int, int]]:
        size = max(4, int(unit * 0.075))
        lines, size = fit_text(scene.narration.rstrip(".。।"), size, int(width * 0.8) - size, 4, min(size, 10))
        panel = text_panel(lines, size, palette.text, None)
        top = int(height * 0.42) - panel.shape[0] // 2
        out = [("title", panel, (width - panel.shape[1]) // 2, top)]
        if scene.caption:
            sub_size = max(4, int(unit * 0.04))
            sub_lines, sub_size = fit_text(scene.caption, sub_size, int(width * 0.8), 1, min(sub_size, 10))
            sub = text_panel(sub_lines, sub_size, palette.accent, None)
            out.append(("byline", sub, (width - sub.shape[1]) // 2, top + panel.shape[0] + int(unit * 0.05) // 2))
        return out

    def subtitle_fit(self, width: int, height: int) -> tuple[int, int]:
        """The subtitles' text size and the widest a line of theirs may be drawn, in pixels."""
        size = max(14, min(int(height * 0.042), int(width * 0.9 / (42 * 0.52))))
        return size, int(width * 0.9) - 2 * (size // 3)

    def subtitle(self, cue: Cue, width: int, height: int) -> tuple[np.ndarray, int, int]:
        """A subtitle's pixels and place: white on a dark band, centred above the bottom edge."""
        size, _ = self.subtitle_fit(width, height)
        panel = text_panel(cue.lines, size, (255, 255, 255), (0, 0, 0, 170), pad=size // 3)
        return panel, (width - panel.shape[1]) // 2, height - panel.shape[0] - int(height * 0.06)

    def captions(self, style: CaptionStyle, narration: Narration, stage: Stage) -> list[Overlay]:
        """The scene's caption pictures in ``style``, each with its place and time, clear of ``stage``'s boxes."""
        return caption_pictures(style, narration.words, narration.duration_s, stage)

    def avatar(self, sprite: np.ndarray, width: int, height: int, bar_h: int) -> tuple[int, int]:
        """Where the presenter stands: bottom right, on the progress bar."""
        sh, sw = sprite.shape[:2]
        return width - sw - int(width * 0.02), height - sh - bar_h


STANDARD = Look()


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Frame:
    """The frame geometry and clock the layers are placed on."""

    width: int
    height: int
    fps: int
    frames: int

    def layer(self, name: str, rgba: np.ndarray, x: int, y: int, frames: range | None = None,
              fade_in: int = 0) -> Layer:
        frames = range(self.frames) if frames is None else frames
        return Layer(name, rgba, plane_layer(rgba, x, y), x, y, frames.start / self.fps, frames.stop / self.fps,
                     frames.start, frames.stop, fade_in)

    def overlays(self, overlays: list[Overlay], fade: int = 0) -> tuple[Layer, ...]:
        """A layer per overlay, shown in the frames of its seconds (one said between two frames shows in none);
        those that fade in do over their first ``fade`` frames."""
        out = []
        for o in overlays:
            frames = self.speaking(o.start_s, o.end_s)
            if frames:
                out.append(self.layer(o.name, o.rgba, o.x, o.y, frames, min(fade, len(frames)) if o.fade else 0))
        return tuple(out)

    def speaking(self, start_s: float, end_s: float) -> range:
        """The frames whose time on the voice's clock (the scene's less the lead-in) lies in ``[start_s, end_s)``."""
        ks = [k for k in range(self.frames) if start_s <= k / self.fps - LEAD_S < end_s]
        return range(ks[0], ks[-1] + 1) if ks else range(0)


def plan_scene(scene: Scene, narration: Narration, options: RenderOptions, context: SceneContext,
               picture: Picture | None = None, previous_picture: Picture | None = None,
               look: Look = STANDARD) -> ScenePlan:
    """Plan ``scene``: a pure function of its inputs (the same inputs give the same frames)."""
    width, height = options.size
    frame = _Frame(width, height, options.fps, scene_frames(narration.duration_s, options.fps))
    palette = PALETTES.get(context.theme, PALETTES["midnight"])
    backdrop = Backdrop(picture, (width, height), palette, context.index, look.dim(scene.kind))
    previous_rgb = previous_planes = None
    if context.index > 0:
        previous = Backdrop(previous_picture, (width, height), palette, context.index - 1,
                            look.dim(context.previous_kind))
        previous_rgb = np.empty((height, width, 3), np.uint8)
        previous.draw(previous_rgb, 1.0)
        previous_planes = Planes.blank(width, height)
        previous.draw_planes(previous_planes.y, previous_planes.cb, previous_planes.cr, 1.0)
    caption_frames = max(1, round(CAPTION_FADE_S * frame.fps))
    layers = tuple(frame.layer(name, rgba, x, y, fade_in=caption_frames if n == 0 else 0)
                   for n, (name, rgba, x, y) in enumerate(look.text(scene, palette, width, height)))
    layers += _layout(scene, narration, palette, frame, picture is not None)
    pcm = scene_pcm(narration, frame.frames, frame.fps)
    bar_h = look.bar_height(height)
    avatar, avatar_at = _avatar(context, narration, pcm, frame, look, bar_h)
    presenter = box_of(avatar[0]) if avatar else None
    quoted = quote_said_s(scene, narration, picture is not None)
    stage = Stage(width, height, height - bar_h, tuple(box_of(layer) for layer in layers)
                  + ((presenter,) if presenter else ()), presenter)
    return ScenePlan(
        width=width, height=height, fps=frame.fps, frames=frame.frames, backdrop=backdrop,
        previous_rgb=previous_rgb, previous_planes=previous_planes,
        fade_frames=max(1, round(FADE_S * frame.fps)) if previous_rgb is not None else 0,
        layers=layers, avatar=avatar, avatar_at=avatar_at,
        cues=_cues(narration, frame, look, options.captions, stage, quoted),
        progress=frame.layer("progress", bar(width, bar_h, palette.accent), 0, height - bar_h),
        index=context.index, total=context.total, still_at=int(frame.frames * STILL_AT), pcm=pcm,
    )


def _layout(scene: Scene, narration: Narration, palette: Palette, frame: _Frame, has_picture: bool,
            ) -> tuple[Layer, ...]:
    """The scene's layout (``tasks/scene_layouts.py``) as layers, each state in the frames its words are said in."""
    drawn = scene_layout(scene, narration, palette, frame.width, frame.height, has_picture)
    return frame.overlays(drawn, max(1, round(LAYOUT_FADE_S * frame.fps)))


def box_of(layer: Layer) -> Box:
    """The rectangle ``layer`` covers at its place."""
    h, w = layer.rgba.shape[:2]
    return Box(layer.x, layer.y, w, h)


def _cues(narration: Narration, frame: _Frame, look: Look, style: CaptionStyle, stage: Stage,
          quoted: tuple[float, float] | None = None) -> tuple[Layer, ...]:
    """One layer per caption picture, shown in the frames whose voice time lies in its seconds.

    No caption shows while the ``quoted`` seconds' words light up in the scene's quote.
    """
    pictures = look.captions(style, narration, stage)
    return frame.overlays([_outside(p, *quoted) for p in pictures] if quoted is not None else pictures)


def _outside(picture: Overlay, start_s: float, end_s: float) -> Overlay:
    """``picture`` shown only outside ``[start_s, end_s)`` (before it where it starts before, else after it)."""
    if picture.start_s < start_s:
        return replace(picture, end_s=min(picture.end_s, start_s))
    return replace(picture, start_s=max(picture.start_s, end_s), end_s=max(picture.end_s, end_s))


def _avatar(context: SceneContext, narration: Narration, pcm: np.ndarray, frame: _Frame, look: Look,
            bar_h: int) -> tuple[tuple[Layer, ...], tuple[int, ...]]:
    """The presenter's layers, one per sprite, and the sprite each frame shows (following the voice's loudness)."""
    if not context.avatar:
        return (), ()
    sprites: AvatarSprites = load_avatar(context.avatar, look.avatar_height(frame.height), context.avatar_png)
    layers = tuple(frame.layer(f"avatar {n}", sprite, *look.avatar(sprite, frame.width, frame.height, bar_h))
                   for n, sprite in enumerate(sprites.sprites))
    envelope = rms_envelope(pcm, narration.sample_rate, frame.fps, frame.frames)
    loudness = np.clip(envelope / max(1e-6, float(envelope.max(initial=0.0))) * 1.2, 0.0, 1.0)
    which = {id(sprite): n for n, sprite in enumerate(sprites.sprites)}
    return layers, tuple(which[id(sprites.for_level(float(level)))] for level in loudness[: frame.frames])

