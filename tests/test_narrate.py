"""Narration through the real espeak-ng library (the default engine): audio, timings, voices, threads."""

from __future__ import annotations

import unicodedata
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tasks.errors import ConfigurationError, RenderError
from tasks.models import Narration, Scene
from tasks.narrate import _word_timings, narrate, narrate_scene
from tasks.voices import narrator, resolve_voice

SENTENCE = (
    "Mountain goats climb the steep cliffs of the northern valley every spring, "
    "and researchers have followed their routes for more than forty years."
)


def samples(n: Narration) -> np.ndarray:
    return np.frombuffer(n.pcm, dtype="<i2")


def rms(n: Narration) -> float:
    return float(np.sqrt(np.mean(samples(n).astype(np.float64) ** 2)))


def assert_timings_sound(n: Narration) -> None:
    words = n.words
    assert words, "no word timings"
    for w in words:
        assert 0 <= w.t0 <= w.t1 <= n.duration_s + 1e-3, w
    for a, b in zip(words, words[1:], strict=False):
        assert a.t0 <= b.t0, (a, b)
        assert a.t1 == pytest.approx(b.t0), (a, b)


@pytest.fixture(scope="module")
def english() -> Narration:
    return narrate(SENTENCE, scene_id="s1", voice="en-us", rate_wpm=165)


def test_english_narration_is_speech_of_plausible_length(english: Narration) -> None:
    assert english.scene_id == "s1"
    assert english.sample_rate == 22050
    assert len(english.pcm) % 2 == 0
    assert rms(english) > 500, "narration is (nearly) silent"
    n_words = len(SENTENCE.split())
    expected_s = n_words / 165 * 60
    assert 0.6 * expected_s < english.duration_s < 1.8 * expected_s


def test_word_timings_cover_the_text_in_order(english: Narration) -> None:
    assert [w.word for w in english.words] == SENTENCE.split()
    assert_timings_sound(english)
    # Nearly every word has an event of its own, so start times are distinct, not shared out.
    assert len({w.t0 for w in english.words}) >= 0.9 * len(english.words)
    assert english.words[0].t0 < 0.3
    assert english.words[-1].t1 == pytest.approx(english.duration_s, abs=0.25)


def test_faster_rate_gives_shorter_narration() -> None:
    slow = narrate(SENTENCE, scene_id="s", voice="en", rate_wpm=120)
    fast = narrate(SENTENCE, scene_id="s", voice="en", rate_wpm=300)
    assert fast.duration_s < 0.7 * slow.duration_s


def test_german_voice() -> None:
    text = "Guten Morgen, die Ziegen klettern heute wieder auf den Berg."
    n = narrate(text, scene_id="de1", voice="de")
    assert n.voice == resolve_voice("de")
    assert "de" in n.voice.lower()
    assert rms(n) > 500
    assert [w.word for w in n.words] == text.split()
    assert_timings_sound(n)


def test_bogus_voice_suggests_close_matches() -> None:
    with pytest.raises(ConfigurationError, match="en-us"):
        narrate("Hello there.", scene_id="x", voice="en-uss")
    with pytest.raises(ConfigurationError, match="en-us"):
        resolve_voice("en-uss")
    with pytest.raises(ConfigurationError, match="variant"):
        resolve_voice("en+no-such-variant")
    with pytest.raises(ConfigurationError):
        resolve_voice("   ")


@pytest.mark.parametrize(
    ("asked", "same_as"),
    [
        ("en-US", "en-us"),
        ("EN_us", "en-us"),
        ("fr-FR", "fr"),
        ("de-DE", "de"),
        ("de-CH-1996", "de"),
        ("zh-Hans-CN", "zh"),
    ],
)
def test_article_languages_resolve_to_voices(asked: str, same_as: str) -> None:
    assert resolve_voice(asked) == resolve_voice(same_as)


def test_voice_catalogue() -> None:
    voices = narrator("espeak").voices()
    assert voices == sorted(voices)
    assert {"en", "en-us", "de", "fr"} <= set(voices)
    assert resolve_voice("en-us").lower().endswith("en-us")
    assert resolve_voice("en-us+f3").endswith("+f3")
    # Every listed code resolves (to a voice espeak-ng accepts: spot-check a few by speaking).
    for code in voices:
        resolve_voice(code)
    for code in ("en-us+f3", "fr", "es"):
        assert rms(narrate("One two three.", scene_id="v", voice=code)) > 300


def test_resampling_keeps_length_and_timings(english: Narration) -> None:
    hi = narrate(SENTENCE, scene_id="s1", voice="en-us", rate_wpm=165, sample_rate=48000)
    assert hi.sample_rate == 48000
    ratio = (len(hi.pcm) / 2) / (len(english.pcm) / 2)
    assert ratio == pytest.approx(48000 / 22050, rel=0.01)
    assert hi.duration_s == pytest.approx(english.duration_s, abs=0.01)
    assert hi.words == english.words
    assert rms(hi) == pytest.approx(rms(english), rel=0.1)


