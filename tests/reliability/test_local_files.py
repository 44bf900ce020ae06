"""A page's pictures and this machine's files: a web page never gets one, a local page only its own folder's.

Also: nothing local is read unless it is a regular file (a FIFO or a device would block forever),
and the command line stops cleanly, in one line, when a scheduler sends SIGTERM.
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tasks.errors import FetchError
from tasks.extract import extract_article
from tasks.fetch import fetch_page
from tasks.images import fetch_picture, fetch_picture_or_none
from tasks.models import FetchOptions
from tests.reliability.conftest import PYTHON, cli_env

pytestmark = pytest.mark.reliability

SENTENCES = " ".join(
    f"The keeper of lighthouse number {n} climbed the long stair each evening to light the lamp." for n in range(12)
)
#: Paths that only look like pictures: devices, a process's own input, a root-only file.
TRICKS = ["file:///dev/stdin?x.png", "file:///proc/self/fd/0#.jpg", "file:///etc/shadow?x.png",
          "file:///dev/kmsg#.jpg", "file:///etc/passwd?.png"]


def _page(images: list[str]) -> str:
    figures = "".join(f'<figure><img src="{src}" alt="photo"></figure><p>{SENTENCES}</p>' for src in images)
    return (f"<html><head><title>Keepers of the light</title></head><body><article><h1>Keepers</h1>"
            f"<p>{SENTENCES}</p>{figures}<p>{SENTENCES}</p></article></body></html>")


def _png(path: Path, size: tuple[int, int] = (48, 32)) -> Path:
    Image.new("RGB", size, (200, 40, 40)).save(path)
    return path


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A picture outside every page's folder: what a hostile page wants in its video."""
    outside = tmp_path / "private"
    outside.mkdir()
    return _png(outside / "secret.png")


@pytest.fixture
def web_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a folder: (its base URL, the folder)."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


# --------------------------------------------------------------------------- a web page


def test_a_web_page_never_names_a_local_picture(secret: Path) -> None:
    html = _page([secret.as_uri(), *TRICKS, "/img/real.jpg"])
    article = extract_article(html, "https://news.example/story.html")
    assert article.images == ["https://news.example/img/real.jpg"]


def test_a_web_pages_storyboard_and_pictures_stay_off_the_machine(web_folder, secret: Path, prefect_api: str,
                                                                   pagereel_env: Path) -> None:
    from flows.video_flow import video_flow

    base, folder = web_folder
    (folder / "story.html").write_text(_page([secret.as_uri(), *TRICKS]), encoding="utf-8")
    # The edits file of a careless user names the same file: a web page's video still never shows it.
    edits = {"scenes": {"s1": {"image": str(secret)}}}
    state = video_flow(f"{base}/story.html", workflow_id="web", user_edits=edits, dry_run=True)
    saved = Path(state.storyboard_path).read_text(encoding="utf-8")
    assert "secret" not in saved and "file:" not in saved and "/dev/" not in saved and "/etc/" not in saved
    assert all(scene.image is None for scene in state.storyboard.scenes)


@pytest.mark.parametrize("url", TRICKS)
def test_suffix_tricks_never_read_a_device_or_system_file(url: str, tmp_path: Path) -> None:
    # Even a local page in / could not reach them: not regular files, or queries on a file:// URL.
    with pytest.raises(FetchError, match="refusing the local picture|not a regular file"):
        fetch_picture(url, FetchOptions(timeout_s=2), folder="/")
    assert not FetchOptions().picture_allowed(url, "https://news.example/story.html")
    assert not FetchOptions().picture_allowed(url, (tmp_path / "page.html").as_uri())


def test_fetch_picture_refuses_local_files_without_a_local_page(secret: Path) -> None:
    for given in (str(secret), secret.as_uri()):
        with pytest.raises(FetchError, match="only for a local page"):
            fetch_picture(given, FetchOptions())
        assert fetch_picture_or_none(given, FetchOptions()) is None


# --------------------------------------------------------------------------- a local page


