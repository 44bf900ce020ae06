"""The ``http`` engine: an OpenAI-compatible ``/v1/audio/speech`` endpoint (OpenAI, or a local server).

Such APIs give audio and no word times, so the text goes one sentence per request and the
words of each sentence are placed within its sound (leading and trailing silence trimmed) in
proportion to their phoneme counts (espeak-ng's, from the library already loaded). Requests have
a timeout, are tried again after a 429, a 5xx or a timeout (honouring ``Retry-After``), and a
4xx is one clear error. The key comes from ``PAGEREEL_SPEECH__API_KEY`` in the environment only.
The endpoint is the operator's (``speech.url``), reached through ``tasks.guarded_http``'s endpoint
client: its host is trusted as configured, redirects are not followed, proxies from the environment
are ignored and each answer is read to at most ``MAX_AUDIO_BYTES``.
"""

from __future__ import annotations

import io
import logging
import os
import re
import time

import av
import httpx
import numpy as np

from tasks.errors import ConfigurationError, FetchError, RenderError
from tasks.guarded_http import EndpointReply, endpoint_client, post_bounded
from tasks.models import SpeechOptions
from tasks.pcm import resampled_chunks
from tasks.voices import espeak
from tasks.voices.base import Speech

log = logging.getLogger("pagereel.voices.http")

#: The rate every answer is resampled to before the sentences are joined.
RATE = 24000
KEY_ENV = "PAGEREEL_SPEECH__API_KEY"
_NATURAL_WPM = 165
#: Words whose full stop ends no sentence.
_ABBREVIATIONS = frozenset("dr mr mrs ms st mt prof jr sr no vs etc e.g i.e approx dept fig jan feb mar apr jun jul "
                           "aug sep sept oct nov dec".split())
_VOICE_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,100}$")
_SILENCE = 328
_MAX_RETRY_AFTER_S = 30.0
#: Most bytes of one sentence's audio: a minute of 48 kHz 16-bit stereo WAV is about 11 MB.
MAX_AUDIO_BYTES = 64_000_000


class HttpNarrator:
    """Speech from an HTTP API behind :class:`tasks.voices.base.Narrator`."""

    name = "http"

    def __init__(self, options: SpeechOptions | None = None) -> None:
        self.options = (options or SpeechOptions()).model_copy(update={"api_key": None})

    @property
    def url(self) -> str:
        return self.options.base_url.rstrip("/") + "/audio/speech"

    def version(self, voice: str) -> str:
        o = self.options
        return f"{self.url} model {o.model} as {o.response_format}"

    def voices(self) -> list[str]:
        return [self.options.voice]

    def about(self, voice: str) -> str:
        return f"{self.url}, model {self.options.model}; the provider's terms apply to the speech"

    def resolve(self, voice: str) -> str:
        name = voice.strip() or self.options.voice
        if not _VOICE_NAME.fullmatch(name):
            raise ConfigurationError(f"speech API voice {voice!r} is not a voice name; use letters, digits, - or _")
        return name

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> Speech:
        chunks: list[np.ndarray] = []
        marks: list[tuple[int, int, int]] = []
        offset = 0
        with endpoint_client(self.options.timeout_s) as client:
            for start, end in sentences(text):
                pcm = _decode(self._ask(client, text[start:end], voice, rate_wpm), self.url)
                loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > _SILENCE)
                if loud.size == 0:
                    raise RenderError(f"the speech API at {self.url} returned silence for {text[start:end][:40]!r}; "
                                      "check speech.model and the voice")
                marks += _place(text, start, end, offset + int(loud[0]), offset + int(loud[-1]) + 1)
                chunks.append(pcm)
                offset += pcm.size
        if not chunks:
            return Speech(samples=np.zeros(0, dtype=np.int16), sample_rate=RATE)
        return Speech(samples=np.concatenate(chunks), sample_rate=RATE, marks=marks)

    def _ask(self, client: httpx.Client, sentence: str, voice: str, rate_wpm: int) -> bytes:
        o = self.options
        body = {"model": o.model, "input": sentence, "voice": voice, "response_format": o.response_format,
                "speed": round(rate_wpm / _NATURAL_WPM, 3)}
        key = os.environ.get(KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        why, wait = "", 0.0
        for attempt in range(o.retries + 1):
            if attempt:
                time.sleep(wait)
            wait = min(2.0**attempt * 0.5, _MAX_RETRY_AFTER_S)
            try:
                response = post_bounded(client, self.url, json=body, headers=headers, max_bytes=MAX_AUDIO_BYTES)
            except FetchError as exc:  # more audio than a sentence makes, or a body that cannot be decompressed
                raise RenderError(f"the speech API at {self.url} sent an unusable answer: {exc}") from None
            except httpx.TimeoutException:
                why = f"no answer within {o.timeout_s:g} s"
                continue
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                why = f"HTTP {response.status_code}"
                wait = _retry_after(response, wait)
                continue
            if response.status_code == 401 or response.status_code == 403:
                hint = f"set {KEY_ENV}" if not key else f"check {KEY_ENV}"
                raise ConfigurationError(
                    f"the speech API at {self.url} refused the key (HTTP {response.status_code}); {hint}"
                )
            if response.status_code >= 400:
                detail = " ".join(response.text.split())[:120]
                raise ConfigurationError(
                    f"the speech API at {self.url} refused the request (HTTP {response.status_code}: {detail}); "
                    "check speech.model, the voice and speech.response_format"
                )
            return response.content
        raise RenderError(f"the speech API at {self.url} failed {o.retries + 1} times ({why}); "
                          "check that it is up, or raise speech.timeout_s / speech.retries")


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: cut after . ! ? (or …) at a word's end, except after an abbreviation."""
    out: list[tuple[int, int]] = []
    start = None
    for m in re.finditer(r"\S+", text):
        start = m.start() if start is None else start
        word = m.group().rstrip("\"')]»”’")
        if word[-1:] in "!?…" or (word.endswith(".") and "." not in word[:-1]
                                   and word[:-1].lower() not in _ABBREVIATIONS):
            out.append((start, m.end()))
            start = None
    if start is not None:
        out.append((start, len(text.rstrip())))
    return out


def _retry_after(response: EndpointReply, default: float) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", default)), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return default


def _decode(data: bytes, url: str) -> np.ndarray:
    """Mono int16 at :data:`RATE` from a WAV, MP3 or any audio FFmpeg reads."""
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise RenderError(f"the speech API at {url} answered without audio; check speech.response_format")
            chunks = resampled_chunks(container.decode(audio=0), RATE)
    except (av.FFmpegError, ValueError) as exc:
        raise RenderError(f"the speech API at {url} answered with audio that cannot be decoded ({exc})") from None
    if not chunks:
        raise RenderError(f"the speech API at {url} answered with no sound")
    return np.concatenate(chunks).astype(np.int16)


def _phoneme_count(word: str) -> int:
    ipa = "".join(p for p, _, _, _ in espeak.clauses(word, "en"))
    return max(1, sum(1 for c in ipa if c not in "ˈˌ ."))


def _place(text: str, start: int, end: int, first: int, last: int) -> list[tuple[int, int, int]]:
    """Word marks of ``text[start:end]`` spread over samples ``first..last`` by phoneme counts."""
    tokens = [(m.start() + start, m.group()) for m in re.finditer(r"\S+", text[start:end])]
    counts = [_phoneme_count(word) for _, word in tokens]
    total, done, out = sum(counts), 0, []
    for (position, word), count in zip(tokens, counts, strict=True):
        sample = first + (last - first) * done / total
        out.append((position + 1, len(word), round(sample * 1000 / RATE)))
        done += count
    return out
