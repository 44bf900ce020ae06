"""The guarded HTTP client: every byte pagereel reads from a network or a file it was pointed at.

Two kinds of server, two guards:

- **URLs from a page or a user** (pages, pictures): :func:`guarded_get`. Each hop's host must resolve
  to public addresses only (:func:`check_host_allowed`, unless ``fetch.allow_private_hosts``), the
  connection goes to the very address that was checked (no second DNS lookup to rebind), redirects
  are followed one hop at a time and each hop is checked again, up to ``fetch.max_redirects``,
  proxies from the environment are ignored, and bodies are inflated in bounded pieces
  (:func:`read_body`) so a compressed bomb never grows past ``fetch.max_bytes``.
- **Endpoints the operator configured** (an LLM or a speech API in ``pagereel.toml``):
  :func:`endpoint_client` and :func:`post_bounded`. Their host is trusted as configured, loopback and
  private addresses included (that is where such servers usually run), because the settings that
  name it come only from the machine's owner, never from a page or a deployment run's parameters.
  What stays on: no redirects are followed (a 3xx is an answer, not a new destination), proxies
  from the environment are ignored, and the answer is read to at most ``max_bytes``.

Local files (:func:`read_regular_file`) are read the same bounded way, refusing FIFOs and devices.
Every failure is a :class:`~tasks.errors.FetchError` whose message says what to do.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
import ssl
import stat
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

from tasks.errors import FetchError
from tasks.models import FetchOptions

T = TypeVar("T")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PRIVATE_HINT = (
    "set fetch.allow_private_hosts = true (or PAGEREEL_FETCH__ALLOW_PRIVATE_HOSTS=1) to fetch from it"
)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Most bytes inflated or read in one step; the byte limit is checked after each.
_PIECE = 65536
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([^"';\s]+)""", re.IGNORECASE)


# --------------------------------------------------------------------------- the address guard


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
        kind = non_public_kind(address)
        if kind:
            where = host if host == str(address) else f"{host} ({address})"
            raise FetchError(f"refusing to fetch {url}: {where} is {kind} address; {PRIVATE_HINT}")
    return addresses


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


def non_public_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            kind = non_public_kind(embedded)
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


