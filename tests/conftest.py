"""Shared fixtures: a real HTTP server on loopback serving the test pages (tests/pages) and bad responses."""

from __future__ import annotations

import functools
import gzip
import html
import os
import random
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.models import FetchOptions

if TYPE_CHECKING:
    import redis

    from tests.deployed import Deployed
    from tests.reliability.helpers import PrivateRedis

ROOT = Path(__file__).resolve().parents[1]
#: The project's own test pages: every core behaviour is tested on these.
OWN_PAGES_DIR = ROOT / "tests" / "pages"
OWN_PAGES: list[str] = sorted(p.name for p in OWN_PAGES_DIR.glob("*.html"))
#: An extra corpus of saved real pages, beside the repository on development machines and CI only.
PAGES_DIR = ROOT.parent / "shared" / "samples" / "pages"
SAMPLE_PAGES: list[str] = sorted(p.name for p in PAGES_DIR.glob("*.html"))
#: The page that redirects and flaky routes end on.
ARTICLE_PAGE = "harbour-lights.html"
#: Own pages in English that many other tests already render: their whole-video runs are in ``make soak``.
WELL_TRODDEN = frozenset({"garden-sensor.html", "harbour-lights.html", "short-note.html", "sourdough-steps.html"})
CORPUS_MISSING = f"extra corpus of saved real pages not present ({PAGES_DIR}): its tests are skipped"


def page_file(name: str) -> Path | None:
    """The file served at ``/pages/<name>``: the project's own pages first, then the extra corpus."""
    for folder, names in ((OWN_PAGES_DIR, OWN_PAGES), (PAGES_DIR, SAMPLE_PAGES)):
        if name in names:
            return folder / name
    return None


def corpus_params() -> list[object]:
    """Parameters over the extra corpus, or one skipped parameter saying it is not there."""
    if SAMPLE_PAGES:
        return list(SAMPLE_PAGES)
    return [pytest.param("absent", marks=pytest.mark.skip(reason=CORPUS_MISSING))]


