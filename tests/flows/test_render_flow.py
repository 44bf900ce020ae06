"""The whole flow, URL to finished video, on every sample page: real narration, encoding and muxing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from flows.video_flow import app, video_flow
from tasks.models import WorkflowState
from tests.conftest import own_page_params, slow_corpus_params

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "pagereel_env")]
_STAMP = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)")


@pytest.fixture
def small_video(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small, short videos: the checks are about structure and sync, not resolution."""
    monkeypatch.setenv("PAGEREEL_RENDER__RESOLUTION", "144")
    monkeypatch.setenv("PAGEREEL_RENDER__FPS", "12")
    monkeypatch.setenv("PAGEREEL_RENDER__PRESET", "ultrafast")
    monkeypatch.setenv("PAGEREEL_STORYBOARD__TARGET_DURATION_S", "25")


def probe(path: str) -> dict:
    with av.open(path) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        info = {
            "vcodec": v.codec_context.name,
            "acodec": a.codec_context.name,
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "video_s": float(v.duration * v.time_base),
            "sample_rate": a.codec_context.sample_rate,
        }
        info["frames"] = sum(1 for _ in c.decode(video=0))
    with av.open(path) as c:
        info["audio_s"] = sum(f.samples for f in c.decode(audio=0)) / info["sample_rate"]
    info["fps"] = info["frames"] / info["video_s"]
    return info


def last_cue_end(srt: str) -> float:
    h, m, s, ms = (int(x) for x in _STAMP.findall(srt)[-1])
    return h * 3600 + m * 60 + s + ms / 1000


def manifest_fps(state: WorkflowState) -> float:
    from flows.settings import load_settings

    return load_settings().render.fps


def check_outputs(state: WorkflowState) -> dict:
    assert state.status == "completed" and state.video_path
    folder = Path(state.video_path).parent
    # Beside the run's files only the folder's lock file (.lock) may stay: no staging folder, no .part file.
    assert sorted(p.name for p in folder.iterdir() if p.name != ".lock") == [
        "manifest.json", "storyboard.json", "thumbnail.png", "video.mp4", "video.srt", "video.vtt"]
    info = probe(state.video_path)
    assert (info["vcodec"], info["acodec"]) == ("h264", "aac")
    assert abs(info["video_s"] - info["audio_s"]) < 0.1
    assert info["fps"] == pytest.approx(manifest_fps(state), rel=0.01)
    manifest = WorkflowState.model_validate_json((folder / "manifest.json").read_text())
    assert manifest.video_path == state.video_path and manifest.status == "completed"
    scene_total = sum(s.end_s - s.start_s for s in manifest.scenes)
    assert abs(info["video_s"] - scene_total) <= 0.02 * scene_total
    assert [s.id for s in manifest.scenes] == [s.id for s in manifest.storyboard.scenes]
    assert all(b.start_s == pytest.approx(a.end_s) for a, b in zip(manifest.scenes, manifest.scenes[1:], strict=False))
    assert abs(last_cue_end((folder / "video.srt").read_text()) - info["video_s"]) <= 0.5
    assert (folder / "video.vtt").read_text().startswith("WEBVTT")
    Image.open(folder / "thumbnail.png").verify()
    return info


@pytest.mark.parametrize("name", own_page_params())
def test_every_own_page_becomes_a_video(http_server, small_video, name: str) -> None:
    state = video_flow(http_server.url(f"/pages/{name}"), workflow_id=name.removesuffix(".html"))
    info = check_outputs(state)
    assert (info["width"], info["height"]) == (256, 144)


@pytest.mark.parametrize("name", slow_corpus_params())
def test_every_saved_real_page_becomes_a_video(http_server, small_video, name: str) -> None:
    state = video_flow(http_server.url(f"/pages/{name}"), workflow_id=name.removesuffix(".html"))
    check_outputs(state)


def test_narration_is_heard_and_scenes_follow_the_storyboard(http_server, small_video) -> None:
    state = video_flow(http_server.url("/pages/garden-sensor.html"))
    check_outputs(state)
    with av.open(state.video_path) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 0.01
    assert state.metrics.stage_seconds["render"] > 0 and state.metrics.cache_misses > 0


