"""Hostile pages from the loopback server: each ends within the time and byte limits, with a clear error."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tasks.errors import ExtractionError, FetchError
from tasks.extract import MAX_IMAGES, extract_article
from tasks.fetch import fetch_page
from tasks.models import FetchOptions

pytestmark = pytest.mark.reliability

MAX_BYTES = 1_000_000
TIMEOUT_S = 1.5
#: Most Python memory one fetch may hold at its peak: a few times the byte limit (body, decoded text, page).
MEMORY_BOUND = 8 * MAX_BYTES
OPTIONS = FetchOptions(allow_private_hosts=True, max_bytes=MAX_BYTES, timeout_s=TIMEOUT_S, max_redirects=5)


def _bounded(call: Callable[[], Any]) -> tuple[Any, float, int]:
    """Run ``call``; return what it returned or raised, its seconds, and its peak of Python memory in bytes."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        outcome: Any = call()
    except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
        outcome = exc
    finally:
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, seconds, peak


def _cpu_bounded(call: Callable[[], Any]) -> tuple[Any, float, int]:
    """:func:`_bounded` with this thread's CPU seconds: extraction's bound must hold on a loaded machine too."""
    started = time.thread_time()
    outcome, _, peak = _bounded(call)
    return outcome, time.thread_time() - started, peak


def _warm(url: str) -> None:
    """Have the test server build its (cached) body first: it runs in this process, and would count as ours."""
    with httpx.stream("GET", url, timeout=30) as response:
        assert response.status_code == 200  # headers are enough: the body is built before they go out


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/big?bytes=50000000", "larger than 1,000,000 bytes"),  # 50 MB, announced by Content-Length
        ("/big?bytes=50000000&length=0", "larger than 1,000,000 bytes"),  # 50 MB, chunked
        ("/endless", "larger than 1,000,000 bytes"),  # a chunked body that never ends
        ("/drip?every=1&piece=a", "timed out after 1.5 s"),  # one byte a second
        ("/hang", "timed out after 1.5 s"),  # headers, then nothing
        ("/redirect-loop", "redirect loop"),
        ("/gzip-bomb", "larger than 1,000,000 bytes"),  # 50 KB that inflates to 50 MB
        ("/binary-html", "binary data, not an HTML page"),  # noise sent as text/html
        ("/nul", "binary data, not an HTML page"),
    ],
)
def test_hostile_pages_end_within_limits(http_server, path: str, message: str) -> None:
    if path.startswith(("/big", "/gzip-bomb")):
        _warm(http_server.url(path))
    outcome, seconds, peak = _bounded(lambda: fetch_page(http_server.url(path), OPTIONS))
    assert isinstance(outcome, FetchError), outcome
    assert message in str(outcome)
    assert seconds < TIMEOUT_S + 1.0, f"{path} took {seconds:.1f} s"
    assert peak < MEMORY_BOUND, f"{path} held {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("variant", ["unknown", "undeclared", "header", "utf16-bom"])
def test_wrong_or_missing_charset_still_reads(http_server, variant: str) -> None:
    outcome, seconds, peak = _bounded(lambda: fetch_page(http_server.url(f"/charset/{variant}"), OPTIONS))
    assert not isinstance(outcome, Exception), outcome
    assert "\u041c\u043e\u0441\u043a\u0432\u0430" in outcome.html  # "Moscow", whatever the label said
    # Guessing the charset of an undeclared page under tracemalloc takes seconds on a loaded machine; a hang
    # would take the whole read deadline and more, as in the tests above.
    assert seconds < TIMEOUT_S + 4.0, f"{variant} took {seconds:.1f} s"
    assert peak < MEMORY_BOUND, f"{variant} held {peak / 1e6:.1f} MB"


def test_deeply_nested_html_is_read_or_refused_clearly(http_server) -> None:
    page = fetch_page(http_server.url("/nested?depth=50000"), OPTIONS)
    outcome, seconds, peak = _cpu_bounded(lambda: extract_article(page.html, page.final_url, min_words=20))
    if isinstance(outcome, Exception):
        assert isinstance(outcome, ExtractionError), outcome
    else:
        assert "river keeps its course" in " ".join(outcome.paragraphs)
    assert seconds < 20, f"extraction took {seconds:.1f} s of CPU"
    assert peak < 60 * len(page.html), f"held {peak / 1e6:.1f} MB for a {len(page.html) / 1e6:.1f} MB page"


def test_ten_thousand_images_are_capped(http_server) -> None:
    page = fetch_page(http_server.url("/many-images?n=10000"), OPTIONS)
    outcome, seconds, _ = _cpu_bounded(lambda: extract_article(page.html, page.final_url))
    assert not isinstance(outcome, Exception), outcome
    assert 0 < len(outcome.images) <= MAX_IMAGES
    assert len(set(outcome.images)) == len(outcome.images)
    assert seconds < 20, f"extraction took {seconds:.1f} s of CPU"
