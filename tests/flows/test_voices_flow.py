"""Voices end to end: `python -m flows.video_flow URL --voice ENGINE:NAME` as the README writes it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from flows.video_flow import video_flow
from kernels.loudness import integrated_loudness
from tests.test_speech_api import SpeechServer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "pagereel_env")]
_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> [^\n]*\n(.+?)(?:\n\n|\Z)", re.S)


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def _run(http_server, prefect_api: str, tmp_path: Path, *args: str, **extra_env: str,
         ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PYTHONPATH": str(ROOT),
           "PAGEREEL_RENDER__RESOLUTION": "144", "PAGEREEL_RENDER__FPS": "8", "PAGEREEL_RENDER__PRESET": "ultrafast",
           **extra_env}
    return subprocess.run([sys.executable, "-m", "flows.video_flow", http_server.url("/pages/short-note.html"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)


def _audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]).astype(np.float64), rate


def _onsets(x: np.ndarray, rate: int) -> list[float]:
    frame = rate // 100
    e = np.sqrt((x[: x.size // frame * frame].reshape(-1, frame) ** 2).mean(axis=1))
    loud = e > e.max() * 10 ** (-40 / 20)
    out, quiet = [], 8
    for i, on in enumerate(loud):
        if on and quiet >= 8:
            out.append(i / 100)
        quiet = 0 if on else quiet + 1
    return out


def test_cli_piper_voice_subtitles_start_with_the_words(http_server, prefect_api: str, tmp_path: Path) -> None:
    done = _run(http_server, prefect_api, tmp_path, "--voice", "piper:en_US-joe-medium", "--workflow-id", "joe")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "out" / "joe"
    audio, rate = _audio(folder / "video.mp4")
    onsets = _onsets(audio, rate)
    cues = [(_seconds(*m.groups()[:4]), m.group(5).strip()) for m in _CUE.finditer((folder / "video.vtt").read_text())]
    assert len(cues) >= 4
    # A cue that starts a sentence follows a pause: the voice comes back within 60 ms of the cue.
    starts = [t for (t, _), (_, before) in zip(cues[1:], cues, strict=False) if before.rstrip()[-1] in ".!?"]
    assert starts, cues
    for t in [cues[0][0], *starts]:
        assert min(abs(t - o) for o in onsets) <= 0.06, (t, onsets, cues)
    # Piper speaks about 10 LU quieter than espeak-ng; the video is at the target all the same.
    assert integrated_loudness(audio, rate) == pytest.approx(-16.0, abs=1.0)


def _music(path: Path) -> Path:
    """Three seconds of a loud chord with a beat, 44.1 kHz stereo: far louder than the target before mixing."""
    rate = 44_100
    t = np.arange(3 * rate) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3 * (0.6 + 0.4 * (t * 2 % 1 < 0.5))
    pcm = (chord * 30000).astype(np.int16)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.repeat(pcm, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_final_mix_with_music_is_at_the_loudness_target(http_server, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """espeak-ng under loud music, at a target of its own (the Piper and http runs check -16 without music)."""
    monkeypatch.setenv("PAGEREEL_RENDER__RESOLUTION", "144")
    monkeypatch.setenv("PAGEREEL_RENDER__FPS", "8")
    monkeypatch.setenv("PAGEREEL_RENDER__PRESET", "ultrafast")
    monkeypatch.setenv("PAGEREEL_RENDER__LOUDNESS_LUFS", "-18")
    monkeypatch.setenv("PAGEREEL_RENDER__MUSIC", str(_music(tmp_path / "bed.wav")))
    state = video_flow(http_server.url("/pages/short-note.html"))
    audio, rate = _audio(Path(state.video_path))
    assert integrated_loudness(audio, rate) == pytest.approx(-18.0, abs=1.0)
    assert np.abs(audio).max() <= 10 ** (-1 / 20) + 0.02  # the ceiling holds through the AAC encoder, nearly


def test_cli_unknown_voice_is_one_clear_line(http_server, prefect_api: str, tmp_path: Path) -> None:
    done = _run(http_server, prefect_api, tmp_path, "--voice", "piper:no-such-voice", "--workflow-id", "nope")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: unknown Piper voice 'no-such-voice'") and "en_US-joe-medium" in last, last
    assert not (tmp_path / "out" / "nope" / "video.mp4").exists()


@pytest.fixture
def speech_api() -> Iterator[SpeechServer]:
    server = SpeechServer()
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_cli_http_voice_makes_a_video_or_one_clear_error(http_server, prefect_api: str, tmp_path: Path,
                                                        speech_api: SpeechServer) -> None:
    env = {"PAGEREEL_SPEECH__BASE_URL": speech_api.url, "PAGEREEL_SPEECH__RESPONSE_FORMAT": "mp3",
           "PAGEREEL_SPEECH__API_KEY": "sk-local"}
    speech_api.script = ["429"]
    done = _run(http_server, prefect_api, tmp_path, "--voice", "http:alloy", "--workflow-id", "api", **env)
    assert done.returncode == 0, done.stderr
    audio, rate = _audio(tmp_path / "out" / "api" / "video.mp4")
    assert integrated_loudness(audio, rate) == pytest.approx(-16.0, abs=1.0)
    assert speech_api.headers[0]["Authorization"] == "Bearer sk-local"
    assert "sk-local" not in (tmp_path / "out" / "api" / "manifest.json").read_text()

    speech_api.script = ["401"] * 50
    refused = _run(http_server, prefect_api, tmp_path, "--voice", "http:alloy", "--workflow-id", "nokey",
                   "--config", str(_no_cache(tmp_path)), **{**env, "PAGEREEL_SPEECH__API_KEY": ""})
    assert refused.returncode == 1
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "refused the key (HTTP 401)" in last, refused.stderr
    assert not (tmp_path / "out" / "nokey" / "video.mp4").exists()


def _no_cache(tmp_path: Path) -> Path:
    config = tmp_path / "fresh.toml"
    config.write_text("[cache]\nenabled = false\n")
    return config