def test_a_local_page_shows_only_pictures_from_its_own_folder(tmp_path: Path, secret: Path) -> None:
    folder = tmp_path / "story"
    (folder / "img").mkdir(parents=True)
    _png(folder / "img" / "inside.png")
    (folder / "img" / "link.png").symlink_to(secret)  # inside by name, outside in fact
    (folder / "escape").symlink_to(secret.parent, target_is_directory=True)
    page = folder / "page.html"
    page.write_text(_page(["img/inside.png", "img/link.png", "escape/secret.png", "../private/secret.png",
                           secret.as_uri(), *TRICKS]), encoding="utf-8")

    fetched = fetch_page(str(page))
    article = extract_article(fetched.html, fetched.final_url)
    assert article.images == [(folder / "img" / "inside.png").resolve().as_uri()]

    options = FetchOptions()
    source = fetched.final_url
    assert options.picture_allowed(article.images[0], source)
    picture = fetch_picture(article.images[0], options, folder=str(folder.resolve()))
    assert (picture.width, picture.height) == (48, 32)
    for refused in (folder / "img" / "link.png", folder / "escape" / "secret.png", secret):
        assert not options.picture_allowed(refused.as_uri(), source)
        with pytest.raises(FetchError, match="outside the page's folder"):
            fetch_picture(refused.as_uri(), options, folder=str(folder))
    with pytest.raises(FetchError, match="'..'"):
        fetch_picture(f"{folder}/img/../../private/secret.png", options, folder=str(folder))


# --------------------------------------------------------------------------- things that block


def _in_thread(target, *args, **kwargs) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = target(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the test reads what happened
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=10)
    return thread, outcome


def _unblock(fifo: Path) -> None:
    """Open the FIFO's other end, so a reader stuck in open() returns and the test can fail cleanly."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def test_a_fifo_picture_or_page_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    page_fifo = tmp_path / "page.html"
    os.mkfifo(page_fifo)
    try:
        thread, outcome = _in_thread(fetch_picture, str(fifo), FetchOptions(timeout_s=2), folder=str(tmp_path))
        assert not thread.is_alive(), "reading a FIFO picture blocked"
        assert isinstance(outcome.get("error"), FetchError) and "named pipe" in str(outcome["error"])
        thread, outcome = _in_thread(fetch_page, str(page_fifo), FetchOptions(timeout_s=2))
        assert not thread.is_alive(), "reading a FIFO page blocked"
        assert isinstance(outcome.get("error"), FetchError) and "named pipe" in str(outcome["error"])
    finally:
        _unblock(fifo)
        _unblock(page_fifo)


def test_devices_and_folders_are_not_pictures(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="a device"):
        fetch_picture("/dev/zero", FetchOptions(timeout_s=2), folder="/dev")
    with pytest.raises(FetchError, match="a folder"):
        fetch_picture(str(tmp_path), FetchOptions(timeout_s=2), folder=str(tmp_path))


@pytest.mark.timeout(120)
def test_the_cli_stops_on_sigterm_in_one_line_leaving_no_outputs(http_server, pagereel_env: Path,
                                                                 prefect_api: str) -> None:
    # A page that sends its headers, then nothing: the run sits in the fetch until SIGTERM comes.
    env = cli_env(prefect_api, PAGEREEL_FETCH__TIMEOUT_S="60", PAGEREEL_FETCH__RETRIES="0")
    before = http_server.hits("/hang")
    child = subprocess.Popen([PYTHON, "-m", "flows.video_flow", http_server.url("/hang"), "--workflow-id", "stopped"],
                             env=env, cwd=pagereel_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ends = time.monotonic() + 60
        while http_server.hits("/hang") == before and child.poll() is None and time.monotonic() < ends:
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()
        time.sleep(0.3)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    lines = [line for line in err.splitlines() if line.strip()]
    assert child.returncode not in (0, None) and child.returncode > 0, (child.returncode, err[-2000:])
    assert lines and lines[-1].startswith("error: ") and "SIGTERM" in lines[-1], err[-2000:]
    assert sum(line.startswith("error: ") for line in lines) == 1
    folder = pagereel_env / "out" / "stopped"
    for name in ("video.mp4", "manifest.json", "storyboard.json"):
        assert not (folder / name).exists()
