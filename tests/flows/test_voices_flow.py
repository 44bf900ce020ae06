"""Voices end to end: `python -m flows.video_flow URL --voice ENGINE:NAME` as the README writes it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "pagereel_env")]
_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> [^\n]*\n(.+?)(?:\n\n|\Z)", re.S)


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def _run(http_server, prefect_api: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PYTHONPATH": str(ROOT),
           "PAGEREEL_RENDER__RESOLUTION": "144", "PAGEREEL_RENDER__FPS": "8", "PAGEREEL_RENDER__PRESET": "ultrafast"}
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


def test_cli_unknown_voice_is_one_clear_line(http_server, prefect_api: str, tmp_path: Path) -> None:
    done = _run(http_server, prefect_api, tmp_path, "--voice", "piper:no-such-voice", "--workflow-id", "nope")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: unknown Piper voice 'no-such-voice'") and "en_US-joe-medium" in last, last
    assert not (tmp_path / "out" / "nope" / "video.mp4").exists()
