"""render_scene on real encoding: decode the segment and check its pixels and its sound."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from tasks.images import Picture
from tasks.models import Narration, RenderOptions, Scene, WordTiming
from tasks.render import SceneContext, render_scene
from tasks.timeline import LEAD_S, scene_frames

pytestmark = pytest.mark.integration
SR = 48_000
SMALL = RenderOptions(width=320, height=180, fps=15, preset="ultrafast")


def solid_picture(rgb: tuple[int, int, int], size: tuple[int, int] = (480, 270)) -> Picture:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, "PNG")
    return Picture(url=f"memory://{rgb}", data=buf.getvalue(), width=size[0], height=size[1])


def speech(seconds: float, text: str = "Lighthouses guide ships safely home at night") -> Narration:
    t = np.arange(int(seconds * SR)) / SR
    # A voiced tone whose loudness rises and falls like syllables.
    pcm = (np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * 12000).astype("<i2")
    words = text.split()
    step = seconds / len(words)
    timings = [WordTiming(word=w, t0=i * step, t1=(i + 1) * step) for i, w in enumerate(words)]
    return Narration(scene_id="s1", pcm=pcm.tobytes(), sample_rate=SR, voice="en", words=timings)


def decode(mp4: bytes) -> tuple[list[np.ndarray], np.ndarray, av.container.InputContainer]:
    with av.open(io.BytesIO(mp4)) as c:
        codecs = (c.streams.video[0].codec_context.name, c.streams.audio[0].codec_context.name)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(io.BytesIO(mp4)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert codecs == ("h264", "aac")
    return frames, audio, c


def scene(caption: str = "Guiding ships", kind: str = "body") -> Scene:
    return Scene(id="s1", kind=kind, narration="Lighthouses guide ships safely home at night.", caption=caption,
                 hint_s=3.0)


def test_segment_is_valid_h264_aac_with_the_right_length() -> None:
    narration = speech(2.0)
    seg = render_scene(scene(), narration, SMALL, solid_picture((30, 90, 160)))
    frames, audio, _ = decode(seg.mp4)
    assert seg.frames == scene_frames(narration.duration_s, 15) == len(frames)
    assert (seg.width, seg.height, seg.fps) == (320, 180, 15)
    assert frames[0].shape == (180, 320, 3)
    assert abs(len(audio) / SR - seg.duration_s) < 0.1
    rms = np.sqrt(np.mean((audio.astype(np.float64)) ** 2))
    assert rms > 0.02  # narration is not silence (float audio in -1..1)


def test_caption_region_is_drawn() -> None:
    narration = speech(2.0)
    pic = solid_picture((40, 120, 60))
    with_caption, _, _ = decode(render_scene(scene("Guiding ships"), narration, SMALL, pic).mp4)
    without, _, _ = decode(render_scene(scene(""), narration, SMALL, pic).mp4)
    k = len(with_caption) // 2
    diff = np.abs(with_caption[k].astype(int) - without[k].astype(int)).sum(axis=2)
    changed = diff > 40
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 200  # the caption panel is really drawn...
    assert ys.max() < 60 and xs.max() < 200  # ...in the top-left corner, and nowhere else


def test_crossfade_frames_lie_between_the_two_scenes() -> None:
    narration = speech(2.0)
    red, blue = solid_picture((220, 30, 30)), solid_picture((30, 30, 220))
    seg = render_scene(scene(""), narration, SMALL, blue, red, SceneContext(index=1, total=2))
    frames, _, _ = decode(seg.mp4)
    px = [f[90, 160].astype(int) for f in frames]  # centre: no text there
    first, mid, settled = px[0], px[3], px[-1]
    assert first[0] > mid[0] > settled[0] + 20  # red fades out...
    assert first[2] < mid[2] < settled[2] - 20  # ...as blue fades in


def test_subtitles_follow_the_words() -> None:
    narration = speech(3.0)
    frames, _, _ = decode(render_scene(scene(""), narration, SMALL, solid_picture((90, 90, 90))).mp4)
    band = (slice(130, 172), slice(20, 300))
    before = frames[0][band]  # the lead-in: nothing said yet
    during = frames[int((LEAD_S + 1.0) * 15)][band]
    assert np.abs(during.astype(int) - before.astype(int)).mean() > 10


@pytest.mark.parametrize("avatar", ["ada", "max"])
def test_avatar_mouth_moves_with_the_narration(avatar: str) -> None:
    narration = speech(2.0)
    seg = render_scene(scene(""), narration, SMALL, solid_picture((50, 50, 50)),
                       context=SceneContext(avatar=avatar))
    frames, _, _ = decode(seg.mp4)
    corner = (slice(120, 178), slice(260, 320))
    silent = frames[0][corner].astype(int)  # during the lead-in the mouth is shut
    loud = max((frames[k][corner].astype(int) for k in range(6, len(frames) - 8)),
               key=lambda f: np.abs(f - silent).sum())
    assert np.abs(loud - silent).sum() > 500


def test_title_and_closing_scenes_render() -> None:
    narration = speech(1.5, "A title to read")
    for kind, caption in (("title", "By Someone"), ("closing", "example.com")):
        seg = render_scene(scene(caption, kind), narration, SMALL, None, context=SceneContext(theme="paper"))
        frames, _, _ = decode(seg.mp4)
        assert len(frames) == seg.frames


def test_vertical_video() -> None:
    opts = RenderOptions(aspect="9:16", fps=10, preset="ultrafast")
    seg = render_scene(scene(), speech(1.0, "Short"), opts, solid_picture((10, 120, 200)))
    assert (seg.width, seg.height) == (720, 1280)
