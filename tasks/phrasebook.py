"""The few sentences pagereel writes itself (the closing scene, the byline), in the article's language.

Keyed by primary language tag; a language not listed gets English. ``{site}`` and ``{byline}``
are filled in; ``{source}`` and ``{by}`` take the filled-in ``site``/``web`` and ``by`` phrases.
"""

from __future__ import annotations

PHRASES: dict[str, dict[str, str]] = {
    "en": {"site": "an article on {site}", "web": "an article from the web", "by": " by {byline}",
           "closing": "This video is based on {source}{by}. Read the full story at the source.",
           "byline": "By {byline}"},
    "es": {"site": "un artículo de {site}", "web": "un artículo de la web", "by": ", escrito por {byline}",
           "closing": "Este vídeo se basa en {source}{by}. Lee la historia completa en la fuente.",
           "byline": "Por {byline}"},
    "pt": {"site": "um artigo de {site}", "web": "um artigo da internet", "by": ", escrito por {byline}",
           "closing": "Este vídeo é baseado em {source}{by}. Leia a matéria completa na fonte.",
           "byline": "Por {byline}"},
    "fr": {"site": "un article de {site}", "web": "un article du web", "by": ", écrit par {byline}",
           "closing": "Cette vidéo est tirée d'{source}{by}. Lisez l'article complet à la source.",
           "byline": "Par {byline}"},
    "de": {"site": "einem Artikel auf {site}", "web": "einem Artikel aus dem Netz", "by": " von {byline}",
           "closing": "Dieses Video beruht auf {source}{by}. Den ganzen Artikel lesen Sie an der Quelle.",
           "byline": "Von {byline}"},
    "it": {"site": "un articolo di {site}", "web": "un articolo dal web", "by": ", scritto da {byline}",
           "closing": "Questo video è tratto da {source}{by}. Leggi l'articolo completo alla fonte.",
           "byline": "Di {byline}"},
    "nl": {"site": "een artikel op {site}", "web": "een artikel van het web", "by": " door {byline}",
           "closing": "Deze video is gebaseerd op {source}{by}. Lees het volledige verhaal bij de bron.",
           "byline": "Door {byline}"},
    "ru": {"site": "статье на сайте {site}", "web": "статье из интернета", "by": ", автор {byline}",
           "closing": "Это видео основано на {source}{by}. Полный текст читайте в источнике.",
           "byline": "Автор: {byline}"},
    "zh": {"site": "{site}上的一篇文章", "web": "网上的一篇文章", "by": "（作者：{byline}）",
           "closing": "本视频根据{source}{by}制作。完整内容请阅读原文。", "byline": "作者：{byline}"},
    "ja": {"site": "{site}の記事", "web": "ウェブ上の記事", "by": "（筆者：{byline}）",
           "closing": "この動画は{source}{by}をもとに作成しました。全文は元の記事でお読みください。",
           "byline": "文：{byline}"},
    "ko": {"site": "{site}의 기사", "web": "웹에 실린 기사", "by": "(글: {byline})",
           "closing": "이 영상은 {source}{by}를 바탕으로 만들었습니다. 전체 기사는 원문에서 읽어 보세요.",
           "byline": "글: {byline}"},
    "ar": {"site": "مقال على {site}", "web": "مقال من الإنترنت", "by": " بقلم {byline}",
           "closing": "هذا الفيديو مبني على {source}{by}. اقرأ القصة كاملة في المصدر.", "byline": "بقلم {byline}"},
    "hi": {"site": "{site} पर प्रकाशित एक लेख", "web": "वेब पर प्रकाशित एक लेख", "by": " (लेखक: {byline})",
           "closing": "यह वीडियो {source}{by} पर आधारित है। पूरी कहानी मूल स्रोत पर पढ़ें।",
           "byline": "लेखक: {byline}"},
}


def phrases(lang: str | None) -> dict[str, str]:
    """The phrases of ``lang`` (a tag such as "pt-BR"), or English's."""
    return PHRASES.get((lang or "en").split("-")[0].lower(), PHRASES["en"])


def closing_line(lang: str | None, site: str | None, byline: str | None) -> str:
    """What the closing scene says: where the video comes from, and to read the whole story there."""
    p = phrases(lang)
    source = p["site"].format(site=site) if site else p["web"]
    by = p["by"].format(byline=byline) if byline else ""
    return p["closing"].format(source=source, by=by)


def byline_caption(lang: str | None, byline: str) -> str:
    return phrases(lang)["byline"].format(byline=byline)


#: The closing card's caption when the page names no site and has no host (a local file): "Source".
SOURCE_WORD: dict[str, str] = {
    "en": "Source", "es": "Fuente", "pt": "Fonte", "fr": "Source", "de": "Quelle", "it": "Fonte", "nl": "Bron",
    "ru": "Источник", "zh": "来源", "ja": "出典", "ko": "출처", "ar": "المصدر", "hi": "स्रोत",
}


def source_word(lang: str | None) -> str:
    """"Source" in ``lang`` (English where the language is not listed)."""
    return SOURCE_WORD.get((lang or "en").split("-")[0].lower(), SOURCE_WORD["en"])

