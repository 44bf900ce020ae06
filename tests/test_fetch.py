"""fetch_page against a real loopback server: pages, redirects, limits, charsets and every refusal."""

from __future__ import annotations

import re
import socket
import time
import uuid
from pathlib import Path

import pytest

import tasks.guarded_http
from tasks.errors import FetchError
from tasks.fetch import fetch_page
from tasks.guarded_http import check_host_allowed
from tasks.models import FetchOptions
from tests.conftest import ARTICLE_PAGE, OWN_PAGES, PAGES_DIR, corpus_params, page_file

ARTICLE = f"/pages/{ARTICLE_PAGE}"


def _refused(url: str, options: FetchOptions, match: str) -> FetchError:
    with pytest.raises(FetchError, match=match) as info:
        fetch_page(url, options)
    return info.value


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any name lookup or connection fail loudly, proving a check needed neither."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# --------------------------------------------------------------------------- pages that work


def _fetches_whole(http_server, fetch_options, name: str) -> None:
    path = page_file(name)
    assert path is not None
    raw = path.read_bytes()
    title = re.search(rb"<title[^>]*>(.*?)</title>", raw, re.S | re.I)
    page = fetch_page(http_server.url(f"/pages/{name}"), fetch_options)
    assert page.status == 200 and page.content_type == "text/html" and page.encoding == "utf-8"
    assert page.url == page.final_url == http_server.url(f"/pages/{name}")
    assert title and title.group(1).decode().strip() in page.html
    assert page.html == raw.decode("utf-8")


@pytest.mark.parametrize("name", OWN_PAGES)
def test_every_own_page_fetches(http_server, fetch_options, name: str) -> None:
    _fetches_whole(http_server, fetch_options, name)


@pytest.mark.parametrize("name", corpus_params())
def test_every_saved_real_page_fetches(http_server, fetch_options, name: str) -> None:
    assert (PAGES_DIR / name).is_file()
    _fetches_whole(http_server, fetch_options, name)


def test_user_agent_is_sent(http_server) -> None:
    options = FetchOptions(allow_private_hosts=True, timeout_s=2, user_agent="pagereel-test/9.9")
    assert "pagereel-test/9.9" in fetch_page(http_server.url("/headers"), options).html


def test_missing_content_type_is_sniffed(http_server, fetch_options) -> None:
    page = fetch_page(http_server.url("/sniff"), fetch_options)
    assert page.content_type == "text/html" and page.html.startswith("<!doctype html>")


@pytest.mark.parametrize("length", ["1", "0"])
def test_bodies_under_the_limit_arrive_whole(http_server, length: str) -> None:
    options = FetchOptions(allow_private_hosts=True, max_bytes=100_000, timeout_s=2)
    assert len(fetch_page(http_server.url(f"/big?bytes=99000&length={length}"), options).html) == 99_000
    assert len(fetch_page(http_server.url(f"/gzip?bytes=99000&length={length}"), options).html) == 99_000


# --------------------------------------------------------------------------- status codes and retries


@pytest.mark.parametrize(
    ("code", "transient"),
    [(400, False), (401, False), (403, False), (404, False), (410, False),
     (429, True), (500, True), (502, True), (503, True), (504, True)],
)
def test_status_codes(http_server, fetch_options, code: int, transient: bool) -> None:
    error = _refused(http_server.url(f"/status/{code}"), fetch_options, str(code))
    assert error.transient is transient


def test_404_says_what_to_do(http_server, fetch_options) -> None:
    _refused(http_server.url("/status/404"), fetch_options, "404 Not Found: check the URL")


def test_flaky_server_succeeds_after_its_failures(http_server, fetch_options) -> None:
    url = http_server.url(f"/flaky/{uuid.uuid4().hex}?fail=2&status=503")
    for _ in range(2):
        assert _refused(url, fetch_options, "503").transient
    assert "Porthkennack" in fetch_page(url, fetch_options).html


def test_refused_connection_is_transient(fetch_options) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    assert _refused(f"http://127.0.0.1:{port}/", fetch_options, "cannot connect").transient


def test_tls_failure_is_permanent(http_server, fetch_options) -> None:
    url = http_server.url(ARTICLE).replace("http://", "https://")
    assert not _refused(url, fetch_options, "TLS").transient


