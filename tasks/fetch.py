"""Fetch a web page (or a saved local file) as decoded HTML, refusing what cannot become a video.

Every failure is a ``FetchError`` whose ``transient`` flag says whether a retry may help
(timeouts, 429, 5xx, dropped connections) and whose message says what to do about it.
"""

from __future__ import annotations

import codecs
import mimetypes
import os
import re
from urllib.parse import urlsplit

import httpx

from tasks.errors import FetchError
from tasks.guarded_http import (
    guarded_get,
    local_page_path,
    local_path,
    parse_content_type,
    read_body,
    read_local_file,
    status_error,
)
from tasks.models import FetchOptions, Page

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
SCHEMES_HINT = "pagereel fetches http:// and https:// URLs, file:// URLs and local paths"
_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Browsers read these labels as windows-1252 (WHATWG Encoding); pages rely on it for curly quotes.
_BROWSER_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252"}
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0c\r\x1b")


# --------------------------------------------------------------------------- public


def fetch_page(url: str, options: FetchOptions | None = None) -> Page:
    """Fetch ``url`` (http, https, file:// or a local path) and return its decoded HTML."""
    options = options or FetchOptions()
    target = url.strip()
    if not target:
        raise FetchError(f"no URL given; {SCHEMES_HINT}")
    scheme = urlsplit(target).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_http(url, target, options)
    # A one-letter "scheme" is a Windows drive (C:\page.html).
    if scheme == "file" or not scheme or (os.name == "nt" and len(scheme) == 1):
        return _read_local(url, target, options)
    raise FetchError(f"cannot fetch {scheme}: URLs ({target}); {SCHEMES_HINT}")


# --------------------------------------------------------------------------- http


def _fetch_http(url: str, target: str, options: FetchOptions) -> Page:
    return guarded_get(target, options, lambda response, deadline: _read_response(url, response, deadline, options),
                       accept=_ACCEPT)


def _read_response(url: str, response: httpx.Response, deadline: float, options: FetchOptions) -> Page:
    final = str(response.url)
    status = response.status_code
    if not 200 <= status < 300:
        raise status_error(final, status, response.reason_phrase)
    mime, charset = parse_content_type(response.headers.get("content-type", ""))
    if mime and mime not in HTML_TYPES:
        raise FetchError(f"{final} is {mime}, not an HTML page; give the URL of a web page")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > options.max_bytes:
        raise _too_big(final, options)
    body = read_body(response, deadline, options, lambda: _too_big(final, options))
    return _make_page(url, final, status, mime or None, charset, body)


def _too_big(url: str, options: FetchOptions) -> FetchError:
    return FetchError(
        f"{url} is larger than {options.max_bytes:,} bytes; raise fetch.max_bytes to accept bigger pages"
    )


# --------------------------------------------------------------------------- local files


def _read_local(url: str, target: str, options: FetchOptions) -> Page:
    path, data = read_local_file(target, options, lambda: local_path(target), lambda shown: _too_big(shown, options),
                                 missing="no such file: {path}; for a web page give the full URL with https://")
    guessed = mimetypes.guess_type(path.name)[0]
    mime = guessed if guessed in HTML_TYPES else None
    if mime is None and data.strip() and not _looks_like_html(data):
        raise FetchError(f"{path} is {guessed or 'not recognised'}, not an HTML page; give a saved web page")
    return _make_page(url, path.resolve().as_uri(), 200, mime, None, data)


def check_local_page(url: str) -> None:
    """Refuse a local page that is not there, before any server or worker starts for it."""
    path = local_page_path(url)
    if path is not None and not path.exists():
        raise FetchError(f"no such file: {path}; for a web page give the full URL with https://")


# --------------------------------------------------------------------------- bytes to text


def _make_page(url: str, final: str, status: int, mime: str | None, charset: str | None, data: bytes) -> Page:
    if not data.strip():
        raise FetchError(f"the page is empty: {final} has no content")
    if mime is None:
        if not _looks_like_html(data):
            raise FetchError(f"{final} has no content type and does not look like HTML; give a web page")
        mime = "text/html"
    if _looks_binary(data, charset):
        raise FetchError(f"{final} is binary data, not an HTML page, although it claims to be {mime}")
    html, encoding = decode_html(data, charset)
    return Page(url=url, final_url=final, status=status, content_type=mime, encoding=encoding, html=html)


def decode_html(data: bytes, header_charset: str | None = None) -> tuple[str, str]:
    """Decode an HTML body: header charset, BOM, <meta> charset, UTF-8, then a guess; returns (text, codec)."""
    # A byte-order mark is unambiguous, so it wins over the header, as in browsers.
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, "replace").lstrip("\ufeff"), codec
    for name, from_meta in ((header_charset, False), (_meta_charset(data), True)):
        codec = _codec(name, from_meta=from_meta)
        if codec:
            return data.decode(codec, "replace"), codec
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    codec = _guess_codec(data)
    return data.decode(codec, "replace"), codec


def _meta_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def _codec(name: str | None, *, from_meta: bool) -> str | None:
    if not name:
        return None
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None  # an unknown label: fall through to the next clue
    # A <meta> read as ASCII cannot truly announce UTF-16/32; HTML says to take UTF-8 then.
    if from_meta and codec.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return _BROWSER_ALIASES.get(codec, codec)


def _guess_codec(data: bytes) -> str:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # trafilatura brings it; without it replacement characters beat failing
        return "utf-8"
    best = from_bytes(data).best()
    codec = _codec(best.encoding, from_meta=False) if best else None
    return codec or "utf-8"


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _looks_binary(data: bytes, charset: str | None) -> bool:
    wide = (_codec(charset, from_meta=False) or "").startswith(("utf-16", "utf-32"))
    if wide or data.startswith(tuple(bom for bom, _ in _BOMS)):
        return False  # UTF-16/32 text is full of NUL bytes
    sample = data[:8192]
    # Markup is text: more than 1% NUL or other control bytes means an image, archive or program.
    return len(sample) - len(sample.translate(None, _CONTROL_BYTES)) > max(1, len(sample) // 100)
