"""The benchmark scripts' working parts, small: so a change cannot break them silently."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import kernels as textrank_bench
from benchmarks import kernels_frame as frame_bench
from benchmarks import render as render_bench
from benchmarks.harness import Bench

pytestmark = pytest.mark.integration


def test_kernel_benchmarks_compare_equal_results() -> None:
    for bench in [*textrank_bench.benches(40), *frame_bench.benches(64, 36, 0.5)]:
        bench.checked_args()  # raises unless the kernel and its reference agree
    off_by_one = Bench("off", lambda: np.arange(3), lambda: np.arange(1, 4), tuple)
    with pytest.raises(AssertionError):
        off_by_one.checked_args()


def test_render_benchmark_floor_encodes_the_very_frames_pagereel_encodes() -> None:
    inputs = render_bench.build_inputs(60)
    mp4, frames = render_bench.render_and_capture(inputs)
    assert len(frames) == inputs.frames  # captured from render_scene itself, not decoded
    floor = render_bench.run_encode_only(frames, inputs)
    for output in (mp4, floor):
        assert render_bench.problems(render_bench.probe(output), inputs) == []
    middle = inputs.frames // 2
    assert render_bench.psnr(render_bench.middle_frame(mp4, middle), render_bench.middle_frame(floor, middle)) > 60


def test_cores_benchmark_renders_alone_and_side_by_side_and_prints_the_ceiling(capsys: pytest.CaptureFixture) -> None:
    import os

    from benchmarks import cores

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the cores benchmark pins two processes to two CPUs; this process may use one")
    assert cores.main(["--rounds", "1", "--frames", "60", "--resolution", "90", "--renders", "1",
                       "--loop", "200000"]) == 0
    out = capsys.readouterr().out
    assert "render round 1: alone" in out and "spin round 1: alone" in out
    assert "two workers on this machine can do at most" in out