# --------------------------------------------------------------------------- not a usable page


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/pdf", "application/pdf, not an HTML page"),
        ("/empty", "the page is empty"),
        ("/nul", "binary"),
        ("/no-type", "does not look like HTML"),
        ("/status/301", "without saying where to go"),
    ],
)
def test_not_html_is_refused_at_once(http_server, fetch_options, path: str, message: str) -> None:
    assert not _refused(http_server.url(path), fetch_options, message).transient


@pytest.mark.parametrize("length", ["1", "0"])
def test_byte_limit_with_and_without_content_length(http_server, length: str) -> None:
    options = FetchOptions(allow_private_hosts=True, max_bytes=100_000, timeout_s=2)
    error = _refused(http_server.url(f"/big?bytes=500000&length={length}"), options, "larger than 100,000 bytes")
    assert "fetch.max_bytes" in str(error) and not error.transient


def test_gzip_bomb_stops_at_the_limit(http_server) -> None:
    options = FetchOptions(allow_private_hosts=True, max_bytes=1_000_000, timeout_s=5)
    _refused(http_server.url("/gzip-bomb"), options, "larger than 1,000,000 bytes")


@pytest.mark.parametrize("path", ["/hang", "/drip?every=0.1"])
def test_slow_servers_time_out(http_server, path: str) -> None:
    # /hang stops sending (read timeout); /drip never pauses long enough for one (overall deadline).
    options = FetchOptions(allow_private_hosts=True, timeout_s=0.5)
    started = time.monotonic()
    error = _refused(http_server.url(path), options, "timed out after 0.5 s")
    assert error.transient and "fetch.timeout_s" in str(error)
    assert time.monotonic() - started < 1.5


# --------------------------------------------------------------------------- redirects


def test_redirect_chain_is_followed(http_server, fetch_options) -> None:
    page = fetch_page(http_server.url("/redirect/4"), fetch_options)
    assert page.url == http_server.url("/redirect/4")
    assert page.final_url == http_server.url(ARTICLE)
    assert "Porthkennack" in page.html


def test_redirect_limit(http_server) -> None:
    options = FetchOptions(allow_private_hosts=True, timeout_s=2, max_redirects=5)
    assert fetch_page(http_server.url("/redirect/5"), options).final_url.endswith(ARTICLE)
    error = _refused(http_server.url("/redirect/6"), options, "more than 5 times")
    assert "fetch.max_redirects" in str(error) and not error.transient
    _refused(http_server.url("/redirect/1"), options.model_copy(update={"max_redirects": 0}), "more than 0 times")


def test_redirect_loop(http_server, fetch_options) -> None:
    assert not _refused(http_server.url("/redirect-loop"), fetch_options, "redirect loop").transient


def test_redirect_to_a_file_is_refused(http_server, fetch_options) -> None:
    _refused(http_server.url("/redirect-to?location=file:///etc/passwd"), fetch_options, "only http")


def test_every_redirect_hop_is_checked(http_server, monkeypatch: pytest.MonkeyPatch) -> None:
    # Our own server is loopback, so let exactly its address through and apply the real guard to the rest.
    checked: list[str] = []
    real = tasks.guarded_http.check_host_allowed

    def guard(url: str, options: FetchOptions | None = None) -> None:
        checked.append(url)
        if not url.startswith(http_server.base_url):
            real(url, options)

    monkeypatch.setattr(tasks.guarded_http, "check_host_allowed", guard)
    error = _refused(http_server.url("/redirect-private"), FetchOptions(timeout_s=2), "169.254.169.254")
    assert "allow_private_hosts" in str(error)
    assert checked == [http_server.url("/redirect-private"), "http://169.254.169.254/latest/meta-data/"]


# --------------------------------------------------------------------------- private addresses