def test_non_ascii_words() -> None:
    text = "Café déjà vu, naïve résumé."
    n = narrate(text, scene_id="fr1", voice="fr")
    assert [w.word for w in n.words] == ["Café", "déjà", "vu,", "naïve", "résumé."]
    assert_timings_sound(n)
    assert len({w.t0 for w in n.words}) == 5, "each word should carry its own event"
    # Decomposed accents are composed first, so words come back in NFC.
    decomposed = narrate(unicodedata.normalize("NFD", text), scene_id="fr1", voice="fr")
    assert decomposed.words == n.words
    # Words after characters outside the BMP and after CJK still line up.
    mixed = narrate("Ziegen 🐐 sind 日本語 klug.", scene_id="m", voice="de")
    assert [w.word for w in mixed.words] == ["Ziegen", "🐐", "sind", "日本語", "klug."]
    assert_timings_sound(mixed)


def test_control_characters_and_markup_are_plain_text() -> None:
    n = narrate("Hello\x00 there,\x07 goats\nand\tfriends.", scene_id="c")
    assert [w.word for w in n.words] == ["Hello", "there,", "goats", "and", "friends."]
    tagged = narrate("<speak>Less <b>than</b> & more</speak>", scene_id="t")
    assert rms(tagged) > 300
    assert [w.word for w in tagged.words] == ["<speak>Less", "<b>than</b>", "&", "more</speak>"]


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x01\x02"])
def test_empty_narration_is_a_render_error(text: str) -> None:
    with pytest.raises(RenderError, match="no narration text"):
        narrate(text, scene_id="empty")


def test_bad_rate_and_sample_rate() -> None:
    with pytest.raises(ConfigurationError, match="rate"):
        narrate("Hi.", scene_id="r", rate_wpm=20)
    with pytest.raises(ConfigurationError, match="sample rate"):
        narrate("Hi.", scene_id="r", sample_rate=100)


def test_concurrent_calls_are_deterministic() -> None:
    def speak(i: int) -> Narration:
        if i % 2:
            return narrate(SENTENCE, scene_id="same", voice="en-us", sample_rate=48000)
        return narrate("Ein ganz anderer Satz, auf Deutsch.", scene_id="other", voice="de")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(speak, range(12)))
    same = [r for i, r in enumerate(results) if i % 2]
    assert all(r == same[0] for r in same)
    assert all(r == results[0] for r in results[::2])


def test_output_does_not_depend_on_what_was_said_before() -> None:
    first = narrate(SENTENCE, scene_id="h", voice="en-us")
    narrate("Something else entirely, said with another voice.", scene_id="h", voice="en-gb-x-rp", rate_wpm=300)
    assert narrate(SENTENCE, scene_id="h", voice="en-us") == first


def test_narration_round_trips_through_json(english: Narration) -> None:
    again = Narration.model_validate_json(english.model_dump_json())
    assert again == english
    assert again.pcm == english.pcm


def test_narrate_scene() -> None:
    scene = Scene(id="intro", narration="Welcome to the goats of the Alps.", hint_s=3)
    n = narrate_scene(scene, voice="en", rate_wpm=180)
    assert n.scene_id == "intro"
    assert n.sample_rate == 48000
    assert [w.word for w in n.words] == scene.narration.split()


# --------------------------------------------------------------------------- timings from events (pure)


def test_words_without_events_share_the_gap_between_neighbours() -> None:
    text = "one two-three four"
    # Events for "one" (position 1) and "four" (position 15) only.
    words = _word_timings(text, [(1, 3, 0), (15, 4, 1000)], end_s=1.5)
    assert [w.word for w in words] == ["one", "two-three", "four"]
    assert words[0].t0 == 0.0
    assert 0.0 < words[1].t0 < 1.0
    assert words[2].t0 == 1.0
    assert words[2].t1 == 1.5


def test_events_between_tokens_and_repeated_events() -> None:
    text = "In 2024  goats"
    # espeak-ng splits numbers into several word events inside one token; one event points at a space.
    events = [(1, 2, 0), (4, 4, 200), (5, 4, 400), (9, 1, 900), (10, 5, 950)]
    words = _word_timings(text, events, end_s=1.4)
    assert [(w.word, w.t0) for w in words] == [("In", 0.0), ("2024", 0.2), ("goats", 0.9)]


def test_no_events_spreads_words_over_the_speech() -> None:
    words = _word_timings("a bb ccc", [], end_s=0.9)
    assert [w.t0 for w in words] == sorted(w.t0 for w in words)
    assert words[0].t0 == 0.0 and words[-1].t1 == 0.9
    assert _word_timings("   ", [], end_s=1.0) == []
