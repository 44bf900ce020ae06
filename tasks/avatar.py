"""Presenters: two drawn by pagereel whose mouths follow the narration, or a user's PNG that pulses with it.

An avatar is prepared once per scene as a few RGBA sprites (one per loudness level); each frame
only picks a sprite by the narration's loudness, so nothing is drawn per frame.
"""

from __future__ import annotations

import io
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tasks.errors import ConfigurationError

BUILTIN_AVATARS: tuple[str, ...] = ("ada", "max")
LEVELS = 6
MAX_AVATAR_BYTES = 20_000_000
MAX_AVATAR_PIXELS = 4096 * 4096
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class AvatarSprites:
    """One RGBA sprite per loudness level, all the same size."""

    name: str
    sprites: tuple[np.ndarray, ...]

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.sprites[0].shape[:2]
        return w, h

    def for_level(self, loudness: float) -> np.ndarray:
        """The sprite for a loudness in 0..1."""
        i = int(min(max(loudness, 0.0), 1.0) * (len(self.sprites) - 1) + 0.5)
        return self.sprites[i]


def check_avatar(spec: str | None) -> str | None:
    """Validate an avatar choice before any rendering starts; return it normalised."""
    if spec is None or spec == "":
        return None
    if spec.lower() in BUILTIN_AVATARS:
        return spec.lower()
    path = Path(spec).expanduser()
    if not path.suffix and not path.exists():
        raise ConfigurationError(
            f"avatar {spec!r} is neither a built-in presenter ({', '.join(BUILTIN_AVATARS)}) nor a PNG file"
        )
    _decode_png(_png_bytes(path), str(path))
    return str(path.resolve())


def read_avatar_png(spec: str) -> bytes:
    """The checked bytes of PNG avatar ``spec``, read here: they travel to the workers with each scene."""
    path = Path(spec).expanduser()
    data = _png_bytes(path)
    _decode_png(data, str(path))
    return data