def test_loopback_refused_by_default(http_server) -> None:
    path = f"/flaky/{uuid.uuid4().hex}"
    error = _refused(http_server.url(f"{path}?fail=0"), FetchOptions(timeout_s=2), "loopback")
    assert "fetch.allow_private_hosts" in str(error) and "PAGEREEL_FETCH__ALLOW_PRIVATE_HOSTS=1" in str(error)
    assert not error.transient
    assert http_server.hits(path) == 0  # refused before any request was sent


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fd00:ec2::254]/", "private"),
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[2002:c0a8:0101::]/", "private"),  # 6to4 around 192.168.1.1
        ("http://10.1.2.3/", "private"),
        ("http://172.16.5.4/", "private"),
        ("https://192.168.0.1/", "private"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://[fe80::1]/", "link-local"),
        ("http://240.0.0.1/", "reserved|private"),  # Python 3.11 calls 240/4 private
        ("http://100.64.0.1/", "non-public"),
    ],
)
def test_non_public_addresses_refused_without_traffic(no_network, url: str, kind: str) -> None:
    with pytest.raises(FetchError, match=kind) as info:
        check_host_allowed(url, FetchOptions())
    assert "fetch.allow_private_hosts" in str(info.value)
    check_host_allowed(url, FetchOptions(allow_private_hosts=True))


def test_public_addresses_allowed_without_traffic(no_network) -> None:
    check_host_allowed("http://93.184.215.14/", FetchOptions())
    check_host_allowed("https://[2606:4700:4700::1111]:8443/x", FetchOptions())


@pytest.mark.parametrize("url", ["http://localhost:8080/", "http://2130706433/", "http://0x7f.1/"])
def test_names_that_resolve_to_loopback_are_refused(url: str) -> None:
    # Resolved by /etc/hosts or inet_aton: local lookups only, no DNS query.
    with pytest.raises(FetchError, match="loopback"):
        check_host_allowed(url, FetchOptions())


# --------------------------------------------------------------------------- local files and schemes


def test_local_files(tmp_path: Path, pages_dir: Path) -> None:
    sample = pages_dir / "garden-sensor.html"
    by_path = fetch_page(str(sample))
    assert "allotment" in by_path.html and by_path.final_url == sample.resolve().as_uri() and by_path.url == str(sample)
    assert fetch_page(sample.as_uri()).html == by_path.html
    spaced = tmp_path / "a page with spaces.html"
    spaced.write_bytes(sample.read_bytes())
    assert fetch_page(spaced.as_uri()).html == by_path.html


def test_local_file_refusals(tmp_path: Path, pages_dir: Path) -> None:
    _refused(str(tmp_path / "missing.html"), FetchOptions(), "no such file")
    (tmp_path / "notes.txt").write_text("plain text, no markup")
    _refused(str(tmp_path / "notes.txt"), FetchOptions(), "text/plain, not an HTML page")
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    _refused(str(tmp_path / "paper.pdf"), FetchOptions(), "application/pdf")
    (tmp_path / "empty.html").write_bytes(b"")
    _refused(str(tmp_path / "empty.html"), FetchOptions(), "the page is empty")
    _refused(str(pages_dir / "garden-sensor.html"), FetchOptions(max_bytes=1000), "fetch.max_bytes")
    _refused(str(pages_dir / "garden-sensor.html"), FetchOptions(allow_local_files=False), "allow_local_files")
    _refused("file://elsewhere/share/page.html", FetchOptions(), "another machine")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "gopher://x", "javascript:alert(1)", "data:text/html,hi", " "])
def test_unknown_schemes(no_network, url: str) -> None:
    _refused(url, FetchOptions(), "http:// and https://")


# --------------------------------------------------------------------------- charsets


@pytest.mark.parametrize(
    ("variant", "encoding", "text"),
    [
        ("latin1", "cp1252", "Crème brûlée à la carte"),  # browsers read iso-8859-1 as windows-1252
        ("cp1252-quotes", "cp1252", "\u201cdéjà vu\u201d"),
        ("header", "cp1251", "Москва"),
        ("utf16-bom", "utf-16", "Москва"),
        ("unknown", "utf-8", "Москва"),
        ("undeclared", "cp1251", "Москва"),  # guessed by charset_normalizer
    ],
)
def test_charsets(http_server, fetch_options, variant: str, encoding: str, text: str) -> None:
    page = fetch_page(http_server.url(f"/charset/{variant}"), fetch_options)
    assert page.encoding == encoding
    assert text in page.html and "\ufffd" not in page.html and not page.html.startswith("\ufeff")
