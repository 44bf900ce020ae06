"""Articles in other languages: sentences, lengths, captions and the closing scene, on the project's own pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.extract import extract_article
from tasks.models import Article
from tasks.suggest import CAPTION_MAX_CHARS, key_phrase, suggest_storyboard
from tasks.text import WIDE, count_words, estimate_seconds, split_sentences, tokenize
from tasks.wordlists import function_words
from tests.conftest import OWN_PAGES_DIR

#: Each language's page (written for the project) and words its closing scene must say.
PAGES = {
    "zh": ("zh-tea-terraces.html", "本视频"),
    "ja": ("ja-bento-shop.html", "この動画"),
    "ko": ("ko-night-market.html", "이 영상"),
    "ar": ("ar-desert-library.html", "هذا الفيديو"),
    "hi": ("hi-stepwell.html", "यह वीडियो"),
    "ru": ("ru-river-ferry.html", "Это видео"),
    "es": ("es-olive-harvest.html", "Este vídeo"),
    "de": ("bergwald.html", "Dieses Video"),
    "fr": ("marche-couvert.html", "Cette vidéo"),
    "pt": ("pt-tram-line.html", "Este vídeo"),
}
_CJK_PUNCT = "。！？、，；：「」『』（）"


def article(name: str) -> Article:
    return extract_article((OWN_PAGES_DIR / name).read_text(encoding="utf-8"), f"https://news.example/{name}")


def test_chinese_sentences_split_at_full_width_stops() -> None:
    text = "每年清明前后，山坡上便会出现采茶人。这个村庄位于山腰！村里的老茶树大多已有上百年的历史？是的。"
    assert split_sentences(text) == ["每年清明前后，山坡上便会出现采茶人。", "这个村庄位于山腰！",
                                     "村里的老茶树大多已有上百年的历史？", "是的。"]
    assert split_sentences("店主は「特別なことは何もしていない。」と答えた。次の話。") == [
        "店主は「特別なことは何もしていない。」と答えた。", "次の話。"]


def test_caseless_and_cyrillic_sentences_split() -> None:
    assert split_sentences("Паром отходит в шесть. Моста здесь нет.") == ["Паром отходит в шесть.", "Моста здесь нет."]
    assert split_sentences("تنطلق الحافلة صباحا. يركض الأطفال نحوها؟ نعم.") == [
        "تنطلق الحافلة صباحا.", "يركض الأطفال نحوها؟", "نعم."]
    assert split_sentences("बावड़ी भर गई है। लोग खुश हैं।") == ["बावड़ी भर गई है।", "लोग खुश हैं।"]
    # English keeps its rules: no split before a lower-case word or after an abbreviation.
    assert split_sentences("Dr. Smith came. then he left. Mr. Jones stayed.") == [
        "Dr. Smith came. then he left.", "Mr. Jones stayed."]


def test_chinese_length_and_speaking_time_count_characters() -> None:
    sentence = "村里的老茶树大多已有上百年的历史，村民们说正是这些茶树让村子没有变得空空荡荡。"
    chars = len(WIDE.findall(sentence))
    assert count_words(sentence) == pytest.approx(chars / 1.6, abs=1)
    assert estimate_seconds(sentence, 160) > estimate_seconds("村里的老茶树。", 160) > 1
    assert count_words("Hello, world! It's a test.") == 5  # English counted as before
    tokens = tokenize(sentence)
    assert "茶树" in tokens and all(len(t) == 2 for t in tokens)


@pytest.mark.parametrize("lang", sorted(PAGES))
def test_every_language_gives_a_storyboard_in_its_language(lang: str) -> None:
    name, closing_words = PAGES[lang]
    art = article(name)
    assert art.lang.split("-")[0] == lang
    board = suggest_storyboard(art)
    assert board.lang.split("-")[0] == lang
    assert len(board.scenes) >= 4 and board.scenes[-1].kind == "closing"
    assert closing_words in board.scenes[-1].narration
    assert "This video is based" not in board.scenes[-1].narration
    also = function_words(lang)
    for scene in board.scenes[1:-1]:
        assert scene.narration and scene.caption, scene
        for sentence in split_sentences(scene.narration):
            assert sentence in art.text  # whole sentences of the article, never a fragment
        if scene.caption in art.paragraphs:
            continue  # a heading: the author's own words
        if WIDE.search(scene.caption):
            # A clause whole (CAPTION_WIDE_MAX_CHARS at most where one is that short): in the narration,
            # between punctuation marks or at its ends, never cut in the middle of a word.
            at = scene.narration.find(scene.caption)
            assert at >= 0, scene.caption
            end = at + len(scene.caption)
            assert at == 0 or scene.narration[at - 1] in _CJK_PUNCT, scene.caption
            assert end == len(scene.narration) or scene.narration[end] in _CJK_PUNCT, scene.caption
        else:
            assert len(scene.caption) <= CAPTION_MAX_CHARS
            words = re.findall(r"[^\W\d_]+", scene.caption.lower())
            if words:
                assert words[0] not in also and words[-1] not in also, scene.caption


def test_portuguese_captions_never_end_on_function_words() -> None:
    art = article("pt-tram-line.html")
    for scene in suggest_storyboard(art).scenes[1:-1]:
        last = scene.caption.split()[-1].lower()
        assert last not in {"que", "para", "os", "vai", "também", "aqui"}, scene.caption


def test_english_closing_is_unchanged() -> None:
    art = extract_article((Path(__file__).resolve().parents[1] / "examples" / "article.html").read_text(),
                          "https://example.org/a")
    closing = suggest_storyboard(art).scenes[-1].narration
    assert closing.startswith("This video is based on an article on ")
    assert closing.endswith(". Read the full story at the source.")


def test_chinese_caption_is_a_short_clause_never_opening_on_a_conjunction() -> None:
    text = "一个熟练的采茶人一天能采三四斤鲜叶，而做成干茶后只剩下不到一斤。"
    # The second clause opens on "而" (but); the first, a little long, is still whole.
    assert key_phrase(text, {}, lang="zh") == "一个熟练的采茶人一天能采三四斤鲜叶"
    assert key_phrase("村里的老茶树很老，茶园很美。", {}, lang="zh") in ("村里的老茶树很老", "茶园很美")


def test_chinese_subtitles_end_at_clause_ends_and_fit_the_frame() -> None:
    from tasks.layout import subtitle_cues, text_width
    from tasks.models import WordTiming

    text = ("每年清明前后，云雾缭绕的山坡上便会出现背着竹篓的采茶人，"
            "村里的老茶树大多已有上百年的历史。这个村庄位于山腰。")
    # One token: the voice's word marks see no spaces in Chinese.
    cues = subtitle_cues([WordTiming(word=text, t0=0.0, t1=12.0)], 12.0, size=14, max_width=221)
    assert len(cues) > 1 and "".join(c.text for c in cues) == text
    for cue in cues:
        assert cue.text[-1] in "，。", cue.text  # a clause or a sentence, whole
        assert 1 <= len(cue.lines) <= 2 and all(text_width(line, 14) <= 221 for line in cue.lines)
    assert [c.start_s for c in cues] == sorted(c.start_s for c in cues) and cues[-1].end_s == 12.0


def test_a_closing_card_without_a_site_says_source_in_the_article_language() -> None:
    from tasks.suggest import closing_scene_of

    art = article(PAGES["zh"][0]).model_copy(update={"source_url": "file:///tmp/page.html", "site_name": None})
    assert closing_scene_of(art, 160.0).caption == "来源"
    english = art.model_copy(update={"lang": "en"})
    assert closing_scene_of(english, 160.0).caption == "Source"
