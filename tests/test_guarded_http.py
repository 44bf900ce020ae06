"""The guarded HTTP client's two faces, and that every HTTP client in pagereel goes through it."""

from __future__ import annotations

import ast
import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks.errors import FetchError
from tasks.guarded_http import EndpointTooBig, endpoint_client, post_bounded

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("flows", "tasks", "kernels", "deployments")


class _Endpoint(BaseHTTPRequestHandler):
    """An operator's endpoint on loopback (where LLM and speech servers usually run)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/redirect":
            return self._send(307, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        if self.path == "/big":
            return self._send(200, b"x" * 200_000)
        if self.path == "/bomb":
            return self._send(200, gzip.compress(b"\0" * 20_000_000), {"Content-Encoding": "gzip"})
        return self._send(200, json.dumps({"echo": self.path}).encode(), {"Content-Type": "application/json"})

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_operators_endpoint_on_loopback_is_reached(endpoint: str) -> None:
    with endpoint_client(5) as client:
        reply = post_bounded(client, f"{endpoint}/chat", json={"a": 1}, headers={}, max_bytes=1000)
    assert reply.status_code == 200
    assert reply.json() == {"echo": "/chat"}


def test_an_endpoints_redirect_is_an_answer_not_a_new_destination(endpoint: str) -> None:
    with endpoint_client(5) as client:
        reply = post_bounded(client, f"{endpoint}/redirect", json={}, headers={}, max_bytes=1000)
    assert reply.status_code == 307  # never followed to the metadata address


@pytest.mark.parametrize("path", ["/big", "/bomb"])
def test_an_endpoints_answer_is_bounded(endpoint: str, path: str) -> None:
    with endpoint_client(5) as client, pytest.raises(EndpointTooBig, match="more than 100,000 bytes"):
        post_bounded(client, f"{endpoint}{path}", json={}, headers={}, max_bytes=100_000)
    assert issubclass(EndpointTooBig, FetchError)


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LAYERS:
                found += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "private names imported across modules (make them public or move them): " + "; ".join(found)


def test_every_http_client_is_the_guarded_one() -> None:
    """Only ``tasks/guarded_http.py`` makes an httpx client or request; everything else calls it."""
    made = {"Client", "AsyncClient", "get", "post", "stream", "request"}
    found = []
    for path, tree in _modules():
        if path == ROOT / "tasks" / "guarded_http.py":
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in made
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "httpx"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} httpx.{node.func.attr}")
    assert not found, "HTTP clients outside tasks.guarded_http: " + "; ".join(found)
