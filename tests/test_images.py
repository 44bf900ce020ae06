"""fetch_picture against a real loopback server serving generated pictures: decoding, limits and every refusal."""

from __future__ import annotations

import io
import logging
import socket
import socketserver
import struct
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image, ImageCms, features

import tasks.guarded_http
import tasks.images
from tasks.errors import ConfigurationError, FetchError
from tasks.guarded_http import check_host_allowed
from tasks.images import Picture, fetch_picture, fetch_picture_or_none
from tasks.models import FetchOptions

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
HAS_WEBP = features.check("webp")
_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# --------------------------------------------------------------------------- generated pictures


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _halves(size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...], mode: str = "RGB") -> Image.Image:
    im = Image.new(mode, size, left)
    im.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return im


def _png_header_only(width: int, height: int) -> bytes:
    """A valid 1-bit grayscale PNG of any size, all black: zlib squeezes its rows to a few KB per megapixel."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then packed bits
    squeeze = zlib.compressobj(9)
    parts = [squeeze.compress(row * min(1000, height - i)) for i in range(0, height, 1000)]
    idat = b"".join(parts) + squeeze.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _exif_jpeg() -> bytes:
    """Stored 80x40, left half red, right green, tagged 'rotate 90 clockwise to display' (orientation 6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(_halves((80, 40), RED, GREEN), "JPEG", quality=95, exif=exif.tobytes())


def _two_frame_gif() -> bytes:
    frames = [Image.new("RGB", (30, 20), RED).convert("P"), Image.new("RGB", (30, 20), BLUE).convert("P")]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _noise(size: tuple[int, int] = (100, 100)) -> Image.Image:
    """Random pixels, which no codec shrinks: a body of predictable size."""
    return Image.fromarray(np.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _deep_png() -> bytes:
    """16-bit grayscale ramp 0..65535 across 256 columns."""
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (8, 1))
    return _save(Image.fromarray(ramp), "PNG")


@dataclass(frozen=True)
class Route:
    status: int
    body: bytes = b""
    ctype: str | None = "image/png"
    headers: tuple[tuple[str, str], ...] = ()


def _routes() -> dict[str, Route]:
    alpha = _halves((64, 48), (255, 0, 0, 0), (0, 0, 255, 255), "RGBA")
    routes = {
        "/alpha.png": Route(200, _save(alpha, "PNG")),
        "/opaque-rgba.png": Route(200, _save(Image.new("RGBA", (20, 10), (10, 200, 30, 255)), "PNG")),
        "/exif.jpg": Route(200, _exif_jpeg(), "image/jpeg"),
        "/anim.gif": Route(200, _two_frame_gif(), "image/gif"),
        "/cmyk.jpg": Route(200, _save(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG", quality=95),
                           "image/jpeg"),
        "/deep.png": Route(200, _deep_png()),
        "/srgb-profile.jpg": Route(200, _save(Image.new("RGB", (20, 10), (200, 100, 50)), "JPEG", quality=95,
                                              icc_profile=_SRGB_PROFILE), "image/jpeg"),
        "/broken-profile.jpg": Route(200, _save(Image.new("RGB", (20, 10), (200, 100, 50)), "JPEG", quality=95,
                                                icc_profile=b"not a colour profile"), "image/jpeg"),
        "/warned.png": Route(200, _png_header_only(10_000, 10_000)),  # 100 Mpx: Pillow warns, does not refuse
        "/gray-alpha.png": Route(200, _save(Image.new("LA", (16, 16), (200, 128)), "PNG")),
        "/noise.png": Route(200, _save(_noise(), "PNG")),  # about 30 KB
        "/wide.png": Route(200, _save(_halves((400, 100), RED, BLUE), "PNG")),
        "/wide.jpg": Route(200, _save(_halves((400, 300), RED, BLUE), "JPEG", quality=95), "image/jpeg"),
        # Served as an opaque blob, as many CDNs do: the type must come from the bytes.
        "/octet.png": Route(200, _save(Image.new("RGB", (12, 8), GREEN), "PNG"), "application/octet-stream"),
        "/drawing.svg": Route(200, b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
                              "image/svg+xml"),
        "/drawing-as-blob": Route(200, b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
                                  "application/octet-stream"),
        "/fake.png": Route(200, b"this is plain text, whatever the header says\n" * 5),
        "/truncated.png": Route(200, _save(Image.new("RGB", (300, 300), RED), "PNG", compress_level=0)[:2000]),
        "/page.html": Route(200, b"<html><body>not a picture</body></html>", "text/html; charset=utf-8"),
        "/empty.png": Route(200, b""),
        "/huge.png": Route(200, _png_header_only(30_000, 30_000)),  # 900 Mpx: Pillow's own bomb error
        "/big.png": Route(200, _png_header_only(8_000, 6_000)),  # 48 Mpx: above our limit, below Pillow's
        "/missing.png": Route(404, b"no such picture", "text/plain"),
        "/forbidden.png": Route(403, b"go away", "text/plain"),
        "/busy.png": Route(503, b"busy", "text/plain"),
        "/slow-down.png": Route(429, b"slow down", "text/plain", (("Retry-After", "1"),)),
        "/redirect": Route(302, headers=(("Location", "/alpha.png"),)),
        "/redirect-metadata": Route(302, headers=(("Location", "http://169.254.169.254/latest/meta-data/"),)),
        "/redirect-ftp": Route(302, headers=(("Location", "ftp://127.0.0.1/x.png"),)),
    }
    if HAS_WEBP:
        routes["/photo.webp"] = Route(200, _save(_halves((50, 40), RED, GREEN), "WEBP", quality=95), "image/webp")
    return routes


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if parts.path == "/hang.png":
                return self._hang()
            if parts.path == "/chain":
                n = int(query.get("n", "1"))
                return self._send(Route(302, headers=(("Location", f"/chain?n={n - 1}" if n > 1 else "/alpha.png"),)))
            if parts.path == "/chunked.png":
                return self._send(self.server.routes["/noise.png"], chunked=True)
            self._send(self.server.routes.get(parts.path, Route(404, b"no such route", "text/plain")))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, route: Route, *, chunked: bool = False) -> None:
        self.send_response(route.status)
        if route.ctype:
            self.send_header("Content-Type", route.ctype)
        for k, v in route.headers:
            self.send_header(k, v)
        self.send_header("Connection", "close")
        if not chunked:
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(route.body), 1024):
            piece = route.body[i : i + 1024]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def _hang(self) -> None:
        """Headers and a first chunk, then nothing until the client leaves or the server stops."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Connection", "close")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"8\r\n\x89PNG\r\n\x1a\n\r\n")
        self.wfile.flush()
        self.server.stop.wait(30)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, routes: dict[str, Route]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.stop = threading.Event()

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, a reverse DNS lookup that may leave the machine.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # clients that hang up early are the point of several tests
        super().handle_error(request, client_address)


@dataclass
class PictureServer:
    base_url: str
    routes: dict[str, Route]

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="module")
def pictures() -> Iterator[PictureServer]:
    server = _Server(_routes())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="test-picture-server", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield PictureServer(f"http://{host}:{port}", server.routes)
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def options() -> FetchOptions:
    return FetchOptions(allow_private_hosts=True, timeout_s=5)


def _refused(url: str, options: FetchOptions, match: str, **kw: int) -> FetchError:
    with pytest.raises(FetchError, match=match) as info:
        fetch_picture(url, options, **kw)
    return info.value


def _decoded(picture: Picture) -> Image.Image:
    im = Image.open(io.BytesIO(picture.data))
    assert im.size == (picture.width, picture.height)
    return im


# --------------------------------------------------------------------------- pictures that work


def test_alpha_is_kept_as_png_and_flattened_on_request(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/alpha.png"), options)
    assert (picture.width, picture.height) == (64, 48)
    assert picture.mime == "image/png" and _decoded(picture).format == "PNG"
    rgb = picture.to_rgb()
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert tuple(rgb[10, 5]) == (0, 0, 0)  # transparent red over black is black
    assert tuple(rgb[10, 60]) == BLUE
    over_white = picture.to_rgb((255, 255, 255))
    assert tuple(over_white[10, 5]) == (255, 255, 255) and tuple(over_white[10, 60]) == BLUE


def test_opaque_alpha_channel_becomes_jpeg(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/opaque-rgba.png"), options)
    assert picture.mime == "image/jpeg" and _decoded(picture).mode == "RGB"
    assert np.abs(picture.to_rgb().astype(int) - (10, 200, 30)).max() <= 4


def test_exif_orientation_is_applied(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/exif.jpg"), options)
    assert (picture.width, picture.height) == (40, 80)
    rgb = picture.to_rgb().astype(int)
    # Rotated 90 degrees clockwise: the stored left (red) half is now on top.
    assert np.abs(rgb[10, 20] - RED).max() < 40 and np.abs(rgb[70, 20] - GREEN).max() < 40
    assert _decoded(picture).getexif().get(0x0112, 1) == 1  # no orientation left to apply twice


def test_animated_gif_gives_its_first_frame(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/anim.gif"), options)
    assert (picture.width, picture.height) == (30, 20)
    assert np.abs(picture.to_rgb().astype(int) - RED).max() < 10


def test_cmyk_jpeg_becomes_rgb(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/cmyk.jpg"), options)
    assert _decoded(picture).mode == "RGB"
    r, g, b = picture.to_rgb()[15, 20].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_png_is_scaled_not_clipped(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/deep.png"), options)
    assert (picture.width, picture.height) == (256, 8)
    row = picture.to_rgb()[4, :, 0].astype(int)
    assert row[2] < 10 and abs(row[128] - 128) <= 6 and row[253] > 245
    assert np.all(np.diff(row[::16]) >= 0)


def test_gray_with_alpha(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/gray-alpha.png"), options)
    assert picture.mime == "image/png"
    assert abs(int(picture.to_rgb()[0, 0, 0]) - round(200 * 128 / 255)) <= 2


@pytest.mark.parametrize("path", ["/srgb-profile.jpg", "/broken-profile.jpg"])
def test_colour_profiles_are_applied_or_ignored_when_broken(pictures, options, path: str) -> None:
    picture = fetch_picture(pictures.url(path), options)
    assert np.abs(picture.to_rgb()[5, 10].astype(int) - (200, 100, 50)).max() <= 6


@pytest.mark.skipif(not HAS_WEBP, reason="Pillow here has no WebP")
def test_webp(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/photo.webp"), options)
    assert (picture.width, picture.height) == (50, 40)
    rgb = picture.to_rgb().astype(int)
    assert np.abs(rgb[20, 5] - RED).max() < 40 and np.abs(rgb[20, 45] - GREEN).max() < 40


def test_type_comes_from_the_bytes_not_the_header(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/octet.png"), options)
    assert (picture.width, picture.height) == (12, 8)


def test_downscaled_to_max_side(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/wide.png"), options, max_side=100)
    assert (picture.width, picture.height) == (100, 25)
    rgb = picture.to_rgb().astype(int)
    assert np.abs(rgb[12, 10] - RED).max() < 10 and np.abs(rgb[12, 90] - BLUE).max() < 10


def test_large_jpeg_decodes_at_reduced_size_within_pixel_limit(pictures, options) -> None:
    # 400x300 is 120,000 pixels: too many at full size, but JPEG decodes it at 1/4 for a 100 px target.
    picture = fetch_picture(pictures.url("/wide.jpg"), options, max_side=100, max_pixels=50_000)
    assert (picture.width, picture.height) == (100, 75)
    _refused(pictures.url("/wide.png"), options, r"400x100 pixels \(0.0 megapixels\)", max_side=100,
             max_pixels=10_000)


def test_pillow_bomb_warning_still_ends_in_our_refusal(pictures, options) -> None:
    # Outside pytest's warnings-are-errors, Pillow only warns about 100 Mpx; our own limit must refuse it.
    with pytest.warns(Image.DecompressionBombWarning):
        _refused(pictures.url("/warned.png"), options, r"10000x10000 pixels \(100.0 megapixels\)")


def test_redirect_is_followed_and_url_kept(pictures, options) -> None:
    url = pictures.url("/redirect")
    picture = fetch_picture(url, options)
    assert picture.url == url and (picture.width, picture.height) == (64, 48)


def test_chunked_body_within_limit(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/chunked.png"), options)
    assert (picture.width, picture.height) == (100, 100)


def test_local_path_and_file_url(tmp_path: Path, options) -> None:
    path = tmp_path / "local picture.png"
    _noise((33, 21)).save(path)
    for given in (str(path), path.as_uri()):
        picture = fetch_picture(given, options, folder=str(tmp_path))
        assert picture.url == given and (picture.width, picture.height) == (33, 21)
    with pytest.raises(FetchError, match="allow_local_files") as info:
        fetch_picture(path.as_uri(), FetchOptions(allow_local_files=False), folder=str(tmp_path))
    assert not info.value.transient
    with pytest.raises(FetchError, match="no such picture file"):
        fetch_picture(str(tmp_path / "nope.png"), options, folder=str(tmp_path))
    with pytest.raises(FetchError, match="larger than 1,000 bytes"):
        fetch_picture(str(path), FetchOptions(max_bytes=1000), folder=str(tmp_path))


def test_picture_round_trips_through_json(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/alpha.png"), options)
    text = picture.model_dump_json()
    assert '"data":"iVBOR' in text  # base64 of the PNG signature
    again = Picture.model_validate_json(text)
    assert again == picture
    assert np.array_equal(again.to_rgb(), picture.to_rgb())
    assert "data" not in repr(picture)
    with pytest.raises(ValueError, match="frozen"):
        picture.width = 3  # type: ignore[misc]


def test_to_rgb_rejects_a_bad_background(pictures, options) -> None:
    picture = fetch_picture(pictures.url("/alpha.png"), options)
    with pytest.raises(ConfigurationError, match="background"):
        picture.to_rgb((0, 0, 300))


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("/drawing.svg", r"not a supported image \(image/svg\+xml: SVG\)"),
        ("/drawing-as-blob", r"not a supported image \(SVG\)"),
        ("/fake.png", r"not a supported image \(not a picture format it knows\)"),
        ("/truncated.png", r"not a supported image \(damaged or unreadable"),
        ("/page.html", r"not a supported image \(text/html: an HTML page\)"),
        ("/empty.png", "the picture is empty"),
        ("/huge.png", r"too large to decode safely \(Image size \(900000000 pixels\) exceeds"),
        ("/warned.png", "too large to decode safely"),  # Pillow's warning, raised here as an error by pytest
        ("/big.png", r"8000x6000 pixels \(48.0 megapixels\), more than the 40 megapixels"),
        ("/missing.png", "404 Not Found: check the URL"),
        ("/forbidden.png", "403 Forbidden"),
        ("/redirect-ftp", "only http:// and https:// redirects are followed"),
    ],
)
def test_permanent_refusals(pictures, options, path: str, match: str) -> None:
    error = _refused(pictures.url(path), options, match)
    assert not error.transient


@pytest.mark.parametrize(("path", "match"), [("/busy.png", "503 Service Unavailable"),
                                             ("/slow-down.png", "429 Too Many Requests")])
def test_busy_servers_are_transient(pictures, options, path: str, match: str) -> None:
    error = _refused(pictures.url(path), options, match)
    assert error.transient and "try again later" in str(error)


def test_deadline_is_transient(pictures) -> None:
    error = _refused(pictures.url("/hang.png"), FetchOptions(allow_private_hosts=True, timeout_s=0.5), "timed out")
    assert error.transient


def test_connection_refused_is_transient(options) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = _refused(f"http://127.0.0.1:{port}/x.png", options, "cannot connect")
    assert error.transient


@pytest.mark.parametrize("path", ["/noise.png", "/chunked.png"])  # Content-Length up front, then while streaming
def test_byte_limit(pictures, path: str) -> None:
    options = FetchOptions(allow_private_hosts=True, max_bytes=20_000)
    error = _refused(pictures.url(path), options, "larger than 20,000 bytes")
    assert not error.transient and "fetch.max_bytes" in str(error)


def test_redirect_limit(pictures) -> None:
    options = FetchOptions(allow_private_hosts=True, max_redirects=2, timeout_s=5)
    assert fetch_picture(pictures.url("/chain?n=2"), options).width == 64
    _refused(pictures.url("/chain?n=3"), options, "more than 2 times")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("data:image/png;base64,iVBORw0KGgo=", "inline data: pictures are not used"),
        ("ftp://example.org/x.png", "cannot fetch ftp: pictures"),
        ("   ", "no picture URL given"),
    ],
)
def test_refused_schemes(url: str, match: str) -> None:
    assert not _refused(url, FetchOptions(), match).transient


def test_private_host_refused_without_traffic(pictures) -> None:
    error = _refused(pictures.url("/alpha.png"), FetchOptions(), "127.0.0.1 is a loopback address")
    assert "allow_private_hosts" in str(error) and not error.transient


def test_every_redirect_hop_is_checked(pictures, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []

    def loopback_only(url: str, options: FetchOptions | None = None) -> None:
        checked.append(url)
        if urlsplit(url).hostname != "127.0.0.1":  # the test server itself is allowed, nothing else
            check_host_allowed(url, options)

    monkeypatch.setattr(tasks.guarded_http, "check_host_allowed", loopback_only)
    start = pictures.url("/redirect-metadata")
    error = _refused(start, FetchOptions(timeout_s=5), r"169\.254\.169\.254 is a link-local")
    assert not error.transient
    assert checked == [start, "http://169.254.169.254/latest/meta-data/"]


def test_bad_limits_are_refused(pictures, options) -> None:
    with pytest.raises(ConfigurationError, match="max_side"):
        fetch_picture(pictures.url("/alpha.png"), options, max_side=0)


# --------------------------------------------------------------------------- or none


def test_or_none_logs_one_warning_for_permanent_failures(pictures, options, caplog) -> None:
    for path, words in (("/missing.png", "404"), ("/fake.png", "not a supported image"),
                        ("/big.png", "megapixels")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pagereel.images"):
            assert fetch_picture_or_none(pictures.url(path), options) is None
        records = [r for r in caplog.records if r.name == "pagereel.images"]
        assert len(records) == 1 and records[0].levelno == logging.WARNING
        assert pictures.url(path) in records[0].getMessage() and words in records[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pagereel.images"):
        assert fetch_picture_or_none(pictures.url("/alpha.png"), FetchOptions()) is None  # private host
    assert len(caplog.records) == 1 and "loopback" in caplog.records[0].getMessage()


def test_or_none_raises_transient_failures(pictures, options, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="pagereel.images"):
        with pytest.raises(FetchError, match="503") as info:
            fetch_picture_or_none(pictures.url("/busy.png"), options)
    assert info.value.transient and not caplog.records


def test_or_none_passes_pictures_through(pictures, options) -> None:
    picture = fetch_picture_or_none(pictures.url("/wide.png"), options, max_side=200)
    assert picture is not None and (picture.width, picture.height) == (200, 50)
