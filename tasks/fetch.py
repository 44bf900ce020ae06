"""Fetch a web page (or a saved local file) as decoded HTML, refusing what cannot become a video.

Every failure is a ``FetchError`` whose ``transient`` flag says whether a retry may help
(timeouts, 429, 5xx, dropped connections) and whose message says what to do about it.
"""

from __future__ import annotations

import codecs
import ipaddress
import mimetypes
import os
import re
import socket
import ssl
import stat
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

from tasks.errors import FetchError
from tasks.models import FetchOptions, Page

T = TypeVar("T")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
SCHEMES_HINT = "pagereel fetches http:// and https:// URLs, file:// URLs and local paths"
PRIVATE_HINT = (
    "set fetch.allow_private_hosts = true (or PAGEREEL_FETCH__ALLOW_PRIVATE_HOSTS=1) to fetch from it"
)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
#: Most bytes inflated or read in one step; the byte limit is checked after each.
_PIECE = 65536
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([^"';\s]+)""", re.IGNORECASE)
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


def check_host_allowed(url: str, options: FetchOptions | None = None) -> list[IPAddress] | None:
    """Raise FetchError unless every address the URL's host resolves to is a public one.

    Returns the addresses checked (the first is the one to connect to), or None when private
    hosts are allowed and nothing was looked up.
    """
    options = options or FetchOptions()
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise FetchError(f"{url} has no host name: check the URL")
    if options.allow_private_hosts:
        return None
    addresses = _resolve(host, parts.scheme)
    for address in addresses:
        kind = _non_public_kind(address)
        if kind:
            where = host if host == str(address) else f"{host} ({address})"
            raise FetchError(f"refusing to fetch {url}: {where} is {kind} address; {PRIVATE_HINT}")
    return addresses


# --------------------------------------------------------------------------- address checks


def _resolve(host: str, scheme: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]  # a literal needs no lookup
    except ValueError:
        pass
    port = 443 if scheme == "https" else 80
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _unresolved(host, exc) from None
    except UnicodeError as exc:
        raise FetchError(f"{host} is not a valid host name: check the URL") from exc
    # In the resolver's order of preference, each once.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))


def _non_public_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            kind = _non_public_kind(embedded)
            return f"{kind} (IPv4 inside IPv6)" if kind else None
    # Order matters: 127/8, 169.254/16 and 0/8 are also in Python's "private" list.
    checks = (
        ("is_unspecified", "an unspecified"),
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local (cloud metadata lives here)"),
        ("is_multicast", "a multicast"),
        ("is_private", "a private"),
        ("is_reserved", "a reserved"),
    )
    for attribute, kind in checks:
        if getattr(address, attribute):
            return kind
    return None if address.is_global else "a non-public"


# --------------------------------------------------------------------------- http


def _fetch_http(url: str, target: str, options: FetchOptions) -> Page:
    return guarded_get(target, options, lambda response, deadline: _read_response(url, response, deadline, options))


def guarded_get(target: str, options: FetchOptions, read: Callable[[httpx.Response, float], T]) -> T:
    """GET ``target`` under the address guard, redirect limit and deadline; ``read`` gets the final response.

    ``read(response, deadline)`` runs while the response streams, so it can enforce its own byte
    limit and content checks; every transport failure comes out as a :class:`FetchError`.
    """
    deadline = time.monotonic() + options.timeout_s
    chain = [target]
    headers = {"User-Agent": options.user_agent, "Accept": _ACCEPT, "Accept-Encoding": "gzip, deflate"}
    # trust_env=False: a proxy from the environment would bypass the address check above.
    with httpx.Client(headers=headers, follow_redirects=False, trust_env=False) as client:
        while True:
            current = chain[-1]
            addresses = check_host_allowed(current, options)
            try:
                with _open(client, current, addresses, _remaining(deadline, current, options)) as response:
                    location = _redirect_location(response, current)
                    if location is None:
                        return read(response, deadline)
            except httpx.TimeoutException as exc:
                raise _timed_out(current, options) from exc
            except httpx.DecodingError as exc:
                raise FetchError(f"{current} sent a body that cannot be decompressed: {exc}") from exc
            except httpx.InvalidURL as exc:
                raise FetchError(f"{current} is not a valid URL: {exc}") from exc
            except httpx.TransportError as exc:
                lookup = _lookup_error(exc)
                if lookup is not None:
                    raise _unresolved(httpx.URL(current).host, lookup) from None
                if _is_tls_error(exc):
                    raise FetchError(f"TLS handshake with {current} failed: {exc}; check the URL") from exc
                raise FetchError(f"cannot connect to {current}: {exc or type(exc).__name__}; try again later",
                                 transient=not isinstance(exc, httpx.UnsupportedProtocol)) from exc
            _follow(chain, location, options)


def _open(client: httpx.Client, url: str, addresses: list[IPAddress] | None,
          timeout: httpx.Timeout) -> AbstractContextManager[httpx.Response]:
    """Stream a GET of ``url``, connecting to ``addresses[0]`` when the guard has checked the host.

    Connecting to the very address that was checked closes DNS rebinding: a name that resolves to a
    public address for the check and to a private one a moment later never gets a second lookup.
    The Host header and the TLS server name (and so certificate checking) stay the URL's host.
    """
    target = httpx.URL(url)
    if not addresses or target.host == str(addresses[0]):
        return client.stream("GET", target, timeout=timeout)
    pinned = target.copy_with(host=str(addresses[0]))
    host_header = target.host if target.port is None else f"{target.host}:{target.port}"
    request = client.build_request("GET", pinned, headers={"Host": host_header}, timeout=timeout,
                                   extensions={"sni_hostname": target.host})
    return _reported_as(client, request, target)


@contextmanager
def _reported_as(client: httpx.Client, request: httpx.Request, url: httpx.URL) -> Iterator[httpx.Response]:
    response = client.send(request, stream=True)
    try:
        # Messages, redirects and the page's final URL name the host the user gave, not its address.
        response.request.url = url
        yield response
    finally:
        response.close()


def _remaining(deadline: float, url: str, options: FetchOptions) -> httpx.Timeout:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timed_out(url, options)
    return httpx.Timeout(left)


def _timed_out(url: str, options: FetchOptions) -> FetchError:
    return FetchError(
        f"timed out after {options.timeout_s:g} s fetching {url}; try again later or raise fetch.timeout_s",
        transient=True,
    )


def _redirect_location(response: httpx.Response, current: str) -> str | None:
    if response.status_code not in _REDIRECT_STATUSES:
        return None
    location = response.headers.get("location", "").strip()
    if not location:
        raise FetchError(f"{current} answered {response.status_code} without saying where to go")
    return str(httpx.URL(current).join(location))


def _follow(chain: list[str], location: str, options: FetchOptions) -> None:
    scheme = urlsplit(location).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"{chain[-1]} redirects to {location}; only http:// and https:// redirects are followed")
    if location in chain:
        raise FetchError(f"redirect loop: {' -> '.join([*chain, location])}; check the URL")
    if len(chain) > options.max_redirects:
        raise FetchError(
            f"{chain[0]} redirects more than {options.max_redirects} times (fetch.max_redirects); "
            "give the final URL or raise fetch.max_redirects"
        )
    chain.append(location)


