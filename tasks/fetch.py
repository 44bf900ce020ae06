"""Fetching a page: bounded in time, bytes and redirects, HTML only, and never into a private network.

``fetch_page`` is a plain function; ``tasks.stages`` runs it as a Prefect task that retries
what :attr:`FetchError.transient` marks as worth retrying (timeouts, 429, 5xx, dropped
connections) and fails at once on the rest.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import socket
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from tasks.errors import FetchError
from tasks.models import FetchOptions, Page

HTML_TYPES = ("text/html", "application/xhtml+xml")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_PRIVATE_HINT = "set fetch.allow_private_hosts (PAGEREEL_FETCH__ALLOW_PRIVATE_HOSTS=1) to allow it"
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry may cure."""
    return isinstance(exc, FetchError) and exc.transient


def check_host_allowed(url: str, options: FetchOptions) -> None:
    """Refuse URLs whose host is, or resolves to, a loopback, private, link-local or reserved address."""
    if options.allow_private_hosts:
        return
    host = urlsplit(url).hostname
    if not host:
        raise FetchError(f"{url!r} has no host name")
    for address in _resolve(host, url):
        if not _is_public(address):
            raise FetchError(f"{url!r} points at {address}, a private or local address; {_PRIVATE_HINT}")


def fetch_page(url: str, options: FetchOptions | None = None) -> Page:
    """Fetch ``url`` (http, https, file:// or a local path) and return it decoded."""
    options = options or FetchOptions()
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_http(url, options)
    if scheme == "file" or (not scheme and url) or (len(scheme) == 1 and Path(url).exists()):
        return _fetch_file(url, options)
    raise FetchError(f"{url!r} uses the scheme {scheme!r}; give an http(s):// or file:// URL, or a local path")


# --------------------------------------------------------------------------- http


def _fetch_http(url: str, options: FetchOptions) -> Page:
    deadline = time.monotonic() + options.timeout_s
    timeout = httpx.Timeout(options.timeout_s)
    headers = {"User-Agent": options.user_agent, "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"}
    current = url
    seen: set[str] = set()
    with httpx.Client(timeout=timeout, headers=headers, follow_redirects=False, trust_env=False) as client:
        for _hop in range(options.max_redirects + 1):
            check_host_allowed(current, options)
            seen.add(current)
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect:
                        target = urljoin(current, response.headers.get("location", ""))
                        if urlsplit(target).scheme not in ("http", "https"):
                            raise FetchError(f"{current!r} redirects to {target!r}, which is not an http(s) URL")
                        if target in seen:
                            raise FetchError(f"{url!r} redirects in a loop (back to {target!r})")
                        current = target
                        continue
                    _check_status(response, current)
                    mime, charset = _content_type(response.headers.get("content-type", ""))
                    if mime and mime not in HTML_TYPES:
                        raise FetchError(f"{current!r} is {mime}, not an HTML page; give the URL of a web article")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > options.max_bytes:
                        raise _too_big(current, options)
                    body = _read_limited(response, options, deadline, current)
                    status = response.status_code
                    if not mime and body.strip() and not _looks_like_html(body):
                        raise FetchError(f"{current!r} sends no content type and does not look like HTML")
            except httpx.TimeoutException:
                raise FetchError(f"{current!r} did not answer within {options.timeout_s:g} s", transient=True) from None
            except httpx.TransportError as exc:
                raise FetchError(f"could not reach {current!r}: {exc or type(exc).__name__}", transient=True) from None
            return _page(url, current, status, mime or "text/html", charset, body)
    raise FetchError(f"{url!r} redirects more than {options.max_redirects} times; give the final URL")


def _check_status(response: httpx.Response, url: str) -> None:
    code = response.status_code
    if code < 400:
        return
    reason = response.reason_phrase or ""
    if code == 429 or code >= 500:
        raise FetchError(f"{url!r} answered {code} {reason}; try again later", transient=True)
    hint = "check the URL" if code in (404, 410) else "the site refuses this request"
    raise FetchError(f"{url!r} answered {code} {reason}: {hint}")


def _read_limited(response: httpx.Response, options: FetchOptions, deadline: float, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    # iter_bytes decodes gzip/deflate, so the limit counts what a bomb would expand to.
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > options.max_bytes:
            raise _too_big(url, options)
        if time.monotonic() > deadline:
            raise FetchError(f"{url!r} took longer than {options.timeout_s:g} s to send the page", transient=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(url: str, options: FetchOptions) -> FetchError:
    return FetchError(
        f"{url!r} is larger than {options.max_bytes} bytes; raise fetch.max_bytes (PAGEREEL_FETCH__MAX_BYTES) "
        "if the page is really an article"
    )


def _resolve(host: str, url: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"the host of {url!r} cannot be resolved ({exc}); check the URL", transient=False) from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return _is_public(mapped)
        if address.teredo:
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


# --------------------------------------------------------------------------- files


def _fetch_file(url: str, options: FetchOptions) -> Page:
    if not options.allow_local_files:
        raise FetchError(f"{url!r} is a local file, and fetch.allow_local_files is off")
    parts = urlsplit(url)
    path = Path(unquote(parts.path)) if parts.scheme.lower() == "file" else Path(url)
    path = path.expanduser()
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise FetchError(f"{str(path)!r} is not a file")
        if size > options.max_bytes:
            raise _too_big(str(path), options)
        body = path.read_bytes()
    except FileNotFoundError:
        raise FetchError(f"{str(path)!r} does not exist; check the path") from None
    except PermissionError:
        raise FetchError(f"{str(path)!r} cannot be read (permission denied)") from None
    if path.suffix.lower() not in (".html", ".htm", ".xhtml", "") and not _looks_like_html(body):
        raise FetchError(f"{str(path)!r} is not an HTML file; give a saved web page")
    return _page(url, path.resolve().as_uri(), 200, "text/html", None, body)


# --------------------------------------------------------------------------- decoding


def _page(url: str, final_url: str, status: int, mime: str, charset: str | None, body: bytes) -> Page:
    if not body.strip():
        raise FetchError(f"{final_url!r} returned an empty page; there is nothing to narrate")
    head = body[:4096]
    if _is_binary(head):
        raise FetchError(f"{final_url!r} says it is HTML but sends binary data")
    html, encoding = _decode(body, charset)
    return Page(url=url, final_url=final_url, status=status, content_type=mime, encoding=encoding, html=html)


def _content_type(header: str) -> tuple[str, str | None]:
    mime, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return mime.strip().lower(), charset


def _known(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


def _decode(body: bytes, declared: str | None) -> tuple[str, str]:
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace"), name
    candidates = [_known(declared)]
    match = _META_CHARSET.search(body[:4096])
    candidates.append(_known(match.group(1).decode("ascii", "ignore")) if match else None)
    candidates.append("utf-8")
    for name in candidates:
        if name:
            try:
                return body.decode(name), name
            except UnicodeDecodeError:
                continue
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000]).best()
    name = best.encoding if best else "cp1252"
    return body.decode(name, errors="replace"), name


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))


def _is_binary(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    # Markup is text: more than 1% control bytes means an image, archive or executable.
    return len(head) - len(head.translate(None, _CONTROL)) > len(head) // 100


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")) or b"<html" in head
