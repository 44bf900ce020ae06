"""Download and decode the pictures a storyboard's scenes show, refusing what is unsafe or unusable.

A picture goes through the same guards as a page (schemes, private hosts on every redirect hop,
a byte limit while streaming, one deadline), then Pillow decodes it only after its header says it
is small enough. What is kept is a compact JPEG (or PNG where transparency matters) at a bounded size.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import socket
from urllib.parse import urlsplit

import httpx
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import ConfigurationError, FetchError
from tasks.guarded_http import (
    guarded_get,
    local_picture_path,
    parse_content_type,
    picture_folder,
    read_body,
    read_local_file,
    status_error,
)
from tasks.models import FetchOptions, Storyboard

logger = logging.getLogger("pagereel.images")

#: Longest side a picture is kept at; frames are at most 4096 wide, 2560 leaves room for a Ken Burns zoom.
MAX_SIDE = 2560
#: Most pixels decoded for one picture (after JPEG's cheap reduced-size decoding), about 160 MB as RGBA.
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 90

SUPPORTED_HINT = "pagereel shows JPEG, PNG, GIF, WebP, AVIF and BMP pictures"
# Browsers' raster formats only: Pillow's other plugins (EPS runs Ghostscript, TIFF, PSD, ...) are attack surface.
_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP")
_ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8,*/*;q=0.5"
# Answers that announce what is certainly no raster image: refused before the body is read.
_NOT_PICTURES = {"text/html": "an HTML page", "application/xhtml+xml": "an HTML page", "image/svg+xml": "SVG"}
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, ImageCms.PyCMSError)


class Picture(BaseModel):
    """A decoded picture, re-encoded as compact JPEG or PNG bytes, with its size in pixels."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    url: str
    data: bytes = Field(repr=False)
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    @property
    def mime(self) -> str:
        """The MIME type of ``data``: image/png or image/jpeg (what fetch_picture writes)."""
        return "image/png" if self.data.startswith(b"\x89PNG") else "image/jpeg"

    def to_rgb(self, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """The pixels as a C-contiguous uint8 array of shape (height, width, 3), alpha flattened over ``background``."""
        if len(background) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in background):
            raise ConfigurationError(f"background must be three integers 0-255, not {background!r}")
        im = _decode(self.data, self.url, MAX_PIXELS, target=None)
        if im.mode in ("LA", "RGBA"):
            flat = Image.new("RGB", im.size, tuple(background))
            flat.paste(im.convert("RGB"), mask=im.getchannel("A"))
            im = flat
        elif im.mode != "RGB":
            im = im.convert("RGB")
        return np.ascontiguousarray(np.array(im, dtype=np.uint8))


# --------------------------------------------------------------------------- public


def fetch_picture(
    url: str, options: FetchOptions | None = None, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS,
    folder: str | None = None,
) -> Picture:
    """Fetch and decode the image at ``url`` (http, https, file:// or a local path), at most ``max_side`` a side.

    A local picture is read only from ``folder`` (the local page's own, see ``tasks.fetch.picture_folder``),
    and only if it is a regular file there; with ``folder`` None every local picture is refused.
    Raises FetchError: ``transient`` for timeouts, 429, 5xx and dropped connections; permanent for
    anything a retry cannot fix (4xx, refused schemes or hosts, too many bytes or pixels, not an image).
    """
    options = options or FetchOptions()
    if max_side < 1 or max_pixels < 1:
        raise ConfigurationError(f"max_side and max_pixels must be positive, not {max_side} and {max_pixels}")
    target = url.strip()
    if not target:
        raise FetchError("no picture URL given")
    scheme = urlsplit(target).scheme.lower()
    if scheme in ("http", "https"):
        data, source = _download(target, options)
    elif scheme == "file" or not scheme or (os.name == "nt" and len(scheme) == 1):
        data, source = _read_local(target, options, folder)
    elif scheme == "data":
        raise FetchError(f"inline data: pictures are not used ({target[:40]}...); give the picture's http(s) URL")
    else:
        raise FetchError(f"cannot fetch {scheme}: pictures ({target}); give an http(s) URL, a file:// URL or a path")
    return _picture(url, data, source, max_side, max_pixels)


def fetch_picture_or_none(
    url: str, options: FetchOptions | None = None, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS,
    folder: str | None = None,
) -> Picture | None:
    """fetch_picture, but a permanent failure logs one warning and gives None (the scene gets a themed backdrop).

    Transient failures still raise, so the task around this call can retry them.
    """
    try:
        return fetch_picture(url, options, max_side=max_side, max_pixels=max_pixels, folder=folder)
    except FetchError as exc:
        if exc.transient:
            raise
        logger.warning("leaving out picture %s: %s", url, exc)
        return None


def without_refused_pictures(storyboard: Storyboard, options: FetchOptions) -> Storyboard:
    """The storyboard with every picture these options refuse for its page taken out, one warning each.

    What the storyboard names is what the video may show: a web page's (or an edit's) ``file:``
    picture never reaches storyboard.json, the renderer or the thumbnail.
    """
    scenes = []
    for scene in storyboard.scenes:
        if scene.image and not options.picture_allowed(scene.image, storyboard.source_url):
            logger.warning("leaving out picture %.200s of scene %s: not allowed for this page", scene.image, scene.id)
            scene = scene.model_copy(update={"image": None})
        scenes.append(scene)
    return storyboard.model_copy(update={"scenes": scenes})


