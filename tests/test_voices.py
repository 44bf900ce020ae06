"""The narration engines' seam: ENGINE:NAME voice names, the registry, and the engine in the cache key."""

from __future__ import annotations

import pytest

from tasks import voices
from tasks.cachekeys import module_closure
from tasks.errors import ConfigurationError
from tasks.narrate import narrate
from tasks.voices import ENGINES, engine_version, narrator, resolve_voice, split_voice


def test_a_bare_name_is_an_espeak_voice() -> None:
    assert split_voice("en-gb") == ("espeak", "en-gb")
    assert split_voice("espeak:en-gb") == ("espeak", "en-gb")
    assert split_voice(" ESPEAK:en-gb ") == ("espeak", "en-gb")
    assert resolve_voice("en-gb") == resolve_voice("espeak:en-gb")
    assert resolve_voice("en-gb").startswith("espeak:")
    # The same voice, named either way, speaks the same bytes.
    bare = narrate("One two three.", scene_id="a", voice="en-gb")
    named = narrate("One two three.", scene_id="a", voice="espeak:en-gb")
    assert bare == named
    assert named.voice == resolve_voice("en-gb")


def test_an_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown narration engine 'festival'.*ENGINE:NAME.*espeak"):
        resolve_voice("festival:kal")
    with pytest.raises(ConfigurationError, match="unknown espeak-ng voice"):
        resolve_voice("espeak:en-uss")


def test_every_engine_is_read_from_one_registry() -> None:
    assert "espeak" in ENGINES
    espeak = narrator("espeak")
    assert espeak.name == "espeak"
    assert {"en", "de"} <= set(espeak.voices())
    assert "Hz" in espeak.about(espeak.resolve("en"))


def test_the_engine_and_its_version_are_in_the_narration_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every engine module is code the narration stage runs: editing one changes its key.
    closure = module_closure("tasks.narrate")
    assert {"tasks.voices", "tasks.voices.base", "tasks.voices.espeak"} <= closure
    assert all(f"tasks.voices.{engine}" in closure for engine in ENGINES)
    version = engine_version("en")
    assert version.startswith("espeak 1."), version
    from prefect.cache_policies import INPUTS

    from tasks.cachekeys import NarrationEngine, StageCode

    policy = INPUTS + StageCode() + NarrationEngine()

    class Ctx:
        class task:  # noqa: N801 - the shape of a TaskRunContext that compute_key reads
            class fn:  # noqa: N801
                __module__ = "tasks.narrate"

    inputs = {"voice": "espeak:en", "rate_wpm": 165}
    before = policy.compute_key(Ctx, inputs, {})  # type: ignore[arg-type]
    assert before == policy.compute_key(Ctx, dict(inputs), {})  # type: ignore[arg-type]
    espeak = narrator("espeak")
    monkeypatch.setattr(type(espeak), "version", lambda self, voice: "1.99-rebuilt")
    assert policy.compute_key(Ctx, inputs, {}) != before  # type: ignore[arg-type]
    assert voices.engine_version("en") == "espeak 1.99-rebuilt"


def test_an_edits_file_names_any_engine_s_voice() -> None:
    from tasks.edits import parse_edits

    long_path = "piper:/srv/voices/" + "shared-team-voices/" * 4 + "en_GB-northern_english_male-medium.onnx"
    assert len(long_path) > 60
    for voice in ("espeak:en-gb", "piper:en_US-joe-medium", "http:alloy", long_path):
        assert parse_edits(f"voice: {voice}\n").voice == voice


def test_an_article_in_a_language_without_a_voice_is_narrated_in_english_with_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    from tasks.voices import voice_for_language

    with caplog.at_level("WARNING", logger="pagereel.voices"):
        assert voice_for_language("de") == resolve_voice("de")
        assert not caplog.records
        assert voice_for_language("tlh") == resolve_voice("en")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "'tlh'" in warnings[0].getMessage()


def test_a_voice_the_user_names_is_never_swapped_for_another() -> None:
    with pytest.raises(ConfigurationError, match="tlh"):
        resolve_voice("espeak:tlh")
