"""Caption styles: classic, karaoke and bold, planned per scene and checked in decoded frames of real encodes."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.captions import Box, bold_chunks, outlined
from tasks.layout import subtitle_cues
from tasks.models import RenderOptions, Scene, WordTiming
from tasks.render import SceneContext, draw_rgb, render_scene
from tasks.scene_layouts import is_layout
from tasks.scene_plan import FrameState, Shown, box_of, frame_at, plan_scene
from tasks.timeline import LEAD_S
from tests.test_render import decode, solid_picture, speech

SAID = "A lighthouse shines extraordinarily bright. It guides the ships home at night through fog."
STYLES = ("classic", "karaoke", "bold")


def scene(kind: str = "body", caption: str = "Guiding ships") -> Scene:
    return Scene(id="s1", kind=kind, narration=SAID, caption=caption, hint_s=5.0)


def options(style: str, aspect: str = "16:9", resolution: int = 360, **more) -> RenderOptions:
    return RenderOptions(aspect=aspect, resolution=resolution, fps=10, preset="ultrafast", caption_style=style,
                         **more)


def plan(style: str, aspect: str = "16:9", resolution: int = 360, kind: str = "body", avatar: str | None = "ada"):
    """A scene's plan; kind ``layout`` is a body scene without a picture (it gets a layout of its words)."""
    narration = speech(5.0, SAID)
    picture = None if kind == "layout" else solid_picture((60, 110, 150))
    kind = "body" if kind == "layout" else kind
    return plan_scene(scene(kind, "By Someone" if kind == "title" else "Guiding ships"), narration,
                      options(style, aspect, resolution), SceneContext(avatar=avatar), picture), narration


def voice_time(k: int, fps: int = 10) -> float:
    return k / fps - LEAD_S


# --------------------------------------------------------------------------- the plan


def test_the_style_defaults_to_bold_for_vertical_video_only() -> None:
    assert RenderOptions(aspect="9:16").captions == "bold"
    assert RenderOptions(aspect="16:9").captions == RenderOptions(aspect="1:1").captions == "classic"
    assert RenderOptions(aspect="9:16", caption_style="classic").captions == "classic"


@pytest.mark.parametrize("resolution", [720, 1080])
@pytest.mark.parametrize("kind", ["body", "layout", "title", "closing"])
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("aspect", ["16:9", "9:16", "1:1"])
def test_no_layer_covers_another_layers_text(aspect: str, style: str, kind: str, resolution: int) -> None:
    p, _ = plan(style, aspect, resolution, kind)
    assert p.cues and p.avatar
    for k in range(p.frames):
        shown = [s.layer for s in frame_at(p, k).layers]
        boxes = [(layer.name, box_of(layer)) for layer in shown if layer.name != "progress"]
        # The progress bar slides in; it stays below everything else.
        assert all(b.bottom <= p.progress.y for _, b in boxes), (k, boxes)
        for i, (a, box_a) in enumerate(boxes):
            for b, box_b in boxes[i + 1:]:
                assert not box_a.overlaps(box_b), f"frame {k}: {a} {box_a} covers {b} {box_b}"


def test_in_vertical_video_the_subtitles_clear_the_presenter() -> None:
    p, _ = plan("classic", "9:16", 720)
    presenter = box_of(p.avatar[0])
    for cue in p.cues:
        box = box_of(cue)
        assert box.bottom <= presenter.y  # above it, whole lines: nothing hidden behind the presenter
        assert box.x >= 0 and box.right <= p.width


LAYOUT_SCENES = {
    "quote": {},
    "list": {"layout": "list", "items": ["It guides the ships home at night through fog."]},
    "figure": {"layout": "figure", "figure": "3 ships"},
}


