"""fetch_page against a real loopback server: pages, redirects, limits and every refusal."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tasks.errors import FetchError
from tasks.fetch import check_host_allowed, fetch_page
from tasks.models import FetchOptions

GOATS = "/pages/nationalgeographic.co.uk.goats.html"


def test_sample_page(http_server, fetch_options) -> None:
    page = fetch_page(http_server.url(GOATS), fetch_options)
    assert page.status == 200 and page.content_type == "text/html"
    assert "Redonda" in page.html
    assert page.final_url == page.url


def test_redirect_chain_is_followed(http_server, fetch_options) -> None:
    page = fetch_page(http_server.url("/redirect/3"), fetch_options)
    assert page.final_url.endswith(GOATS)
    assert page.url.endswith("/redirect/3")


@pytest.mark.parametrize("path", ["/redirect/9", "/redirect-loop"])
def test_too_many_redirects_or_loop(http_server, fetch_options, path) -> None:
    with pytest.raises(FetchError, match="redirects") as info:
        fetch_page(http_server.url(path), fetch_options)
    assert not info.value.transient


@pytest.mark.parametrize(("code", "transient"), [(404, False), (403, False), (410, False), (503, True), (500, True),
                                                 (429, True)])
def test_status_codes(http_server, fetch_options, code, transient) -> None:
    with pytest.raises(FetchError, match=str(code)) as info:
        fetch_page(http_server.url(f"/status/{code}"), fetch_options)
    assert info.value.transient is transient


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/pdf", "application/pdf, not an HTML page"),
        ("/empty", "empty page"),
        ("/nul", "binary"),
        ("/no-type", "does not look like HTML"),
    ],
)
def test_not_html_is_refused_at_once(http_server, fetch_options, path, message) -> None:
    with pytest.raises(FetchError, match=message) as info:
        fetch_page(http_server.url(path), fetch_options)
    assert not info.value.transient


@pytest.mark.parametrize("length", ["1", "0"])
def test_byte_limit_with_and_without_content_length(http_server, length) -> None:
    options = FetchOptions(allow_private_hosts=True, max_bytes=100_000, timeout_s=5)
    with pytest.raises(FetchError, match="larger than 100000 bytes"):
        fetch_page(http_server.url(f"/big?bytes=500000&length={length}"), options)


def test_gzip_bomb_stops_at_the_limit(http_server) -> None:
    options = FetchOptions(allow_private_hosts=True, max_bytes=1_000_000, timeout_s=10)
    with pytest.raises(FetchError, match="larger than"):
        fetch_page(http_server.url("/gzip-bomb"), options)


@pytest.mark.parametrize("path", ["/hang", "/drip"])
def test_slow_servers_time_out(http_server, path) -> None:
    options = FetchOptions(allow_private_hosts=True, timeout_s=1)
    t0 = time.monotonic()
    with pytest.raises(FetchError, match="1 s") as info:
        fetch_page(http_server.url(path), options)
    assert info.value.transient
    assert time.monotonic() - t0 < 4


def test_charset_from_meta(http_server, fetch_options) -> None:
    page = fetch_page(http_server.url("/charset/latin1"), fetch_options)
    assert "Crème brûlée" in page.html
    assert page.encoding == "iso8859-1"


def test_loopback_refused_by_default(http_server) -> None:
    with pytest.raises(FetchError, match="allow_private_hosts"):
        fetch_page(http_server.url(GOATS), FetchOptions())


def test_redirect_to_metadata_endpoint_refused(http_server) -> None:
    # The first hop is allowed explicitly here; the redirect target must still be checked.
    with pytest.raises(FetchError, match="169.254.169.254"):
        opts = FetchOptions(allow_private_hosts=False)
        check_host_allowed("http://169.254.169.254/latest/meta-data/", opts)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/", "http://localhost:8080/", "http://10.1.2.3/", "http://192.168.0.1/",
        "http://172.16.5.4/", "http://169.254.169.254/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/", "http://[fd00::1]/", "http://0.0.0.0/", "http://100.64.0.1/",
    ],
)
def test_private_addresses_refused(url) -> None:
    with pytest.raises(FetchError, match="private or local"):
        check_host_allowed(url, FetchOptions())


def test_public_address_allowed() -> None:
    check_host_allowed("http://93.184.215.14/", FetchOptions())  # literal address: no lookup, no traffic


def test_local_files(tmp_path: Path, pages_dir: Path) -> None:
    page = fetch_page(str(pages_dir / "lemire.me.json.html"))
    assert "simdjson" in page.html and page.final_url.startswith("file://")
    assert "simdjson" in fetch_page((pages_dir / "lemire.me.json.html").as_uri()).html
    with pytest.raises(FetchError, match="does not exist"):
        fetch_page(str(tmp_path / "missing.html"))
    (tmp_path / "notes.txt").write_text("plain text, no markup")
    with pytest.raises(FetchError, match="not an HTML file"):
        fetch_page(str(tmp_path / "notes.txt"))
    with pytest.raises(FetchError, match="allow_local_files"):
        fetch_page(str(pages_dir / "lemire.me.json.html"), FetchOptions(allow_local_files=False))


@pytest.mark.parametrize("url", ["ftp://example.com/x", "gopher://x", "javascript:alert(1)", "data:text/html,hi"])
def test_unknown_schemes(url) -> None:
    with pytest.raises(FetchError, match="scheme"):
        fetch_page(url)