def _read_response(url: str, response: httpx.Response, deadline: float, options: FetchOptions) -> Page:
    final = str(response.url)
    status = response.status_code
    if not 200 <= status < 300:
        raise _status_error(final, status, response.reason_phrase)
    mime, charset = _parse_content_type(response.headers.get("content-type", ""))
    if mime and mime not in HTML_TYPES:
        raise FetchError(f"{final} is {mime}, not an HTML page; give the URL of a web page")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > options.max_bytes:
        raise _too_big(final, options)
    body = read_body(response, deadline, options, lambda: _too_big(final, options))
    return _make_page(url, final, status, mime or None, charset, body)


def read_body(response: httpx.Response, deadline: float, options: FetchOptions,
              too_big: Callable[[], FetchError]) -> bytes:
    """The decompressed body, never holding more than ``options.max_bytes`` plus one piece, before ``deadline``.

    httpx would inflate each received chunk whole: 64 KB of a gzip bomb becomes 64 MB in one call.
    Here compressed data is inflated in bounded pieces and counted as it comes.
    """
    final = str(response.url)
    inflate = _inflater(response.headers.get("content-encoding", ""), final)
    body = bytearray()
    for raw in response.iter_raw():  # as received: a chunk size would wait for that many bytes
        for piece in inflate(raw):
            body += piece
            if len(body) > options.max_bytes:
                raise too_big()
        if time.monotonic() > deadline:
            raise _timed_out(final, options)
    return bytes(body)


