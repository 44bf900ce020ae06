"""The scene plan and the per-frame function: which layers a scene has, where and when they show."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tasks.layout import subtitle_cues
from tasks.planes import Planes
from tasks.render import SceneContext, draw_frame
from tasks.scene_layouts import is_layout
from tasks.scene_plan import Look, frame_at, plan_scene
from tasks.timeline import LEAD_S
from tests.test_render import SMALL, scene, solid_picture, speech

W, H, FPS = 320, 180, 15
#: Two sentences: two cues.
SAID = "Lighthouses guide ships. They shine all night long."


def planned(**context):
    narration = speech(3.0, SAID)
    plan = plan_scene(scene("Guiding ships"), narration, SMALL, SceneContext(avatar="ada", **context),
                      solid_picture((30, 90, 160)), solid_picture((200, 40, 40)))
    return plan, narration


def names(state) -> list[str]:
    return [shown.layer.name for shown in state.layers]


def test_plan_of_a_scene_with_a_picture_a_caption_cues_and_an_avatar() -> None:
    plan, narration = planned()
    assert (plan.width, plan.height, plan.fps) == (W, H, FPS)
    assert plan.backdrop.image.shape == (270, 480, 3)  # the picture, not a gradient
    assert plan.previous_planes is None and plan.fade_frames == 0  # the first scene fades in from nothing
    # The caption: top left, a margin of 5 % of the short side, fading in over half a second.
    [caption] = plan.layers
    assert (caption.name, caption.x, caption.y, caption.fade_in) == ("caption", 9, 9, 8)
    assert (caption.first, caption.stop, caption.start_s) == (0, plan.frames, 0.0)
    assert caption.end_s == plan.frames / FPS
    # One subtitle per cue, each in the frames whose voice time lies in the cue, centred above the bottom.
    cues = subtitle_cues(narration.words, narration.duration_s)
    assert [c.name for c in plan.cues] == ["subtitle 0", "subtitle 1"] and len(cues) == 2
    for cue, layer in zip(cues, plan.cues, strict=True):
        inside = [k for k in range(plan.frames) if cue.start_s <= k / FPS - LEAD_S < cue.end_s]
        assert (layer.first, layer.stop) == (inside[0], inside[-1] + 1)
        assert layer.start_s == layer.first / FPS >= LEAD_S + cue.start_s - 1 / FPS
        h, w = layer.rgba.shape[:2]
        assert layer.x == (W - w) // 2 and layer.y + h == H - int(H * 0.06)
    # The presenter: one layer per sprite, bottom right on the progress bar; its mouth follows the voice.
    bar_h = max(4, H // 120)
    assert plan.avatar and all(a.name == f"avatar {n}" for n, a in enumerate(plan.avatar))
    for layer in plan.avatar:
        h, w = layer.rgba.shape[:2]
        assert (layer.x + w, layer.y + h) == (W - int(W * 0.02), H - bar_h)
    assert len(plan.avatar_at) == plan.frames and plan.avatar_at[0] == 0  # shut during the lead-in
    assert max(plan.avatar_at) > 0
    assert (plan.progress.x, plan.progress.y, plan.progress.rgba.shape[:2]) == (0, H - bar_h, (bar_h, W))
    assert plan.still_at == int(plan.frames * 0.4) and len(plan.pcm) > 0


def test_a_later_scene_fades_in_from_the_previous_backdrop() -> None:
    plan, _ = planned(index=1, total=3, previous_kind="title")
    assert plan.fade_frames == 6 and plan.previous_planes is not None
    assert frame_at(plan, 0).fade == 1 / 7 and frame_at(plan, 6).fade is None


def test_a_frame_inside_a_cue_shows_that_cue_and_one_outside_none() -> None:
    plan, _ = planned()
    first = plan.cues[0]
    lead_in = frame_at(plan, 0)
    assert not first.shows_at(0)
    assert names(lead_in) == ["caption", "avatar 0"]  # nothing said yet, no progress yet
    inside = frame_at(plan, first.first)
    assert names(inside) == ["caption", "subtitle 0", f"avatar {plan.avatar_at[first.first]}", "progress"]
    assert frame_at(plan, first.stop - 1).layers[1].layer is first
    assert plan.cues[1].first == first.stop  # the next cue takes over on the next frame
    assert "subtitle 0" not in names(frame_at(plan, first.stop))
    # The caption fades in; the progress bar slides in from the left to the scene's end.
    assert lead_in.layers[0].opacity == 1 / 8 and inside.layers[0].opacity == min(1.0, (first.first + 1) / 8)
    last = frame_at(plan, plan.frames - 1)
    assert last.u == 1.0 and last.layers[-1].dx == 0


def test_draw_frame_is_a_function_of_the_index() -> None:
    plan, _ = planned()
    k = plan.cues[0].first
    a, b, lead_in = Planes.blank(W, H), Planes.blank(W, H), Planes.blank(W, H)
    draw_frame(plan, k, a)
    draw_frame(plan, 0, lead_in)
    draw_frame(plan, k, b)
    assert all(np.array_equal(x, y) for x, y in ((a.y, b.y), (a.cb, b.cb), (a.cr, b.cr)))
    band = plan.cues[0]
    rows = slice(band.y, band.y + band.rgba.shape[0])
    cols = slice(band.x, band.x + band.rgba.shape[1])
    assert np.abs(a.y[rows, cols].astype(int) - lead_in.y[rows, cols].astype(int)).mean() > 10


def test_a_new_look_plugs_in_at_the_plan() -> None:
    class TopSubtitles(Look):
        def captions(self, style, narration, stage):
            return [replace(c, y=0) for c in super().captions(style, narration, stage)]

        def dim(self, kind):
            return 1.0

    # Two sentences: the quote layout sets the first large, and only the second is captioned.
    said = "Lighthouses guide ships safely home at night. Keepers once lit every lamp by hand."
    narration = speech(4.0, said)
    plan = plan_scene(scene("Guiding ships").model_copy(update={"narration": said}), narration, SMALL,
                      SceneContext(), look=TopSubtitles())
    assert plan.cues and all(layer.y == 0 for layer in plan.cues)
    # Without a picture the scene shows a layout over the backdrop (tests/test_scene_layouts.py).
    shown = names(frame_at(plan, plan.cues[0].first))
    assert not plan.avatar and [n for n in shown if not is_layout(n)][:2] == ["caption", "subtitle 1"]
    assert any(is_layout(n) for n in shown)


def test_scenes_share_the_backdrop_pixels_they_have_in_common() -> None:
    # At 1080p the theme gradient and its planes cost as much as a second of frames: a video makes
    # them once, not for every scene and again for every scene's cross-fade.
    from tasks.layout import PALETTES
    from tasks.planes import Backdrop

    midnight = PALETTES["midnight"]
    first = Backdrop(None, (W, H), midnight, 0, 0.8)
    second = Backdrop(None, (W, H), midnight, 1, 0.8)
    assert second.image is first.image and second.planes is first.planes
    assert second.pan != first.pan  # the move is still the scene's own
    title = Backdrop(None, (W, H), midnight, 0, 0.55)
    assert title.image is not first.image and int(title.image.max()) < int(first.image.max())
    picture = solid_picture((30, 90, 160))
    assert Backdrop(picture, (W, H), midnight, 0, 0.8).image is Backdrop(picture, (W, H), midnight, 3, 0.8).image


def test_a_layer_converts_to_planes_as_the_two_by_two_block_formula_says() -> None:
    from kernels.compositing import rgb_to_yuv420p
    from tasks.planes import plane_layer

    rng = np.random.default_rng(7)
    for h, w, x, y in ((7, 9, 1, 3), (8, 8, 0, 0), (33, 50, 3, 2), (1, 1, 5, 5)):
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        rgba[: h // 2, :, 3] = 0  # transparent rows: the block colour falls back to the plain mean
        layer = plane_layer(rgba, x, y)
        left, top = x % 2, y % 2
        padded = np.pad(rgba, ((top, (h + top) % 2), (left, (w + left) % 2), (0, 0))).astype(np.int64)
        ph, pw = padded.shape[:2]
        weights = padded[..., 3].reshape(ph // 2, 2, pw // 2, 2)
        blocks = padded[..., :3].reshape(ph // 2, 2, pw // 2, 2, 3)
        total = weights.sum(axis=(1, 3))
        weighted = (blocks * weights[..., None]).sum(axis=(1, 3))
        colour = np.where(total[..., None] > 0, (weighted + total[..., None] // 2) // np.maximum(total, 1)[..., None],
                          (blocks.sum(axis=(1, 3)) + 2) // 4).astype(np.uint8)
        luma, cb, cr = np.empty((ph, pw), np.uint8), *np.empty((2, ph // 2, pw // 2), np.uint8)
        rgb_to_yuv420p(np.ascontiguousarray(padded[..., :3].astype(np.uint8)), luma, cb, cr)
        rgb_to_yuv420p(np.ascontiguousarray(colour.repeat(2, axis=0).repeat(2, axis=1)), np.empty_like(luma), cb, cr)
        assert np.array_equal(layer.y, luma) and np.array_equal(layer.alpha, padded[..., 3])
        assert np.array_equal(layer.cb, cb) and np.array_equal(layer.cr, cr)
        assert np.array_equal(layer.chroma_alpha, ((total + 2) // 4).astype(np.uint8))
        assert (layer.x, layer.top) == (x - left, y - top)