def own_page_params() -> list[object]:
    """The own pages as parameters, the well-trodden English ones marked ``slow``."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in WELL_TRODDEN else n for n in OWN_PAGES]


def slow_corpus_params() -> list[object]:
    """:func:`corpus_params` marked ``slow``: a whole video per saved page belongs to ``make soak``."""
    return [p if not isinstance(p, str) else pytest.param(p, marks=pytest.mark.slow) for p in corpus_params()]


def pytest_report_header(config: pytest.Config) -> str | None:
    return f"extra corpus: {len(SAMPLE_PAGES)} saved real pages in {PAGES_DIR}" if SAMPLE_PAGES else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SAMPLE_PAGES:  # at the end, where it is seen even with -q
        terminalreporter.write_line(CORPUS_MISSING, yellow=True)
#: Longest a deliberately slow route keeps a connection open, should a client never hang up.
SLOW_ROUTE_LIMIT_S = 30.0

_LATIN1_PAGE = (
    "<html><head><meta http-equiv='Content-Type' content='text/html; charset=iso-8859-1'>"
    "<title>Caf\u00e9 cr\u00e8me</title></head><body><p>Cr\u00e8me br\u00fbl\u00e9e \u00e0 la carte, "
    "fa\u00e7ade na\u00efve, d\u00e9j\u00e0 vu.</p></body></html>"
)
_CYRILLIC_PAGE = (
    "<html><head><title>\u041d\u043e\u0432\u043e\u0441\u0442\u0438</title></head><body><p>"
    "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445 "
    "\u043c\u044f\u0433\u043a\u0438\u0445 \u0444\u0440\u0430\u043d\u0446\u0443\u0437\u0441\u043a\u0438\u0445 "
    "\u0431\u0443\u043b\u043e\u043a, \u0434\u0430 \u0432\u044b\u043f\u0435\u0439 \u0447\u0430\u044e. "
    "\u041c\u043e\u0441\u043a\u0432\u0430 \u2014 \u0441\u0442\u043e\u043b\u0438\u0446\u0430 "
    "\u0420\u043e\u0441\u0441\u0438\u0438.</p></body></html>"
)
# /charset/<variant>: (body bytes, Content-Type header).
_CHARSET_VARIANTS: dict[str, tuple[bytes, str]] = {
    "latin1": (_LATIN1_PAGE.encode("latin-1"), "text/html"),  # charset only in the <meta>
    "cp1252-quotes": (_LATIN1_PAGE.replace("d\u00e9j\u00e0 vu", "\u201cd\u00e9j\u00e0 vu\u201d").encode("cp1252"),
                      "text/html; charset=ISO-8859-1"),  # browsers read latin-1 as windows-1252
    "header": (_CYRILLIC_PAGE.encode("cp1251"), "text/html; charset=windows-1251"),
    "utf16-bom": (_CYRILLIC_PAGE.encode("utf-16"), "text/html"),
    "unknown": (_CYRILLIC_PAGE.encode("utf-8"), 'text/html; charset="x-no-such-charset"'),
    "undeclared": (_CYRILLIC_PAGE.encode("cp1251"), "text/html"),
}


def run_python(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (dedented) in a fresh interpreter at the repository root, with ``env`` added."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=240)


@functools.cache
def _page_of(size: int) -> bytes:
    """An HTML page of exactly ``size`` bytes (at least the markup around it)."""
    head, tail = b"<!doctype html><html><body><p>", b"</p></body></html>"
    return head + b"a" * max(0, size - len(head) - len(tail)) + tail


@functools.cache
def _gzip_bomb() -> bytes:
    """About 50 KB that inflates to 50 MB of HTML."""
    return gzip.compress(_page_of(50_000_000), compresslevel=9)


@functools.cache
def _binary_noise() -> bytes:
    """200 KB of incompressible bytes, as a misconfigured server sends a binary under text/html."""
    return random.Random(7).randbytes(200_000)


@functools.cache
def _nested_page(depth: int) -> bytes:
    """An article buried under ``depth`` nested <div>s."""
    words = " ".join(["The river keeps its course through the valley."] * 20)
    return (b"<html><body>" + b"<div>" * depth + f"<p>{words}</p>".encode() + b"</div>" * depth
            + b"</body></html>")


@functools.cache
def _many_images_page(n: int) -> bytes:
    """A real article with ``n`` distinct <img> tags between its paragraphs (pictures that do not exist)."""
    paragraph = "<p>" + " ".join(["Goats climb the dam wall to lick the salt from its stones."] * 4) + "</p>"
    images = "".join(f'<figure><img src="/img/{i}.jpg" alt="photo {i}"></figure>' for i in range(n))
    body = f"<article><h1>Ten thousand pictures</h1>{paragraph * 3}{images}{paragraph * 3}</article>"
    return f"<html><head><title>Pictures</title></head><body>{body}</body></html>".encode()


@pytest.fixture(scope="session", autouse=True)
def _quiet_prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test session gets its own Prefect home, so runs never share state with a developer's."""
    home = tmp_path_factory.mktemp("prefect-home")
    # A loaded 2-core machine can take longer than Prefect's default 20 s to start a temporary server.
    env = {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass  # tests read results, not access logs

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.server.lock:
            self.server.hits[parts.path] += 1
        try:
            self._route(parts.path, query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading: the point of several tests

    # ------------------------------------------------------------------ helpers

    def _send(self, code: int, body: bytes, ctype: str | None = "text/html; charset=utf-8", *,
              length: bool = True, headers: dict[str, str] | None = None) -> None:
        """Answer once and close; without ``length`` the body goes out chunked."""
        self.send_response(code)
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        if length:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(body), 65536):
            self._chunk(body[i : i + 65536])
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _slow(self, every_s: float, drip: bytes | None) -> None:
        """Send headers, then wait (or drip bytes) until the client leaves or the server stops."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Connection", "close")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk(b"<html><body>")
        ends = time.monotonic() + SLOW_ROUTE_LIMIT_S
        while not self.server.stop.wait(every_s) and time.monotonic() < ends:
            if drip:
                self._chunk(drip)

    def _endless(self) -> None:
        """A chunked body that never ends: 64 KB chunks as fast as the client reads them."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Connection", "close")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"<p>" + b"endless " * 8190 + b"</p>"
        ends = time.monotonic() + SLOW_ROUTE_LIMIT_S
        while not self.server.stop.is_set() and time.monotonic() < ends:
            self._chunk(chunk)

    def _redirect(self, location: str, code: int = 302) -> None:
        self._send(code, b"", headers={"Location": location})

    # ------------------------------------------------------------------ routes

    def _route(self, path: str, q: dict[str, str]) -> None:
        exact = _EXACT_ROUTES.get(path)
        if exact is not None:
            return exact(self, q)
        for prefix, route in _PREFIX_ROUTES:
            if path.startswith(prefix):
                return route(self, path.removeprefix(prefix), q)
        return self._send(404, b"<html><body>no such route</body></html>")

    def _page(self, name: str, q: dict[str, str]) -> None:
        page = page_file(name)
        if page is not None:
            # No charset in the header: the fetcher has to find it in the page, as on many sites.
            return self._send(200, page.read_bytes(), "text/html")
        return self._send(404, b"<html><body>no such page</body></html>")

    def _status(self, code: str, q: dict[str, str]) -> None:
        return self._send(int(code), f"<html><body><h1>status {int(code)}</h1></body></html>".encode())

    def _redirects(self, count: str, q: dict[str, str]) -> None:
        n = int(count)
        if n <= 1:
            return self._redirect(f"/pages/{ARTICLE_PAGE}")
        # Alternate relative and absolute locations, as real sites mix both.
        return self._redirect(f"{n - 1}" if n % 2 else f"{self._base()}/redirect/{n - 1}")

    def _flaky(self, rest: str, q: dict[str, str]) -> None:
        if self.server.hits["/flaky/" + rest] <= int(q.get("fail", "2")):
            return self._send(int(q.get("status", "503")), b"<html><body>busy, try later</body></html>")
        return self._send(200, (OWN_PAGES_DIR / ARTICLE_PAGE).read_bytes())

    def _charset(self, name: str, q: dict[str, str]) -> None:
        variant = _CHARSET_VARIANTS.get(name)
        if variant:
            return self._send(200, variant[0], variant[1])
        return self._send(404, b"<html><body>no such route</body></html>")

    def _headers(self, q: dict[str, str]) -> None:
        agent = html.escape(self.headers.get("User-Agent", ""))
        return self._send(200, f"<html><body><p id='ua'>{agent}</p></body></html>".encode())

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"