def _inflater(header: str, url: str) -> Callable[[bytes], Iterator[bytes]]:
    codings = [c.strip().lower() for c in header.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return lambda raw: iter((raw,))
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(f"{url} sent its body as {header.strip()!r}, which pagereel does not decompress; "
                         "it asks for gzip or deflate only")
    wbits = 16 + zlib.MAX_WBITS if codings[0] in ("gzip", "x-gzip") else zlib.MAX_WBITS
    state = {"decoder": zlib.decompressobj(wbits), "first": True}

    def inflate(raw: bytes) -> Iterator[bytes]:
        pending = raw
        while pending:
            decoder = state["decoder"]
            try:
                piece = decoder.decompress(pending, _PIECE)
            except zlib.error as exc:
                if state["first"] and wbits == zlib.MAX_WBITS:  # "deflate" sent raw, without the zlib header
                    state["decoder"] = zlib.decompressobj(-zlib.MAX_WBITS)
                    state["first"] = False
                    continue
                raise FetchError(f"{url} sent a body that cannot be decompressed: {exc}") from exc
            state["first"] = False
            if piece:
                yield piece
            if decoder.eof:  # a gzip member ended: more may follow
                pending = decoder.unused_data
                if pending:
                    state["decoder"] = zlib.decompressobj(wbits)
            else:
                pending = decoder.unconsumed_tail

    return inflate


def _status_error(url: str, status: int, reason: str) -> FetchError:
    reason = reason or _reason(status)
    if _transient_status(status):
        return FetchError(f"{status} {reason} from {url}; the server is busy or failing, try again later",
                          transient=True)
    if status in (401, 403, 451):
        hint = "the site refuses pagereel; save the page from a browser and pass the file instead"
    elif status in (404, 410):
        hint = "check the URL"
    else:
        hint = "the server refused the request; check the URL"
    return FetchError(f"{status} {reason}: {hint} ({url})")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unexpected status"


def _transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def _in_chain(exc: BaseException, kind: type[BaseException]) -> Any:
    """The first exception of ``kind`` in ``exc``'s cause/context chain, or None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _is_tls_error(exc: BaseException) -> bool:
    return _in_chain(exc, ssl.SSLError) is not None


def _lookup_error(exc: BaseException) -> socket.gaierror | None:
    return _in_chain(exc, socket.gaierror)


def _unresolved(host: str, exc: socket.gaierror) -> FetchError:
    # Permanent even for EAI_AGAIN: a name that did not resolve now will not within this run's retry
    # delays, and retrying it held every scene's render back by seconds per picture.
    return FetchError(f"cannot resolve host {host}: {exc.strerror or exc}; check the URL")


def _parse_content_type(header: str) -> tuple[str, str | None]:
    mime = header.split(";", 1)[0].strip().lower()
    match = _HEADER_CHARSET.search(header)
    return mime, match.group(1) if match else None


def _too_big(url: str, options: FetchOptions) -> FetchError:
    return FetchError(
        f"{url} is larger than {options.max_bytes:,} bytes; raise fetch.max_bytes to accept bigger pages"
    )


# --------------------------------------------------------------------------- local files


def _read_local(url: str, target: str, options: FetchOptions) -> Page:
    if not options.allow_local_files:
        raise FetchError(
            f"reading local files is turned off ({target}); set fetch.allow_local_files = true "
            "(or PAGEREEL_FETCH__ALLOW_LOCAL_FILES=1) or give an http(s) URL"
        )
    path = _local_path(target)
    try:
        data = read_regular_file(path, options, lambda: _too_big(str(path), options))
    except FileNotFoundError as exc:
        raise FetchError(f"no such file: {path}; for a web page give the full URL with https://") from exc
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}") from exc
    guessed = mimetypes.guess_type(path.name)[0]
    mime = guessed if guessed in HTML_TYPES else None
    if mime is None and data.strip() and not _looks_like_html(data):
        raise FetchError(f"{path} is {guessed or 'not recognised'}, not an HTML page; give a saved web page")
    return _make_page(url, path.resolve().as_uri(), 200, mime, None, data)


def read_regular_file(path: Path, options: FetchOptions, too_big: Callable[[], FetchError]) -> bytes:
    """The bytes of the regular file at ``path``, at most ``options.max_bytes``, within ``options.timeout_s``.

    A FIFO, a device or a socket would block ``open()`` or ``read()`` for as long as its writer
    likes (``/dev/stdin``, a named pipe); they are refused before opening. The file is opened
    without blocking and checked again once open, so one swapped in meanwhile is refused too.
    Raises FetchError, or OSError (FileNotFoundError included) for the caller to word.
    """
    deadline = time.monotonic() + options.timeout_s
    before = os.stat(path)
    _require_regular(path, before.st_mode)
    if before.st_size > options.max_bytes:
        raise too_big()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        after = os.fstat(fd)
        _require_regular(path, after.st_mode)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise FetchError(f"{path} changed while it was being opened; try again")
        body = bytearray()
        while len(body) <= options.max_bytes:
            if time.monotonic() > deadline:
                raise FetchError(f"timed out after {options.timeout_s:g} s reading {path}; raise fetch.timeout_s",
                                 transient=True)
            piece = os.read(fd, min(_PIECE, options.max_bytes + 1 - len(body)))
            if not piece:
                break
            body += piece
    finally:
        os.close(fd)
    if len(body) > options.max_bytes:
        raise too_big()
    return bytes(body)


def _require_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    raise FetchError(f"{path} is {kind}, not a regular file; pagereel reads only regular files")


def _local_path(target: str) -> Path:
    parts = urlsplit(target)
    if parts.scheme.lower() != "file":
        return Path(target).expanduser()
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"{target} names another machine; file:// URLs must name a local file")
    return Path(url2pathname(parts.path))


def local_page_path(url: str) -> Path | None:
    """The path a local page ``url`` (file:// or a path) names; None for an http(s) or other URL."""
    target = url.strip()
    scheme = urlsplit(target).scheme.lower()
    if scheme and scheme != "file" and not (os.name == "nt" and len(scheme) == 1):
        return None
    try:
        return _local_path(target)
    except FetchError:
        return None


def check_local_page(url: str) -> None:
    """Refuse a local page that is not there, before any server or worker starts for it."""
    path = local_page_path(url)
    if path is not None and not path.exists():
        raise FetchError(f"no such file: {path}; for a web page give the full URL with https://")


def picture_folder(page_url: str | None) -> Path | None:
    """The only folder a page's local pictures may come from: a local page's own (symlinks resolved).

    None for a page fetched over http(s), or none at all: a web page never gets this machine's files.
    """
    if not page_url:
        return None
    scheme = urlsplit(page_url).scheme.lower()
    if scheme != "file" and not (os.name == "nt" and len(scheme) == 1) and scheme:
        return None
    try:
        return Path(os.path.realpath(_local_path(page_url))).parent
    except (FetchError, OSError, ValueError):
        return None


def local_picture_path(url: str, folder: str | Path | None) -> Path:
    """Where the local picture ``url`` lies, if a page whose pictures live in ``folder`` may show it.

    Raises FetchError for a web page's local picture (``folder`` None), a ``file:`` URL with a query
    or fragment (``file:///dev/stdin?x.png`` only looks like a picture), ``..`` in the path, and a
    path outside ``folder`` once symlinks are resolved. The file itself is checked when it is read.
    """
    shown = url if len(url) <= 200 else url[:200] + "..."
    if folder is None:
        raise FetchError(f"refusing the local picture {shown}: pictures on this machine are shown only for a "
                         "local page, from that page's own folder")
    parts = urlsplit(url)
    if parts.scheme.lower() == "file" and (parts.query or parts.fragment or "?" in url or "#" in url):
        raise FetchError(f"refusing the local picture {shown}: a file:// picture has no query or fragment")
    path = _local_path(url)
    if ".." in path.parts:
        raise FetchError(f"refusing the local picture {shown}: '..' is not followed out of the page's folder")
    root = Path(os.path.realpath(folder))
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root):
        raise FetchError(f"refusing the local picture {shown}: it lies outside the page's folder {root}")
    return real


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