def picture_source_folder(url: str, page_url: str | None) -> str | None:
    """The folder fetch_picture may read ``url`` from: the local page's own for a local picture, else None."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return None
    folder = picture_folder(page_url)
    return str(folder) if folder is not None else None


# --------------------------------------------------------------------------- bytes in


def _download(target: str, options: FetchOptions) -> tuple[bytes, str]:
    return guarded_get(target, options, lambda response, deadline: (_read_body(response, deadline, options),
                                                                   str(response.url)), accept=_ACCEPT)


def _read_body(response: httpx.Response, deadline: float, options: FetchOptions) -> bytes:
    final = str(response.url)
    if not 200 <= response.status_code < 300:
        raise status_error(final, response.status_code, response.reason_phrase)
    mime, _ = parse_content_type(response.headers.get("content-type", ""))
    if mime in _NOT_PICTURES:
        raise _unsupported(final, f"{mime}: {_NOT_PICTURES[mime]}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > options.max_bytes:
        raise _too_big(final, options)
    return read_body(response, deadline, options, lambda: _too_big(final, options))


def _read_local(target: str, options: FetchOptions, folder: str | None) -> tuple[bytes, str]:
    host = socket.gethostname()
    path, data = read_local_file(target, options, lambda: local_picture_path(target, folder),
                                 lambda shown: _too_big(shown, options),
                                 missing=f"no such picture file on host {host!r}: {{path}}", where=f" on host {host!r}")
    return data, str(path)


def _too_big(source: str, options: FetchOptions) -> FetchError:
    return FetchError(
        f"{source} is larger than {options.max_bytes:,} bytes; raise fetch.max_bytes to accept bigger pictures"
    )


def _unsupported(source: str, detail: str) -> FetchError:
    return FetchError(f"{source} is not a supported image ({detail}); {SUPPORTED_HINT}")


# --------------------------------------------------------------------------- pixels


def _picture(url: str, data: bytes, source: str, max_side: int, max_pixels: int) -> Picture:
    if not data:
        raise FetchError(f"the picture is empty: {source} has no content")
    im = _decode(data, source, max_pixels, target=max_side)
    if max(im.size) > max_side:
        scale = max_side / max(im.size)
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        im = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buf = io.BytesIO()
    if im.mode in ("LA", "RGBA") and im.getextrema()[-1][0] < 255:
        im.save(buf, "PNG")
    else:
        im = im.convert("L" if im.mode in ("L", "LA") else "RGB")
        im.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return Picture(url=url, data=buf.getvalue(), width=im.width, height=im.height)


def _decode(data: bytes, source: str, max_pixels: int, *, target: int | None) -> Image.Image:
    """Decode the first frame upright, in mode L, LA, RGB or RGBA; ``target`` lets JPEG decode at reduced size."""
    try:
        # Lazy: only the header is read here, so the size is known before any pixel is decoded.
        im = Image.open(io.BytesIO(data), formats=_formats())
        if target is not None and im.format in ("JPEG", "MPO") and max(im.size) > target:
            # DCT scaling by 1/2, 1/4 or 1/8 (cheap, and far less memory), never below the size we resize to.
            side = max(im.size)
            im.draft(None, (-(-im.width * target // side), -(-im.height * target // side)))
        if im.width * im.height > max_pixels:
            raise _too_many_pixels(source, im.size, max_pixels)
        im.load()
        ImageOps.exif_transpose(im, in_place=True)  # a copy would double the memory of a 40 Mpx picture
        return _normalize(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own limit, hit while reading the header: an error above twice Image.MAX_IMAGE_PIXELS (far above
        # ours); above it, a warning that only reaches here where warnings are errors (as under pytest).
        raise FetchError(f"{source} is too large to decode safely ({str(exc).rstrip('.')}); give a smaller picture"
                         ) from exc
    except UnidentifiedImageError as exc:
        raise _unsupported(source, "SVG" if _looks_like_svg(data) else "not a picture format it knows") from exc
    except FetchError:
        raise
    except _DECODE_ERRORS as exc:
        raise _unsupported(source, f"damaged or unreadable: {exc}") from exc


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in head)


def _too_many_pixels(source: str, size: tuple[int, int], max_pixels: int) -> FetchError:
    w, h = size
    return FetchError(
        f"{source} is {w}x{h} pixels ({w * h / 1e6:.1f} megapixels), more than the {max_pixels / 1e6:g} "
        "megapixels pagereel decodes; give a smaller picture"
    )


def _normalize(im: Image.Image) -> Image.Image:
    """Bring any Pillow mode to L, LA, RGB or RGBA, with colours in sRGB."""
    mode = im.mode
    if mode in ("RGB", "CMYK") and im.info.get("icc_profile"):
        im = _to_srgb(im)
        mode = im.mode
    if mode in ("L", "RGB", "LA", "RGBA"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode in ("PA", "RGBa", "La"):
        return im.convert("RGBA")
    if mode.startswith("I"):
        # 16-bit samples (PNG, TIFF): convert("L") would clip everything above 255 to white.
        values = np.asarray(im, dtype=np.float64)
        return Image.fromarray(np.clip(values / 257.0 + 0.5, 0, 255).astype(np.uint8))
    if mode == "F":
        return Image.fromarray(np.clip(np.asarray(im) + 0.5, 0, 255).astype(np.uint8))
    return im.convert("RGB")  # CMYK without a profile, YCbCr, LAB, HSV


def _to_srgb(im: Image.Image) -> Image.Image:
    """Apply an embedded colour profile (CMYK print profiles, Display P3 photos); keep the image if it is broken."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        converted = ImageCms.profileToProfile(im, profile, _srgb(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im
    return converted if converted is not None else im


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def _formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in _FORMATS if f in Image.OPEN)