def load_avatar(spec: str, height: int, png: bytes | None = None) -> AvatarSprites:
    """Prepare the sprites of avatar ``spec`` (a built-in name, or a PNG: its bytes ``png`` or a path) at ``height``."""
    height = max(16, height - height % 2)
    name = spec.lower()
    if png is None and name == "ada":
        return AvatarSprites(name, tuple(_draw_ada(height, k / (LEVELS - 1)) for k in range(LEVELS)))
    if png is None and name == "max":
        return AvatarSprites(name, tuple(_draw_max(height, k / (LEVELS - 1)) for k in range(LEVELS)))
    image = _decode_png(png, spec) if png is not None else _decode_png(_png_bytes(Path(spec).expanduser()), spec)
    base_w = max(2, round(image.width * height / image.height))
    sprites = []
    for k in range(LEVELS):
        # The picture breathes with the voice: up to 8% larger, centred in a fixed canvas.
        scale = 0.92 + 0.08 * k / (LEVELS - 1)
        w, h = max(1, round(base_w * scale)), max(1, round(height * scale))
        canvas = Image.new("RGBA", (base_w, height), (0, 0, 0, 0))
        canvas.alpha_composite(image.resize((w, h), Image.Resampling.LANCZOS), ((base_w - w) // 2, height - h))
        sprites.append(np.ascontiguousarray(np.asarray(canvas, np.uint8)))
    return AvatarSprites(Path(spec).name, tuple(sprites))


def _png_bytes(path: Path) -> bytes:
    """Read a PNG file, refusing what is missing, not a file, too big or not a PNG; errors name this host."""
    host = socket.gethostname()
    try:
        info = path.stat()
    except (OSError, ValueError):  # ValueError: a NUL in the path
        raise ConfigurationError(f"avatar file {str(path)!r} does not exist or cannot be read on host {host!r}"
                                 ) from None
    if not stat.S_ISREG(info.st_mode):
        # A directory, a device (/dev/zero never ends) or a pipe: nothing to read a picture from.
        raise ConfigurationError(f"avatar {str(path)!r} is not a regular file; give a PNG file")
    if info.st_size > MAX_AVATAR_BYTES:
        raise ConfigurationError(
            f"avatar file {str(path)!r} is {info.st_size} bytes; at most {MAX_AVATAR_BYTES} are accepted")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_AVATAR_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"avatar file {str(path)!r} cannot be read on host {host!r}: "
                                 f"{exc.strerror or exc}") from None
    if len(data) > MAX_AVATAR_BYTES:
        raise ConfigurationError(f"avatar file {str(path)!r} grew past {MAX_AVATAR_BYTES} bytes while being read")
    if not data.startswith(_PNG_MAGIC):
        raise ConfigurationError(f"avatar file {str(path)!r} is not a PNG image; give a PNG with transparency")
    return data


def _decode_png(data: bytes, label: str) -> Image.Image:
    if not data.startswith(_PNG_MAGIC):
        raise ConfigurationError(f"avatar {label!r} is not a PNG image; give a PNG with transparency")
    if data[12:16] == b"IHDR":
        # The size is in the header: a decompression bomb is refused before Pillow allocates anything.
        width, height = struct.unpack(">II", data[16:24])
        _check_pixels(label, width, height)
    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)) as probe:
            _check_pixels(label, probe.width, probe.height)
            probe.load()
            return probe.convert("RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ConfigurationError(f"avatar file {label!r} cannot be read as an image: {exc}") from None


def _check_pixels(label: str, width: int, height: int) -> None:
    if width * height > MAX_AVATAR_PIXELS:
        raise ConfigurationError(f"avatar image {label!r} is {width}x{height}; at most 4096x4096 is accepted")


def _finish(img: Image.Image, height: int) -> np.ndarray:
    # Drawn at twice the size, then shrunk: cheap anti-aliasing for Pillow's shapes.
    w = round(img.width * height / img.height)
    small = img.resize((w - w % 2, height), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(small, np.uint8))


def _mouth(draw: ImageDraw.ImageDraw, cx: float, cy: float, width: float, openness: float, lip: tuple) -> None:
    h = 4 + openness * width * 0.55
    draw.ellipse((cx - width / 2, cy - h / 2, cx + width / 2, cy + h / 2), fill=(70, 20, 30, 255), outline=lip,
                 width=max(2, int(width * 0.08)))
    top = cy - h / 2
    if openness > 0.25 and h * 0.22 > 3:  # teeth show once the mouth is open wide enough to see them
        draw.rectangle((cx - width * 0.3, top + 2, cx + width * 0.3, top + h * 0.22), fill=(250, 250, 245))


def _draw_ada(height: int, openness: float) -> np.ndarray:
    s = 2 * height
    img = Image.new("RGBA", (int(s * 0.8), s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    w = img.width
    d.ellipse((w * 0.05, s * 0.62, w * 0.95, s * 1.3), fill=(60, 110, 180, 255))  # shoulders
    d.ellipse((w * 0.12, s * 0.04, w * 0.88, s * 0.72), fill=(70, 40, 30, 255))  # hair
    d.ellipse((w * 0.2, s * 0.12, w * 0.8, s * 0.68), fill=(238, 196, 160, 255))  # face
    d.pieslice((w * 0.16, s * 0.04, w * 0.84, s * 0.44), 180, 360, fill=(70, 40, 30, 255))  # fringe
    for ex in (0.38, 0.62):
        d.ellipse((w * ex - s * 0.03, s * 0.36, w * ex + s * 0.03, s * 0.42), fill=(40, 40, 60, 255))
    _mouth(d, w * 0.5, s * 0.54, w * 0.2, openness, (180, 70, 80, 255))
    return _finish(img, height)


def _draw_max(height: int, openness: float) -> np.ndarray:
    s = 2 * height
    img = Image.new("RGBA", (int(s * 0.8), s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    w = img.width
    d.rounded_rectangle((w * 0.02, s * 0.66, w * 0.98, s * 1.2), radius=int(s * 0.12), fill=(50, 50, 56, 255))
    d.polygon([(w * 0.42, s * 0.66), (w * 0.58, s * 0.66), (w * 0.5, s * 0.8)], fill=(235, 235, 240, 255))
    d.rounded_rectangle((w * 0.2, s * 0.1, w * 0.8, s * 0.68), radius=int(s * 0.14), fill=(196, 140, 100, 255))
    d.rounded_rectangle((w * 0.18, s * 0.06, w * 0.82, s * 0.22), radius=int(s * 0.06), fill=(30, 30, 30, 255))
    for ex in (0.37, 0.63):  # glasses
        d.ellipse((w * ex - s * 0.06, s * 0.32, w * ex + s * 0.06, s * 0.44), outline=(20, 20, 20, 255),
                  width=max(2, s // 90), fill=(220, 230, 240, 255))
        d.ellipse((w * ex - s * 0.02, s * 0.36, w * ex + s * 0.02, s * 0.40), fill=(30, 30, 30, 255))
    d.line((w * 0.43, s * 0.38, w * 0.57, s * 0.38), fill=(20, 20, 20, 255), width=max(2, s // 120))
    _mouth(d, w * 0.5, s * 0.56, w * 0.22, openness, (120, 60, 50, 255))
    return _finish(img, height)
