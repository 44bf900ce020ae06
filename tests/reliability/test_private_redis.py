"""Tests never touch data they did not create: every test that needs Redis talks to a redis-server of its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import redis

from tests.conftest import redis_url

pytestmark = pytest.mark.reliability

TESTS = Path(__file__).resolve().parents[1]
MACHINE_PORT = 6379
_DEFAULT_PORT = re.compile(r"(?:redis://[^/\s]*|127\.0\.0\.1|localhost):" + str(MACHINE_PORT) + r"\b")


def _offences(path: Path) -> list[str]:
    """Where ``path`` would reach the machine's Redis: a 6379 address, or a client left on the default port."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _DEFAULT_PORT.search(node.value):
            found.append(f"{path.name}:{node.lineno}: {node.value[:60]!r}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("Redis",
                                                                                                      "StrictRedis"):
            if not any(k.arg in ("port", "unix_socket_path") for k in node.keywords):
                found.append(f"{path.name}:{node.lineno}: a Redis client on the default port")
    return found


def test_no_test_names_the_machines_redis() -> None:
    offences = [o for path in sorted(TESTS.rglob("*.py")) for o in _offences(path)]
    assert offences == []


def test_the_sessions_redis_is_its_own(empty_redis: redis.Redis, redis_server) -> None:
    assert redis_server.port != MACHINE_PORT and redis_server.proc is not None and redis_server.proc.poll() is None
    assert redis_url(empty_redis) == f"redis://127.0.0.1:{redis_server.port}/0"
    empty_redis.set("written-by-this-test", b"1")
    assert empty_redis.dbsize() == 1  # flushed before the test: nothing of anyone else's was there
