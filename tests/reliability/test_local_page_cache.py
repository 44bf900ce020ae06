"""A local page is cached by its content: an edit on disk is seen by the next run; http(s) pages keep their TTL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.video_flow import run_video
from tasks.local_cache import LocalFileContent, content_digest

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


def _page(title: str) -> str:
    body = " ".join(f"The {title.lower()} keeps sentence number {n} about tides and harbour lights." for n in range(10))
    return (f"<!doctype html><html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
            f"<p>{body}</p><p>{body}</p></article></body></html>")


def test_a_local_page_edited_on_disk_is_read_again_by_the_next_run(pagereel_env: Path, prefect_api: str) -> None:
    page = pagereel_env / "story.html"
    page.write_text(_page("First Light"), encoding="utf-8")
    first = run_video(str(page), workflow_id="story", dry_run=True)
    again = run_video(str(page), workflow_id="story", dry_run=True)
    assert first.title == again.title == "First Light"
    assert again.metrics.cache_hits >= 1 and again.metrics.cache_misses == 0, "an unchanged page is reused"

    stat = page.stat()
    page.write_text(_page("Second Tide"), encoding="utf-8")
    os.utime(page, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time stamp: only the content tells
    edited = run_video(str(page), workflow_id="story", dry_run=True)
    assert edited.title == "Second Tide"
    assert run_video(page.as_uri(), workflow_id="story", dry_run=True).title == "Second Tide"


def test_http_pages_are_keyed_by_address_alone(tmp_path: Path) -> None:
    policy = LocalFileContent()
    assert policy.compute_key(None, {"url": "https://example.com/story"}, {}) is None  # type: ignore[arg-type]
    page = tmp_path / "p.html"
    page.write_bytes(b"<html>one</html>")
    key = policy.compute_key(None, {"url": str(page)}, {})  # type: ignore[arg-type]
    assert key == policy.compute_key(None, {"url": page.as_uri()}, {}) == content_digest(page, 5_000_000)  # type: ignore[arg-type]
    fifo = tmp_path / "fifo.html"
    os.mkfifo(fifo)
    # Never opened for reading in a way that blocks, and never a reusable key.
    assert policy.compute_key(None, {"url": str(fifo)}, {}) != policy.compute_key(None, {"url": str(fifo)}, {})  # type: ignore[arg-type]