def test_cli_vertical_video_with_a_png_avatar(http_server, small_video, tmp_path: Path) -> None:
    face = tmp_path / "face.png"
    Image.new("RGBA", (200, 260), (220, 60, 60, 255)).save(face)
    result = CliRunner().invoke(app, [http_server.url("/pages/photo-essay.html"), "--json", "--aspect", "9:16",
                                      "--avatar", str(face), "--workflow-id", "vertical"])
    assert result.exit_code == 0, result.stderr
    state = WorkflowState.model_validate_json(result.stdout)
    info = check_outputs(state)
    assert (info["width"], info["height"]) == (144, 256)


def test_default_size_video(http_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_STORYBOARD__TARGET_DURATION_S", "20")
    monkeypatch.setenv("PAGEREEL_RENDER__ASPECT", "9:16")
    state = video_flow(http_server.url("/pages/broken-markup.html"), workflow_id="tall")
    info = check_outputs(state)
    assert (info["width"], info["height"]) == (720, 1280)


def test_missing_avatar_fails_before_rendering(http_server, small_video, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [http_server.url("/pages/photo-essay.html"), "--avatar",
                                      str(tmp_path / "nobody.png"), "--workflow-id", "noface"])
    assert result.exit_code == 1
    assert "avatar" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out" / "noface" / "video.mp4").exists()


def test_second_run_reuses_every_scene(http_server, small_video) -> None:
    url = http_server.url("/pages/harbour-lights.html")
    first = video_flow(url, workflow_id="again")
    video = Path(first.video_path).read_bytes()
    second = video_flow(url, workflow_id="again")
    assert second.metrics.cache_misses == 0 and second.metrics.cache_hits >= first.metrics.cache_misses
    assert second.scenes == first.scenes
    assert json.loads(Path(second.video_path).with_name("manifest.json").read_text())["status"] == "completed"
    # Every input of the assembly is unchanged: the finished video is taken over, not assembled again.
    assert "reused:assemble" in second.optimizations_used and "reused:assemble" not in first.optimizations_used
    assert second.assembly == first.assembly and Path(second.video_path).read_bytes() == video
    check_outputs(second)


@pytest.mark.slow
def test_a_changed_scene_or_a_changed_video_file_is_assembled_again(http_server, small_video) -> None:
    url = http_server.url("/pages/harbour-lights.html")
    first = video_flow(url, workflow_id="changed")
    scene = first.storyboard.scenes[1]
    edited = video_flow(url, workflow_id="changed",
                        user_edits={"scenes": {scene.id: {"narration": scene.narration + " Worth remembering."}}})
    assert "reused:assemble" not in edited.optimizations_used
    assert edited.metrics.cache_misses >= 2  # that scene's narration and render
    assert edited.assembly.inputs != first.assembly.inputs
    assert edited.assembly.files["video.mp4"] != first.assembly.files["video.mp4"]
    check_outputs(edited)

    Path(edited.video_path).write_bytes(b"not the video that was made")  # changed behind pagereel's back
    again = video_flow(url, workflow_id="changed",
                       user_edits={"scenes": {scene.id: {"narration": scene.narration + " Worth remembering."}}})
    assert "reused:assemble" not in again.optimizations_used
    assert again.assembly.inputs == edited.assembly.inputs
    check_outputs(again)


def test_png_avatar_pixels_follow_the_voice(http_server, small_video, tmp_path: Path) -> None:
    face = tmp_path / "face.png"
    Image.new("RGBA", (200, 260), (30, 200, 60, 255)).save(face)
    state = video_flow(http_server.url("/pages/garden-sensor.html"), avatar=str(face), workflow_id="pulse")
    with av.open(state.video_path) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    corner = [(f[90:140, 200:256, 1] > 150).sum() for f in frames]  # green pixels of the presenter
    assert max(corner) - min(corner) > 20
