"""The private-address guard, on by default: pages, redirects, DNS names and a page's pictures."""

from __future__ import annotations

import ipaddress
import socket
import uuid

import pytest

import tasks.guarded_http
from tasks.errors import FetchError
from tasks.fetch import fetch_page
from tasks.images import fetch_picture, fetch_picture_or_none
from tasks.models import FetchOptions

pytestmark = pytest.mark.reliability

GUARDED = FetchOptions(timeout_s=2, retries=0)  # allow_private_hosts is off by default
TARGETS = [
    ("http://127.0.0.1/", "loopback"),
    ("http://localhost/", "loopback"),  # a name, resolved through /etc/hosts
    ("http://v6-loopback.test/", "loopback"),  # a DNS name answering ::1 (no ip6-localhost in /etc/hosts here)
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://10.0.0.8/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://metadata.google.internal.test/", "link-local"),  # a DNS name answering with the metadata address
    ("http://mixed.test/", "private"),  # one public and one private answer: refused
]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names ending in .test resolve as this table says; others go to the real resolver (/etc/hosts only here)."""
    table = {"metadata.google.internal.test": ["169.254.169.254"], "v6-loopback.test": ["::1"],
             "mixed.test": ["93.184.215.14", "10.1.1.1"]}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):  # noqa: ANN001, ANN202 - socket's signature
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.endswith(".test"):
            if name not in table:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            # A list of three or more is a sequence of answers, one per lookup (for rebinding).
            addresses = table[name] if len(table[name]) < 3 else [table[name].pop(0)]
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
                    for a in addresses]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def server_is_public(monkeypatch: pytest.MonkeyPatch, http_server) -> None:
    """Treat the test server's own address (127.0.0.1) as public, so the guard stays on for everything else."""
    real = tasks.guarded_http.non_public_kind

    def kind(address):  # noqa: ANN001, ANN202
        return None if address == ipaddress.ip_address("127.0.0.1") else real(address)

    monkeypatch.setattr(tasks.guarded_http, "non_public_kind", kind)


def _port(http_server) -> int:
    return int(http_server.base_url.rsplit(":", 1)[1])


@pytest.mark.parametrize(("url", "kind"), TARGETS)
def test_pages_at_non_public_addresses_are_refused(url: str, kind: str) -> None:
    with pytest.raises(FetchError, match=f"is an? {kind}") as info:
        fetch_page(url, GUARDED)
    assert "allow_private_hosts" in str(info.value) and not info.value.transient


@pytest.mark.parametrize(("url", "kind"), TARGETS)
def test_pictures_at_non_public_addresses_are_refused(url: str, kind: str) -> None:
    with pytest.raises(FetchError, match=f"is an? {kind}"):
        fetch_picture(url + "photo.jpg", GUARDED)
    assert fetch_picture_or_none(url + "photo.jpg", GUARDED) is None  # the scene keeps its backdrop


def test_the_test_server_itself_is_refused_without_a_request(http_server) -> None:
    path = f"/flaky/{uuid.uuid4().hex}"
    with pytest.raises(FetchError, match="loopback"):
        fetch_page(http_server.url(path), GUARDED)
    assert http_server.hits(path) == 0


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/pages/x",
        "http://v6-loopback.test:{port}/pages/x",
        "http://127.0.0.2:{port}/pages/x",
        "http://[::ffff:10.0.0.1]/",
        "http://metadata.google.internal.test/",
    ],
)
def test_redirects_to_non_public_addresses_are_refused(http_server, server_is_public, location: str) -> None:
    target = location.format(port=_port(http_server))
    url = http_server.url(f"/redirect-to?location={target}")
    with pytest.raises(FetchError, match="refusing to fetch"):
        fetch_page(url, GUARDED)
    with pytest.raises(FetchError, match="refusing to fetch"):
        fetch_picture(url, GUARDED)


def test_a_public_page_passes_the_guard(http_server, server_is_public) -> None:
    page = fetch_page(http_server.url("/redirect/2"), GUARDED)
    assert page.final_url == http_server.url("/pages/harbour-lights.html")


def test_dns_rebinding_connects_to_the_address_that_was_checked(http_server, server_is_public, fake_dns) -> None:
    # The first lookup answers the (public) server's address, any later one a private address nothing
    # listens on: a fetcher that looked the name up again to connect would fail or reach the wrong host.
    fake_dns["rebind.test"] = ["127.0.0.1", "127.0.0.3", "127.0.0.3"]
    path = f"/flaky/{uuid.uuid4().hex}"
    page = fetch_page(f"http://rebind.test:{_port(http_server)}{path}?fail=0", GUARDED)
    assert page.final_url == f"http://rebind.test:{_port(http_server)}{path}?fail=0"  # the name, not the address
    assert http_server.hits(path) == 1
    assert fake_dns["rebind.test"] == ["127.0.0.3", "127.0.0.3"]  # looked up exactly once


def test_private_hosts_can_be_allowed_on_purpose(http_server) -> None:
    options = GUARDED.model_copy(update={"allow_private_hosts": True})
    assert fetch_page(http_server.url("/redirect/1"), options).status == 200
