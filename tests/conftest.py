"""Shared fixtures: a real HTTP server on loopback serving the saved sample pages and bad responses."""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.models import FetchOptions

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT.parent / "shared" / "samples" / "pages"
SAMPLE_PAGES = sorted(p.name for p in PAGES_DIR.glob("*.html"))


@pytest.fixture(scope="session", autouse=True)
def _quiet_prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test session gets its own Prefect home, so runs never share state with a developer's."""
    home = tmp_path_factory.mktemp("prefect-home")
    old = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK")}
    os.environ.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence per-request logging
        pass

    def _send(self, code: int, body: bytes, ctype: str = "text/html; charset=utf-8", *, length: bool = True,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not length:
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.server.hits[path] += 1
        try:
            self._route(path, query)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route(self, path: str, q: dict[str, str]) -> None:
        article = (PAGES_DIR / "nationalgeographic.co.uk.goats.html").read_bytes()
        if path.startswith("/pages/"):
            f = PAGES_DIR / path.removeprefix("/pages/")
            if f.is_file() and f.parent == PAGES_DIR:
                return self._send(200, f.read_bytes())
            return self._send(404, b"<html><body>not found</body></html>")
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[-1])
            return self._send(code, f"<html><body>status {code}</body></html>".encode())
        if path == "/pdf":
            return self._send(200, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "application/pdf")
        if path == "/empty":
            return self._send(200, b"")
        if path == "/blank":
            return self._send(200, b"<html><head><title>x</title></head><body><nav>Home</nav></body></html>")
        if path == "/big":
            n = int(q.get("bytes", "1000000"))
            body = b"<html><body><p>" + b"a" * n + b"</p></body></html>"
            return self._send(200, body, length=q.get("length", "1") == "1")
        if path == "/gzip-bomb":
            body = gzip.compress(b"<html><body>" + b" " * 50_000_000 + b"</body></html>", compresslevel=9)
            return self._send(200, body, headers={"Content-Encoding": "gzip"})
        if path == "/hang":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"<html>")
            self.wfile.flush()
            self.server.stop.wait(30)
            return None
        if path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(60):
                if self.server.stop.wait(0.3):
                    break
                self.wfile.write(b"a")
                self.wfile.flush()
            return None
        if path.startswith("/redirect/"):
            n = int(path.rsplit("/", 1)[-1])
            target = f"/redirect/{n - 1}" if n > 1 else "/pages/nationalgeographic.co.uk.goats.html"
            return self._send(302, b"", headers={"Location": target})
        if path == "/redirect-loop":
            return self._send(302, b"", headers={"Location": "/redirect-loop-b"})
        if path == "/redirect-loop-b":
            return self._send(302, b"", headers={"Location": "/redirect-loop"})
        if path == "/redirect-private":
            return self._send(302, b"", headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        if path.startswith("/flaky/"):
            fails = int(q.get("fail", "2"))
            if self.server.hits[path] <= fails:
                return self._send(int(q.get("status", "503")), b"<html><body>busy</body></html>")
            return self._send(200, article)
        if path == "/charset/latin1":
            body = ("<html><head><meta charset='iso-8859-1'><title>Caf\u00e9</title></head><body><p>"
                    "Cr\u00e8me br\u00fbl\u00e9e \u00e0 la carte.</p></body></html>").encode("latin-1")
            return self._send(200, body, "text/html")
        if path == "/nul":
            return self._send(200, bytes(range(256)) * 64, "text/html")
        if path == "/no-type":
            return self._send(200, b"\x89PNG\r\n\x1a\n" + b"\x01" * 100, "")
        return self._send(404, b"<html><body>no such route</body></html>")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.stop = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early (size limits, timeouts) are the point of several tests


@dataclass
class HttpServer:
    """A running loopback server: ``url('/pages/x.html')`` gives a full URL."""

    base_url: str
    server: _Server

    def url(self, path: str) -> str:
        return self.base_url + path

    def hits(self, path: str) -> int:
        return self.server.hits[path]


@pytest.fixture(scope="session")
def http_server() -> Iterator[HttpServer]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield HttpServer(f"http://{host}:{port}", server)
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        time.sleep(0.05)


@pytest.fixture
def fetch_options() -> FetchOptions:
    return FetchOptions(allow_private_hosts=True, timeout_s=2, retry_base_s=0)


@pytest.fixture
def pages_dir() -> Path:
    return PAGES_DIR
