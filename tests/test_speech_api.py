"""The http engine against a real server on 127.0.0.1 that speaks the /v1/audio/speech protocol."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import numpy as np
import pytest

from tasks.errors import ConfigurationError, RenderError
from tasks.models import SpeechOptions
from tasks.narrate import narrate
from tasks.voices import resolve_voice

TEXT = "Dr. Smith paid $12.50 in 1990. Then the goats, all forty of them, climbed the hill!"


def _encode(pcm: np.ndarray, rate: int, fmt: str) -> bytes:
    """``pcm`` as a WAV or an MP3 file, written by PyAV (FFmpeg's libmp3lame for the MP3)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream("pcm_s16le" if fmt == "wav" else "libmp3lame", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        if fmt == "mp3":  # the MP3 encoder takes planar floats in frames of its own size
            frame = av.AudioFrame.from_ndarray((pcm.astype(np.float32) / 32768).reshape(1, -1), format="fltp",
                                               layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


class SpeechServer:
    """A local speech API: it speaks each input with espeak-ng and answers as told by ``script``."""

    def __init__(self) -> None:
        self.script: list[str] = []  # what to do for each request in turn ("ok", "429", "401", "500", "hang")
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                action = server.script.pop(0) if server.script else "ok"
                if action == "hang":
                    time.sleep(3)
                    action = "ok"
                if action in ("429", "401", "500"):
                    payload = json.dumps({"error": {"message": f"status {action}"}}).encode()
                    self.send_response(int(action))
                    if action == "429":
                        self.send_header("Retry-After", "0")
                else:
                    spoken = narrate(body["input"], scene_id="api", voice="en-us", loudness_lufs=None)
                    pcm = np.frombuffer(spoken.pcm, dtype="<i2").copy()
                    payload = _encode(pcm, spoken.sample_rate, body.get("response_format", "wav"))
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/" + body.get("response_format", "wav"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def api() -> Iterator[SpeechServer]:
    server = SpeechServer()
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _options(api: SpeechServer, **extra: object) -> SpeechOptions:
    return SpeechOptions(base_url=api.url, model="tts-test", timeout_s=2, retries=2, **extra)


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_each_sentence_is_asked_for_and_words_placed_in_it(api: SpeechServer, fmt: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_SPEECH__API_KEY", "sk-test")
    n = narrate(TEXT, scene_id="h", voice="http:alloy", sample_rate=48000, speech=_options(api, response_format=fmt))
    assert n.voice == "http:alloy"
    assert [r["input"] for r in api.requests] == ["Dr. Smith paid $12.50 in 1990.",
                                                  "Then the goats, all forty of them, climbed the hill!"]
    assert all(r["model"] == "tts-test" and r["voice"] == "alloy" and r["response_format"] == fmt
               for r in api.requests)
    assert api.headers[0]["Authorization"] == "Bearer sk-test"
    assert [w.word for w in n.words] == TEXT.split()
    starts = [w.t0 for w in n.words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    # The second sentence's first word starts where its sound does, after the first sentence's audio.
    pcm = np.frombuffer(n.pcm, dtype="<i2")
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 500
    then = n.words[6]
    assert then.word == "Then" and 0.3 * n.duration_s < then.t0 < 0.6 * n.duration_s


def test_a_429_then_success_is_retried(api: SpeechServer) -> None:
    api.script = ["429", "500"]
    n = narrate("One sentence only.", scene_id="r", voice="http:", speech=_options(api))
    assert len(api.requests) == 3 and n.voice == "http:alloy"


def test_a_401_is_one_clear_error(api: SpeechServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAGEREEL_SPEECH__API_KEY", raising=False)
    api.script = ["401"]
    with pytest.raises(ConfigurationError, match=r"refused the key \(HTTP 401\); set PAGEREEL_SPEECH__API_KEY"):
        narrate("Hello there.", scene_id="k", voice="http:alloy", speech=_options(api))
    assert len(api.requests) == 1  # a 4xx is never tried again


def test_a_hang_past_the_timeout_is_one_clear_error(api: SpeechServer) -> None:
    api.script = ["hang", "hang"]
    options = SpeechOptions(base_url=api.url, timeout_s=0.5, retries=1)
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"failed 2 times \(no answer within 0.5 s\)"):
        narrate("Hello there.", scene_id="t", voice="http:alloy", speech=options)
    assert time.monotonic() - started < 5


def test_nothing_listening_is_one_clear_error() -> None:
    options = SpeechOptions(base_url="http://127.0.0.1:9/v1", timeout_s=0.5, retries=0)
    with pytest.raises(RenderError, match="failed 1 times .*check that it is up"):
        narrate("Hello there.", scene_id="n", voice="http:alloy", speech=options)


def test_bad_voice_names() -> None:
    with pytest.raises(ConfigurationError, match="not a voice name"):
        resolve_voice("http:al loy")


def test_the_key_is_taken_from_the_environment_only(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.settings import load_settings

    monkeypatch.delenv("PAGEREEL_SPEECH__API_KEY", raising=False)
    config = tmp_path / "pagereel.toml"
    config.write_text('[speech]\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "sk-in-a-file"\n')
    with pytest.raises(ConfigurationError, match="PAGEREEL_SPEECH__API_KEY"):
        load_settings(config)
    monkeypatch.setenv("PAGEREEL_SPEECH__API_KEY", "sk-env")
    config.write_text('[speech]\nbase_url = "http://127.0.0.1:9/v1"\n')
    settings = load_settings(config)
    assert settings.speech.api_key is not None and "sk-env" not in repr(settings)
