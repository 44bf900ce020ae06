"""Narration engines and the names of their voices.

A voice is named ``ENGINE:NAME`` everywhere (the ``--voice`` flag, the ``render.voice`` setting,
the edits file): ``espeak:en-gb``, ``piper:en_US-joe-medium``, ``http:alloy``. A bare name is an
espeak-ng voice or language, as it always was. :data:`ENGINES` is the one place that maps an
engine's name to its module; each module is imported on first use only.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from tasks.errors import ConfigurationError
from tasks.models import SpeechOptions
from tasks.voices.base import Narrator, Speech

#: The engine of a bare voice name, and of every narration unless a voice names another.
DEFAULT_ENGINE = "espeak"
#: The voice of an article whose language no voice speaks.
FALLBACK_LANGUAGE = "en"

log = logging.getLogger("pagereel.voices")


def _espeak(options: SpeechOptions | None) -> Narrator:
    from tasks.voices import espeak

    return espeak.NARRATOR


def _piper(options: SpeechOptions | None) -> Narrator:
    from tasks.voices import piper

    if (problem := piper.available()) is not None:
        raise ConfigurationError(problem)
    return piper.NARRATOR


def _http(options: SpeechOptions | None) -> Narrator:
    from tasks.voices import http

    return http.HttpNarrator(options)


#: Engine name -> loader of its narrator (imports the engine's module, which may need an extra).
ENGINES: dict[str, Callable[[SpeechOptions | None], Narrator]] = {
    "espeak": _espeak,
    "piper": _piper,
    "http": _http,
}


def split_voice(voice: str) -> tuple[str, str]:
    """``"piper:en_US-joe-medium"`` -> ``("piper", "en_US-joe-medium")``; a bare name is espeak's."""
    engine, sep, name = voice.strip().partition(":")
    if not sep:
        return DEFAULT_ENGINE, voice
    engine = engine.strip().lower()
    if engine not in ENGINES:
        raise ConfigurationError(
            f"unknown narration engine {engine!r} in voice {voice!r}; name a voice as ENGINE:NAME "
            f"with ENGINE one of {', '.join(ENGINES)}"
        )
    return engine, name.strip()


@functools.cache
def narrator(engine: str, speech: SpeechOptions | None = None) -> Narrator:
    """The process's narrator for ``engine``; ConfigurationError when it is unknown or not installed.

    ``speech`` configures the ``http`` engine (the others need nothing).
    """
    if engine not in ENGINES:
        raise ConfigurationError(f"unknown narration engine {engine!r}; use one of {', '.join(ENGINES)}")
    return ENGINES[engine](speech if engine == "http" else None)


def resolve_voice(voice: str, speech: SpeechOptions | None = None) -> str:
    """The canonical ``ENGINE:NAME`` of a voice name or language tag, checked against the engine."""
    engine, name = split_voice(voice)
    return f"{engine}:{narrator(engine, speech).resolve(name)}"


def engine_version(voice: str, speech: SpeechOptions | None = None) -> str:
    """``ENGINE VERSION`` of the engine that speaks ``voice``: part of every narration's cache key."""
    engine, name = split_voice(voice)
    speaker = narrator(engine, speech)
    return f"{engine} {speaker.version(speaker.resolve(name))}"


__all__ = ["DEFAULT_ENGINE", "ENGINES", "Narrator", "Speech", "engine_version", "narrator", "resolve_voice",
           "split_voice"]


def voice_for_language(lang: str | None, speech: SpeechOptions | None = None) -> str:
    """The default engine's voice for an article in ``lang``; English, with one warning, when none speaks it.

    Only for a language read off a page: a voice the user named that does not exist is their
    mistake to fix, and :func:`resolve_voice` refuses it.
    """
    try:
        return resolve_voice(lang or FALLBACK_LANGUAGE, speech)
    except ConfigurationError:
        log.warning("no %s voice speaks the article's language %r; narrating in %r instead (name a voice with "
                    "--voice or render.voice to choose another)", DEFAULT_ENGINE, lang, FALLBACK_LANGUAGE)
        return resolve_voice(FALLBACK_LANGUAGE, speech)