# Routes of the test server: an exact path, or a prefix whose handler gets the rest of the path.
_EXACT_ROUTES: dict[str, Callable[[_Handler, dict[str, str]], None]] = {
    "/pdf": lambda h, q: h._send(200, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
                                 "application/pdf"),
    "/empty": lambda h, q: h._send(200, b""),
    "/blank": lambda h, q: h._send(200, b"<html><head><title>x</title></head><body><nav>Home</nav></body></html>"),
    "/big": lambda h, q: h._send(200, _page_of(int(q.get("bytes", "1000000"))), length=q.get("length", "1") == "1"),
    "/gzip": lambda h, q: h._send(200, gzip.compress(_page_of(int(q.get("bytes", "10000")))),
                                  headers={"Content-Encoding": "gzip"}, length=q.get("length", "1") == "1"),
    "/gzip-bomb": lambda h, q: h._send(200, _gzip_bomb(), headers={"Content-Encoding": "gzip"}),
    "/hang": lambda h, q: h._slow(0.05, None),
    "/drip": lambda h, q: h._slow(float(q.get("every", "0.1")), q.get("piece", "<p>a</p>").encode()),
    "/endless": lambda h, q: h._endless(),
    "/binary-html": lambda h, q: h._send(200, _binary_noise(), "text/html; charset=utf-8"),
    "/nested": lambda h, q: h._send(200, _nested_page(int(q.get("depth", "100000")))),
    "/many-images": lambda h, q: h._send(200, _many_images_page(int(q.get("n", "10000")))),
    "/redirect-loop": lambda h, q: h._redirect("/redirect-loop-b"),
    "/redirect-loop-b": lambda h, q: h._redirect("/redirect-loop", 301),
    "/redirect-private": lambda h, q: h._redirect("http://169.254.169.254/latest/meta-data/"),
    "/redirect-to": lambda h, q: h._redirect(q["location"], int(q.get("status", "302"))),
    "/nul": lambda h, q: h._send(200, b"<html>" + bytes(range(256)) * 64, "text/html"),
    "/no-type": lambda h, q: h._send(200, b"\x89PNG\r\n\x1a\n" + b"\x01" * 100, None),
    "/sniff": lambda h, q: h._send(200, _page_of(2000), None),
    "/headers": _Handler._headers,
}
_PREFIX_ROUTES: list[tuple[str, Callable[[_Handler, str, dict[str, str]], None]]] = [
    ("/pages/", _Handler._page),
    ("/status/", _Handler._status),
    ("/redirect/", _Handler._redirects),
    ("/flaky/", _Handler._flaky),
    ("/charset/", _Handler._charset),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping never blocks shutdown
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, a reverse DNS lookup that may leave the machine.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # clients that hang up early (size limits, timeouts) are the point of several tests
        super().handle_error(request, client_address)  # a bug in a route: show it


@dataclass
class HttpServer:
    """A running loopback server: ``url('/pages/x.html')`` gives a full URL."""

    base_url: str
    server: _Server

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def hits(self, path: str) -> int:
        """How many requests ``path`` (without its query) has had."""
        with self.server.lock:
            return self.server.hits[path]


@pytest.fixture(scope="session")
def http_server() -> Iterator[HttpServer]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="test-http-server", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield HttpServer(f"http://{host}:{port}", server)
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """The session's own redis-server on a free port, started once; never the machine's own Redis server.

    Where redis-server is not installed, every test that needs it is skipped with that one line.
    """
    from tests.reliability.helpers import PrivateRedis

    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def empty_redis(redis_server: PrivateRedis) -> Iterator[redis.Redis]:
    """A client of database 0 of the session's redis-server, empty when the test starts and when it ends."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_server.port, db=0)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def redis_url(client: redis.Redis) -> str:
    """The redis:// URL of the database ``client`` talks to."""
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


@pytest.fixture
def fetch_options() -> FetchOptions:
    return FetchOptions(allow_private_hosts=True, timeout_s=2, retry_base_s=0)


@pytest.fixture(scope="session")
def pages_dir() -> Path:
    """The project's own test pages."""
    return OWN_PAGES_DIR


@pytest.fixture(scope="session")
def sample_pages() -> list[str]:
    """Pages served at ``/pages/<name>`` for tests that want many: the project's own."""
    return list(OWN_PAGES)


@pytest.fixture(scope="session")
def deployed(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """prefect.yaml's deployments, deployed once per session, and one worker of their pool (tests/deployed.py)."""
    from tests.deployed import deployed as deploy

    with deploy(prefect_api, tmp_path_factory.mktemp("worker")) as running:
        yield running
