"""Article extraction: the readable body of a page, its metadata and its images, via trafilatura."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from lxml import etree

from tasks.errors import ExtractionError, FetchError
from tasks.guarded_http import local_picture_path, picture_folder
from tasks.models import Article
from tasks.text import length_in_words

# Blocks of trafilatura's XML that hold prose; `code` and tables are never narrated.
_PROSE_TAGS = frozenset({"p", "head", "item", "quote", "cell"})
_SKIP_TAGS = frozenset({"code", "table", "ref"})
# What each prose block is, kept with the paragraph so writers can use headings and lists.
_BLOCK_KINDS = {"p": "p", "head": "heading", "item": "item", "quote": "quote", "cell": "cell"}
# Wiki headings end in their edit link: "Details[edit]".
_EDIT_LINK = re.compile(r"\s*\[(?:edit|edit source|bearbeiten|modifier|editar)\]\s*$", re.IGNORECASE)
# Image URLs that are page furniture rather than pictures of the story.
_JUNK_IMAGE = re.compile(
    r"(?:^data:|\.svg(?:$|\?)|\b(?:logo|icon|avatar|sprite|spacer|pixel|divider|badge|banner|button|subscribe"
    r"|gravatar|emoji|feed|share)(?:s|\d+)?\b)",
    re.IGNORECASE,
)
_LANG_PATTERNS = (
    re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?)", re.IGNORECASE),
    re.compile(
        rb"<meta\b[^>]*?http-equiv\s*=\s*[\"']?content-language[\"']?[^>]*?content\s*=\s*[\"']?([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?)",
        re.IGNORECASE,
    ),
    re.compile(
        rb"<meta\b[^>]*?property\s*=\s*[\"']og:locale[\"'][^>]*?content\s*=\s*[\"']([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?)",
        re.IGNORECASE,
    ),
)
_BYLINE_NOISE = re.compile(r"^(?:by|view all posts by|posted by|written by)\s+", re.IGNORECASE)
MAX_IMAGES = 40
_NO_ARTICLE = (
    "no article text was found on the page: it may be a front page, a login wall or built by "
    "JavaScript; try the URL of the article itself"
)


def extract_article(html: str, url: str | None = None, *, min_words: int = 60) -> Article:
    """Find the article in ``html``; raise :class:`ExtractionError` if there is none worth narrating."""
    if not html or not html.strip():
        raise ExtractionError("the page is empty: there is no article to narrate")
    import trafilatura  # half a second of imports, which a run whose article is cached never pays

    try:
        xml = trafilatura.extract(
            html,
            url=url,
            output_format="xml",
            with_metadata=True,
            include_images=True,
            include_comments=False,
            include_tables=False,
            include_links=False,
        )
    except (ValueError, etree.LxmlError, RecursionError) as exc:
        raise ExtractionError(f"the page could not be parsed as HTML ({type(exc).__name__}): {exc}") from None
    if not xml:
        raise ExtractionError(_NO_ARTICLE)
    doc = etree.fromstring(xml.encode("utf-8"), parser=etree.XMLParser(huge_tree=False, resolve_entities=False))
    main = doc.find("main")
    paragraphs, kinds, images, positions = _walk(main, base=url or doc.get("url"))
    words = sum(length_in_words(p) for p in paragraphs)  # Chinese and Japanese counted by characters
    if words == 0:
        raise ExtractionError(_NO_ARTICLE)
    if words < min_words:
        raise ExtractionError(
            f"the article body has only {words} words (at least {min_words} are needed): the page may be "
            "an index, a paywall or mostly pictures; try another URL or lower storyboard.min_article_words"
        )
    title = _clean(doc.get("title") or "") or _first_heading(main) or _host(url) or "Untitled"
    byline = _byline(_BYLINE_NOISE.sub("", _clean(doc.get("author") or "")) or None, html)
    return Article(
        title=title,
        byline=byline,
        published=doc.get("date") or None,
        lang=_language(html),
        paragraphs=paragraphs,
        images=images,
        image_positions=positions,
        source_url=url or doc.get("url") or None,
        site_name=_clean(doc.get("sitename") or "") or _host(url) or None,
        paragraph_kinds=kinds,
    )


_META_AUTHOR = re.compile(r"<meta\b[^>]*?name\s*=\s*[\"']author[\"'][^>]*?content\s*=\s*[\"']([^\"'<>]{1,200})",
                          re.IGNORECASE)


def _byline(found: str | None, html: str) -> str | None:
    """The byline trafilatura found, or the page's own ``<meta name="author">`` where it found none or cut
    its letters (it drops the vowel signs ending a Devanagari name, and misses some Chinese ones)."""
    match = _META_AUTHOR.search(html[:20_000])
    meta = _clean(match.group(1)) if match else ""
    if meta and (found is None or (meta != found and meta.startswith(found))):
        return meta
    return found


def _walk(main: etree._Element | None, base: str | None) -> tuple[list[str], list[str], list[str], list[int]]:
    paragraphs: list[str] = []
    kinds: list[str] = []
    images: list[str] = []
    positions: list[int] = []
    if main is None:
        return paragraphs, kinds, images, positions
    seen_images: set[str] = set()
    for el in main.iter():
        if any(a.tag in _SKIP_TAGS for a in _ancestors_and_self(el, main)):
            continue
        if el.tag == "graphic":
            src = _absolute(el.get("src"), base)
            if src and src not in seen_images and not _JUNK_IMAGE.search(src) and len(images) < MAX_IMAGES:
                seen_images.add(src)
                images.append(src)
                positions.append(len(paragraphs))
        elif el.tag in _PROSE_TAGS and not any(c.tag in _PROSE_TAGS for c in el.iterdescendants()):
            text = _clean(_text_of(el))
            if el.tag == "head":
                text = _EDIT_LINK.sub("", text)
            if text:
                paragraphs.append(text)
                kinds.append(_BLOCK_KINDS[el.tag])
    return paragraphs, kinds, images, positions


def _ancestors_and_self(el: etree._Element, stop: etree._Element):
    while el is not None and el is not stop:
        yield el
        el = el.getparent()


def _text_of(el: etree._Element) -> str:
    # <lb/> stands for a line break: keep a space where it was.
    parts: list[str] = [el.text or ""]
    for child in el:
        if child.tag == "lb":
            parts.append(" ")
        elif child.tag not in _SKIP_TAGS:
            parts.append(_text_of(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _first_heading(main: etree._Element | None) -> str | None:
    if main is None:
        return None
    head = main.find(".//head")
    return _clean("".join(head.itertext())) if head is not None else None


def _absolute(src: str | None, base: str | None) -> str | None:
    if not src:
        return None
    src = src.strip()
    if base and not urlsplit(src).scheme:
        src = urljoin(base, src)
    scheme = urlsplit(src).scheme
    if scheme == "file":
        # A web page never names this machine's files; a local page only those in its own folder.
        try:
            local_picture_path(src, picture_folder(base))
        except FetchError:
            return None
        return src
    return src if scheme in ("http", "https") else None


def _host(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


def _language(html: str) -> str | None:
    head = html[:20_000].encode("utf-8", "ignore")
    for pattern in _LANG_PATTERNS:
        match = pattern.search(head)
        if match:
            return match.group(1).decode("ascii").replace("_", "-").lower()
    return None
