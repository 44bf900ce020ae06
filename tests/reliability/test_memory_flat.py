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


def test_keying_a_render_holds_no_copy_of_its_narration() -> None:
    """A long scene's render key is worked out from its PCM's digest: no base64 and JSON copies of the PCM."""
    from types import SimpleNamespace

    from prefect.cache_policies import INPUTS

    from tasks.render_stages import render_scene_task

    pcm = (np.arange(55 * SR) % 2000).astype("<i2").tobytes()  # a 55 s scene, as an hour's scenes are
    scene = Scene(id="s0", kind="body", narration="A tone stands in for a voice.", caption="Tone", hint_s=55.0)
    narration = Narration(scene_id="s0", pcm=pcm, sample_rate=SR, voice="en")

    def key(policy, narration: Narration) -> tuple[str | None, int]:
        inputs = {"scene": scene, "narration": narration, "options": RenderOptions(), "picture": None,
                  "previous_picture": None, "context": SceneContext()}
        ctx = SimpleNamespace(task=render_scene_task)
        policy.compute_key(ctx, inputs, {})  # the code digests are worked out once, outside the measure
        tracemalloc.start()
        try:
            return policy.compute_key(ctx, inputs, {}), tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    digest_key, peak = key(render_scene_task.cache_policy, narration)
    assert peak < len(pcm) / 4, f"keying a render held {peak / 1e6:.1f} MB for {len(pcm) / 1e6:.1f} MB of PCM"
    _, dumped = key(INPUTS, narration)
    assert dumped > 2 * len(pcm), "Prefect's INPUTS no longer copies the PCM: the measure above shows nothing"
    # The key still follows every byte of the narration.
    same = narration.model_copy(update={"pcm": bytes(pcm)})
    changed = narration.model_copy(update={"pcm": pcm[:-2] + b"\x01\x00"})
    assert key(render_scene_task.cache_policy, same)[0] == digest_key
    assert key(render_scene_task.cache_policy, changed)[0] != digest_key


_FREED = """
import sys
from flows.memory import tune_allocator
if sys.argv[1] == "tuned" and not tune_allocator():
    print("untunable"); sys.exit(0)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
x = b"\\x01" * (20 << 20); del x  # glibc raises its mmap threshold past a block this big once it is freed
before = rss()
bigs, kept = [], []
for _ in range(12):  # 8 MiB buffers, each followed by a block that stays, as scenes' bytes among the rest
    bigs.append(b"\\x01" * (8 << 20))
    kept.append(b"\\x02" * (64 << 10))
del bigs
print((rss() - before) >> 20)
"""


@pytest.mark.parametrize("tuned", [False, True])
def test_freed_scene_buffers_go_back_to_the_system(tuned: bool) -> None:
    """With the allocator tuned as a render tunes it, a freed segment-sized buffer leaves resident memory."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _FREED, "tuned" if tuned else "plain"], cwd=root,
                          capture_output=True, text=True, check=True)
    if done.stdout.strip() == "untunable":
        pytest.skip("this C library is not glibc: its allocator is left as it is")
    grown = int(done.stdout.strip())
    if tuned:
        assert grown < 16, f"{grown} MiB stayed resident after 12 freed 8 MiB buffers"
    elif grown < 16:  # the default usually keeps them; where it did not, the tuned case shows nothing here
        pytest.skip(f"glibc's default gave the freed buffers back too ({grown} MiB kept) in this process")


def _speech_like(seconds: float, rate: int) -> np.ndarray:
    """Bursts of a harmonic tone at changing levels with gaps between them, and a few clicks, as int16."""
    rng = np.random.default_rng(5)
    t = np.arange(round(seconds * rate)) / rate
    level = 0.05 + 0.25 * (np.sin(2 * np.pi * t / 7.0) > -0.3) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 1.3) ** 2)
    x = level * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2.5 * t) > 0)
    x[:: rate // 3] += rng.uniform(-0.6, 0.6, x[:: rate // 3].size)
    return np.round(np.clip(x, -1, 1) * 32767).astype("<i2")


def test_the_loudness_pass_holds_a_span_not_the_narration() -> None:
    """Normalising ten times the speech holds about the same working memory: the pass goes span by span."""
    from kernels.loudness import integrated_loudness, normalize_loudness

    rate = 16_000  # a narration at the engines' rate; at 48 kHz the whole-signal pass took 230 MB a minute
    peaks = {}
    for seconds in (30.0, 300.0):
        pcm = _speech_like(seconds, rate)
        tracemalloc.start()
        try:
            out = normalize_loudness(pcm, rate, -16.0, -1.0)
            working = tracemalloc.get_traced_memory()[1] - out.nbytes  # the result itself is the caller's
        finally:
            tracemalloc.stop()
        peaks[seconds] = working
        # The level that comes out is the whole signal's BS.1770 loudness, measured at once.
        assert integrated_loudness(out.astype(np.float64) / 32768, rate) == pytest.approx(-16.0, abs=0.1)
        assert np.abs(out.astype(np.int32)).max() <= round(32768 * 10 ** (-1 / 20))
    assert peaks[300.0] < 1.3 * peaks[30.0], (
        f"working memory {peaks[30.0] / 1e6:.1f} MB for 30 s, {peaks[300.0] / 1e6:.1f} MB for 300 s of speech")


def test_span_by_span_loudness_is_the_whole_signals() -> None:
    """Gating blocks measured span by span give the loudness of the whole signal measured at once."""
    from kernels.loudness import gated_loudness, integrated_loudness, spanned_block_powers

    rate = 48_000
    x = _speech_like(40.0, rate).astype(np.float64) / 32768
    whole = integrated_loudness(x, rate)
    for span_s in (1.0, 8.0, 60.0):
        spanned = gated_loudness(spanned_block_powers(lambda lo, hi: x[lo:hi], x.size, rate, span_s))
        assert spanned == pytest.approx(whole, abs=0.01), f"{span_s} s spans"


def test_narrations_take_turns_at_the_loudness_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two long scenes narrated at once on threads never hold the loudness pass's buffers side by side."""
    import threading
    import time

    import tasks.narrate as narrate_module

    inside, most = [0], [0]
    guard = threading.Lock()
    real = narrate_module.normalize_loudness

    def counted(*args, **kwargs):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.2)  # long enough for the other thread to arrive (no time is asserted)
        try:
            return real(*args, **kwargs)
        finally:
            with guard:
                inside[0] -= 1

    monkeypatch.setattr(narrate_module, "normalize_loudness", counted)
    results: list[object] = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        narrate_module.narrate(f"Scene {i} speaks a few words here.", scene_id=f"s{i}", sample_rate=SR)))
        for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    assert most[0] == 1, f"{most[0]} loudness passes ran at once"


def test_the_allocator_is_set_once_when_a_batch_starts_its_videos_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """mallopt changes what every thread's allocations read: a batch's threads must not call it at once."""
    import threading
    import time

    from flows import memory

    calls: list[int] = []

    def slow_set() -> bool:
        calls.append(threading.get_ident())
        time.sleep(0.05)  # a window in which other threads would call it too
        return True

    monkeypatch.setattr(memory, "_set_allocator", slow_set)
    monkeypatch.setattr(memory, "_tuned", [])
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def start() -> None:
        barrier.wait()
        results.append(memory.tune_allocator())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and results == [True] * 8