@pytest.mark.parametrize("layout", sorted(LAYOUT_SCENES))
def test_bold_captions_of_a_vertical_layout_sit_in_the_lower_middle(layout: str) -> None:
    """Under the layout, where vertical video puts them, presenter or not: never squeezed in at the top."""
    said = "A lighthouse shines bright over 3 ships. It guides the ships home at night through fog."
    marks = LAYOUT_SCENES[layout]
    if layout == "list":
        marks = {**marks, "items": ["A lighthouse shines bright over 3 ships.", *marks["items"]]}
    heights = []
    for avatar in ("ada", None):
        p = plan_scene(Scene(id="s1", narration=said, caption="Guiding ships", hint_s=5.0, **marks),
                       speech(5.0, said), options("bold", "9:16", 720), SceneContext(avatar=avatar))
        layout_boxes = [box_of(layer) for layer in p.layers if is_layout(layer.name)]
        assert p.cues and layout_boxes
        assert {layer.name.split()[0] for layer in p.layers if is_layout(layer.name)} == {layout}
        for cue in p.cues:
            box = box_of(cue)
            assert 0.5 * p.height <= box.y + box.h / 2 <= 0.75 * p.height, (avatar, cue.name, box)
            assert all(box.y >= b.bottom for b in layout_boxes), (avatar, cue.name, box, layout_boxes)
        heights.append([box_of(cue).h for cue in p.cues])
    assert heights[0] == heights[1]  # as large beside the presenter as without it: not shrunk to fit

def test_karaoke_has_one_picture_per_spoken_word_in_the_frames_it_is_said() -> None:
    p, narration = plan("karaoke")
    words = [w for w in narration.words]
    assert len(p.cues) == len(words)
    for layer, word in zip(p.cues, words, strict=True):
        for k in range(layer.first, layer.stop):
            t = voice_time(k)
            assert word.t0 - 1e-9 <= t < word.t1 + 0.1 or k == layer.first  # the first word takes the cue's start
    ranges = [(layer.first, layer.stop) for layer in p.cues]
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))  # each word hands over to the next


def test_bold_shows_one_to_three_words_of_one_cue() -> None:
    p, narration = plan("bold", "9:16")
    cues = subtitle_cues(narration.words, narration.duration_s)
    for layer in p.cues:
        _, n, _ = layer.name.split()
        cue = cues[int(n)]
        assert cue.start_s <= voice_time(layer.first) + 1e-9 and voice_time(layer.stop - 1) < cue.end_s
    timed = [WordTiming(word=w, t0=i, t1=i + 1) for i, w in enumerate(SAID.split())]
    chunks = bold_chunks(timed)
    assert [w.word for c in chunks for w in c] == SAID.split()
    assert all(1 <= len(c) <= 3 for c in chunks)
    assert all(not w.word.endswith((".", ",")) for c in chunks for w in c[:-1])  # a run ends at punctuation


def test_bold_letters_get_a_dark_outline() -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[8:12, 8:12] = (255, 255, 255, 255)
    out = outlined(rgba, 3)
    assert (out[8:12, 8:12] == (255, 255, 255, 255)).all()
    assert out[5, 5, 3] > 200 and out[5, 5, :3].max() == 0  # the ring around is dark and nearly opaque
    assert out[0, 0, 3] == 0 and out[15, 15, 3] == 0


def test_1080p_layers_are_drawn_at_size_not_scaled_up() -> None:
    small, _ = plan("classic", "16:9", 720)
    big, _ = plan("classic", "16:9", 1080)
    assert (big.width, big.height) == (1920, 1080)
    for a, b in ((small.cues[0], big.cues[0]), (small.avatar[0], big.avatar[0]), (small.layers[0], big.layers[0])):
        ha, wa = a.rgba.shape[:2]
        hb, wb = b.rgba.shape[:2]
        assert 1.35 < hb / ha < 1.65 and 1.3 < wb / wa < 1.7, (a.name, a.rgba.shape, b.rgba.shape)
    # Letters are drawn at 1080p: as sharp as at 720p (an upscaled layer would have softer edges).
    def sharpness(layer) -> float:
        luma = layer.rgba[..., :3].astype(int).mean(axis=2)
        return float(np.abs(np.diff(luma, axis=1)).max())
    assert sharpness(big.cues[0]) >= 0.9 * sharpness(small.cues[0])


def test_box_overlap_is_strict() -> None:
    assert Box(0, 0, 10, 10).overlaps(Box(9, 9, 5, 5))
    assert not Box(0, 0, 10, 10).overlaps(Box(10, 0, 5, 5))


# --------------------------------------------------------------------------- decoded pixels


