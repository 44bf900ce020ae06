"""Assembling a video holds a few scenes' worth of memory, not the whole video's: 4x the scenes, the same peak."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest

from tasks.assemble import assemble_video
from tasks.models import Narration, RenderOptions, Scene, Storyboard
from tasks.render import SceneContext, render_scene
from tasks.spool import Spool

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

SCENE_S = 8.0
SR = 48_000


@pytest.fixture(scope="module")
def one_scene() -> tuple[Scene, Narration, object]:
    """One real 144p scene with 8 s of voice, rendered once and reused under other ids."""
    scene = Scene(id="s0", kind="body", narration="A tone stands in for a voice.", caption="Tone", hint_s=SCENE_S)
    t = np.arange(int(SCENE_S * SR)) / SR
    pcm = (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes()
    narration = Narration(scene_id="s0", pcm=pcm, sample_rate=SR, voice="en")
    options = RenderOptions(resolution=144, fps=4, preset="ultrafast")
    segment = render_scene(scene, narration, options, None, None, SceneContext(index=1, total=3, theme="midnight"))
    return scene, narration, segment


def _peak_of_assembling(count: int, parts: tuple[Scene, Narration, object], folder: Path, *, spooled: bool) -> int:
    scene, narration, segment = parts
    ids = [f"s{i}" for i in range(count)]
    board = Storyboard(title="Tones", scenes=[scene.model_copy(update={"id": i}) for i in ids])
    narrations = [narration.model_copy(update={"scene_id": i}) for i in ids]
    segments = [segment.model_copy(update={"scene_id": i}) for i in ids]  # type: ignore[attr-defined]
    folder.mkdir()
    with Spool(folder) as spool:
        if spooled:  # as the flow passes them: bytes on disk, small records in memory
            segments = [spool.add_segment(s) for s in segments]
            narrations = [spool.add_narration(n) for n in narrations]
        tracemalloc.start()
        try:
            result = assemble_video(board, segments, narrations, folder)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    with av.open(result.video_path) as container:
        assert abs(container.duration / 1e6 - result.duration_s) < 0.2
    return peak


@pytest.mark.parametrize("spooled", [False, True])
def test_assembling_four_times_the_scenes_does_not_raise_the_peak(one_scene, tmp_path: Path, spooled: bool) -> None:
    small = _peak_of_assembling(4, one_scene, tmp_path / "four", spooled=spooled)
    large = _peak_of_assembling(16, one_scene, tmp_path / "sixteen", spooled=spooled)
    # The whole 16-scene sound track alone is 16 x 8.8 s x 96 KB/s = 13.5 MB; holding it would show here.
    assert large < small * 1.25 + 512 * 1024, f"peak {small / 1e6:.1f} MB for 4 scenes, {large / 1e6:.1f} MB for 16"