# --------------------------------------------------------------------------- http(s) of the web


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The verifying TLS context every fetch shares: loading the CA bundle costs 50-200 ms, once per process."""
    return httpx.create_ssl_context(trust_env=False)


def guarded_get(target: str, options: FetchOptions, read: Callable[[httpx.Response, float], T], *,
                accept: str = "*/*") -> T:
    """GET ``target`` under the address guard, redirect limit and deadline; ``read`` gets the final response.

    ``read(response, deadline)`` runs while the response streams, so it can enforce its own byte
    limit and content checks (:func:`read_body` is the bounded reader); every transport failure
    comes out as a :class:`FetchError`.
    """
    deadline = time.monotonic() + options.timeout_s
    chain = [target]
    headers = {"User-Agent": options.user_agent, "Accept": accept, "Accept-Encoding": "gzip, deflate"}
    # trust_env=False: a proxy from the environment would bypass the address check above.
    with httpx.Client(headers=headers, follow_redirects=False, trust_env=False, verify=_tls_context()) as client:
        while True:
            current = chain[-1]
            addresses = check_host_allowed(current, options)
            try:
                with _open(client, current, addresses, _remaining(deadline, current, options)) as response:
                    location = _redirect_location(response, current)
                    if location is None:
                        return read(response, deadline)
            except httpx.TimeoutException as exc:
                raise timed_out(current, options) from exc
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
        raise timed_out(url, options)
    return httpx.Timeout(left)


def timed_out(url: str, options: FetchOptions) -> FetchError:
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
            raise timed_out(final, options)
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


def status_error(url: str, status: int, reason: str) -> FetchError:
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


def parse_content_type(header: str) -> tuple[str, str | None]:
    mime = header.split(";", 1)[0].strip().lower()
    match = _HEADER_CHARSET.search(header)
    return mime, match.group(1) if match else None


# --------------------------------------------------------------------------- local files


def read_local_file(target: str, options: FetchOptions, locate: Callable[[], Path],
                    too_big: Callable[[str], FetchError], *, missing: str, where: str = "") -> tuple[Path, bytes]:
    """The bytes of the local file ``target`` names, if local files are allowed: ``(path, data)``.

    ``locate()`` gives the path once reading is known to be allowed (it may refuse, too);
    ``missing`` is the message for a file that does not exist, with ``{path}`` in it; ``where``
    follows the path in other messages (the host, for a worker's file).
    """
    if not options.allow_local_files:
        raise FetchError(
            f"reading local files is turned off ({target}); set fetch.allow_local_files = true "
            "(or PAGEREEL_FETCH__ALLOW_LOCAL_FILES=1) or give an http(s) URL"
        )
    path = locate()
    try:
        return path, read_regular_file(path, options, lambda: too_big(str(path)))
    except FileNotFoundError as exc:
        raise FetchError(missing.format(path=path)) from exc
    except OSError as exc:
        raise FetchError(f"cannot read {path}{where}: {exc.strerror or exc}") from exc


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


def local_path(target: str) -> Path:
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
        return local_path(target)
    except FetchError:
        return None


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
        return Path(os.path.realpath(local_path(page_url))).parent
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
    path = local_path(url)
    if ".." in path.parts:
        raise FetchError(f"refusing the local picture {shown}: '..' is not followed out of the page's folder")
    root = Path(os.path.realpath(folder))
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root):
        raise FetchError(f"refusing the local picture {shown}: it lies outside the page's folder {root}")
    return real


# --------------------------------------------------------------------------- endpoints the operator configured


def endpoint_client(timeout_s: float) -> httpx.Client:
    """A client for an endpoint named in the settings: no redirects, no proxies from the environment.

    The host is not checked against private addresses (see the module's notes): an LLM or speech
    server on 127.0.0.1 or a private network is the usual case, and only the operator names it.
    """
    return httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False)


@dataclass(frozen=True)
class EndpointReply:
    """An endpoint's answer, read whole but never past its byte limit."""

    status_code: int
    content: bytes
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        import json

        return json.loads(self.content)


class EndpointTooBig(FetchError):
    """An endpoint answered with more than the caller's byte limit."""


def post_bounded(client: httpx.Client, url: str, *, json: Any, headers: dict[str, str],
                 max_bytes: int) -> EndpointReply:
    """POST ``json`` to ``url`` and read the answer, inflated in bounded pieces, up to ``max_bytes``.

    Transport errors come out as httpx's own (the caller decides what is worth a retry); an answer
    larger than ``max_bytes`` raises :class:`EndpointTooBig` before more than one piece past it is held.
    """
    return _exchange_bounded(client, "POST", url, headers, max_bytes, json=json)


def get_bounded(client: httpx.Client, url: str, *, max_bytes: int, headers: dict[str, str] | None = None
                ) -> EndpointReply:
    """GET ``url`` from an operator's endpoint, read as :func:`post_bounded` reads."""
    return _exchange_bounded(client, "GET", url, headers or {}, max_bytes)


def _exchange_bounded(client: httpx.Client, method: str, url: str, headers: dict[str, str], max_bytes: int,
                      **request: Any) -> EndpointReply:
    with client.stream(method, url, headers={**headers, "Accept-Encoding": "gzip, deflate"}, **request) as response:
        inflate = _inflater(response.headers.get("content-encoding", ""), url)
        body = bytearray()
        for raw in response.iter_raw():
            for piece in inflate(raw):
                body += piece
                if len(body) > max_bytes:
                    raise EndpointTooBig(f"{url} answered with more than {max_bytes:,} bytes")
        return EndpointReply(response.status_code, bytes(body), response.headers)