def _yellow(frame: np.ndarray) -> np.ndarray:
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return (r > 170) & (g > 140) & (b < 110) & (r - b > 100)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.integration
def test_a_karaoke_frame_lights_the_word_being_said() -> None:
    narration = speech(5.0, SAID)
    opts = options("karaoke", resolution=270)
    seg = render_scene(scene(caption=""), narration, opts, solid_picture((60, 110, 150)),
                       context=SceneContext(avatar="ada"))
    frames, _, _ = decode(seg.mp4)
    p = plan_scene(scene(caption=""), narration, opts, SceneContext(avatar="ada"), solid_picture((60, 110, 150)))
    lit: dict[str, tuple[int, int, int, int]] = {}
    for word in narration.words[:5]:  # the first cue: "A lighthouse shines extraordinarily bright."
        k = int(round(((word.t0 + word.t1) / 2 + LEAD_S) * opts.fps))
        assert word.t0 <= voice_time(k) < word.t1
        [layer] = [s.layer for s in frame_at(p, k).layers if s.layer.name.startswith("karaoke")]
        h, w = layer.rgba.shape[:2]
        # Inside the caption band (the progress bar below is the theme's yellow too).
        mask = _yellow(frames[k][layer.y : layer.y + h, layer.x : layer.x + w])
        assert mask.sum() >= 4, f"nothing lit at {word.word!r}"
        lit[word.word] = got = _bbox(mask)
        # The lit pixels are those the plan lights for this word.
        want = _bbox(_yellow(layer.rgba[..., :3]) & (layer.rgba[..., 3] > 0))
        assert all(abs(a - b) <= 3 for a, b in zip(got, want, strict=True)), (word.word, got, want)
    widths = {w: box[2] - box[0] for w, box in lit.items()}
    assert widths["extraordinarily"] > 3 * widths["A"]  # the long word is lit, not its short neighbour
    boxes = [lit[w.word] for w in narration.words[:5]]
    for a, b in zip(boxes, boxes[1:], strict=False):  # left to right as they are said, or down a line
        assert b[0] > a[2] - 3 or b[1] > a[3] - 3, (a, b)


@pytest.mark.integration
def test_a_bold_frame_shows_only_words_of_the_cue_being_said() -> None:
    narration = speech(5.0, SAID)
    opts = options("bold", aspect="9:16", resolution=180)
    context = SceneContext(avatar="ada")
    seg = render_scene(scene(caption=""), narration, opts, solid_picture((60, 110, 150)), context=context)
    frames, _, _ = decode(seg.mp4)
    p = plan_scene(scene(caption=""), narration, opts, context, solid_picture((60, 110, 150)))
    cues = subtitle_cues(narration.words, narration.duration_s)
    checked = 0
    for k in range(0, p.frames, 3):
        state = frame_at(p, k)
        shown = [s.layer for s in state.layers if s.layer.name.startswith("bold")]
        if not shown:
            continue
        # Which bold picture do the decoded pixels show? The one that, drawn in this frame, matches best.
        others = [s for s in state.layers if not s.layer.name.startswith("bold")]

        def error(candidate, others=others, state=state, decoded=frames[k]) -> float:
            drawn = draw_rgb(p, FrameState(state.k, state.u, state.fade, (*others, Shown(candidate))))
            return float(np.abs(drawn.astype(int) - decoded.astype(int)).mean())

        best = min(p.cues, key=error)
        assert best is shown[0], f"frame {k} shows {best.name}, planned {shown[0].name}"
        t = voice_time(k)
        [cue] = [c for c in cues if c.start_s <= t < c.end_s]
        said = [w for w in narration.words if cue.start_s <= w.t0 < cue.end_s]
        _, n, i = best.name.split()
        assert cues[int(n)] == cue
        assert {w.word for w in bold_chunks(said)[int(i)]} <= set(cue.text.split())
        checked += 1
    assert checked >= 10


def test_bold_cuts_a_clause_of_chinese_timed_as_one_word_into_short_pieces_in_order() -> None:
    from tasks.captions import BOLD_WIDE_CHARS
    from tasks.models import WordTiming

    clause = "后来，几位在城里打工的年轻人回到家乡，成立了茶叶合作社，统一收购鲜叶。"
    chunks = bold_chunks([WordTiming(word=clause, t0=1.0, t1=7.0)])
    pieces = [w for chunk in chunks for w in chunk]
    assert all(len(chunk) == 1 for chunk in chunks)  # no space-joined pieces
    assert "".join(w.word for w in pieces) == clause  # nothing lost, nothing added
    assert all(len(w.word) <= BOLD_WIDE_CHARS for w in pieces)
    assert pieces[0].t0 == 1.0 and abs(pieces[-1].t1 - 7.0) < 1e-3
    assert all(abs(a.t1 - b.t0) < 1e-3 for a, b in zip(pieces, pieces[1:], strict=False))
