"""Fonts that draw every script an article may be written in, and which one draws each character.

Faces are tried in order: Pillow's built-in font (Latin; what English videos have always used),
then Noto families installed as Python packages (Latin, Greek and Cyrillic; Arabic; Devanagari;
Thai) and Heebo (Hebrew), then system fonts found with fontconfig for what no package carries
(CJK from Debian's ``fonts-noto-cjk``; emoji from a scalable emoji font). A line is drawn in the
first face that covers all of it; otherwise it is cut into runs, each in the first face that
covers its characters. A character no face covers is left out, with one warning that names the
system package to install, rather than drawn as an empty box.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import shutil
import struct
import subprocess
import unicodedata
from dataclasses import dataclass
from importlib import metadata, resources

from fontTools.ttLib import TTCollection, TTFont, TTLibError
from PIL import ImageFont

log = logging.getLogger("pagereel.fonts")

#: Python packages that carry fonts (SIL Open Font License), in the order they are tried.
PACKAGED_FONTS = (
    "fontpkg_noto_sans",  # Latin, Greek, Cyrillic, Vietnamese
    "fontpkg_noto_sans_arabic",
    "fontpkg_noto_sans_devanagari",
    "fontpkg_noto_sans_thai",
    "fontpkg_heebo",  # Hebrew
)
#: What to look for among the system's fonts: a name, fontconfig's pattern, the Debian package that has one.
SYSTEM_FONTS = (
    ("CJK", ":charset=4e00 3042 ac00:scalable=true", "fonts-noto-cjk"),
    ("emoji", ":charset=1f600:scalable=true:color=false", "fonts-symbola"),
)
#: Set to "0" to use no system font at all (the packaged ones still draw Latin, Arabic, ...).
SYSTEM_FONTS_ENV = "PAGEREEL_SYSTEM_FONTS"


@dataclass(frozen=True)
class Face:
    """One font file (a face of a collection where ``index`` says), and the characters it has glyphs for."""

    name: str
    path: str | None  # None: Pillow's built-in font
    index: int

    @functools.cached_property
    def coverage(self) -> frozenset[int]:
        """Read the first time text asks: the render key only needs the file (a CJK collection's table takes 0.1 s)."""
        if self.path is None:
            data = getattr(ImageFont.load_default(size=12), "font_bytes", b"")
            return _coverage(TTFont(io.BytesIO(data), lazy=True)) if data else frozenset(range(0x20, 0x7F))
        try:
            return _coverage(_open(self.path, self.index))
        except (OSError, IndexError, KeyError, ValueError, struct.error, TTLibError) as exc:
            # A file that opened but whose character map cannot be read draws nothing: its text is left
            # out with the usual warning, as for a character no face has, rather than failing the run.
            log.warning("font %s cannot be read (%s); pagereel draws no text with it", self.path, exc)
            return frozenset()

    def covers(self, ch: str) -> bool:
        return ord(ch) in self.coverage


def _open(path: str, index: int) -> TTFont:
    """Face ``index`` of a font file (of a collection for ``.ttc``); tables are read when asked for."""
    return TTCollection(path, lazy=True).fonts[index] if path.lower().endswith(".ttc") else TTFont(path, lazy=True)


def _coverage(font: TTFont) -> frozenset[int]:
    cmap = font.getBestCmap() or {}
    return frozenset(cmap)


def _builtin() -> Face:
    return Face("Pillow built-in", None, 0)


def _packaged(module: str) -> Face | None:
    try:
        files = resources.files(module) / "files"
    except ModuleNotFoundError:
        log.warning("the font package %s is not installed; reinstall pagereel to draw its script", module)
        return None
    fonts = sorted(f for f in files.iterdir() if f.name.endswith((".ttf", ".otf")) and "Italic" not in f.name)
    if not fonts:
        return None
    path = str(fonts[0])
    return Face(fonts[0].name.split("[")[0].split(".")[0], path, 0)


def _system(pattern: str) -> Face | None:
    if os.environ.get(SYSTEM_FONTS_ENV, "1") == "0" or not shutil.which("fc-list"):
        return None
    try:
        listed = subprocess.run(["fc-list", pattern, "file", "index", "style"], capture_output=True, text=True,
                                timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    # The regular style of a sans family first, when there is one.
    found = []
    for line in listed.splitlines():
        path, _, rest = line.partition(":")
        index = next((int(p.split("=")[1]) for p in rest.split(":") if p.strip().startswith("index=")), 0)
        regular = "Regular" in rest
        found.append((not regular, "Bold" in rest or "Italic" in rest, "Sans" not in path, path.strip(), index))
    for *_, path, index in sorted(found):
        try:
            _open(path, index)  # the first file that opens as a font
            return Face(os.path.basename(path), path, index)
        except (OSError, IndexError, ValueError) as exc:
            log.debug("system font %s is unreadable: %s", path, exc)
    return None


@functools.cache
def faces() -> tuple[Face, ...]:
    """Every face text may be drawn in, in the order they are tried."""
    out = [_builtin()]
    out += [face for module in PACKAGED_FONTS if (face := _packaged(module)) is not None]
    out += [face for _, pattern, _ in SYSTEM_FONTS if (face := _system(pattern)) is not None]
    return tuple(out)


def fingerprint() -> str:
    """Which font files text is drawn with (package versions, system files' sizes and times): part of the render key."""
    parts = []
    for face in faces():
        if face.path is None:
            continue  # Pillow's own font: Pillow's build is in the key already
        module = next((m for m in PACKAGED_FONTS if f"{os.sep}{m}{os.sep}" in face.path), None)
        if module is not None:
            parts.append(f"{module}={metadata.version(module.replace('_', '-'))}")
        else:
            stat = os.stat(face.path)
            parts.append(f"{face.path}#{face.index}:{stat.st_size}:{stat.st_mtime_ns}")
    return ",".join(parts)


@functools.lru_cache(maxsize=256)
def load(face: Face, size: int) -> ImageFont.FreeTypeFont:
    """``face`` at ``size`` pixels."""
    if face.path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(face.path, size=size, index=face.index)


def joins_previous(ch: str) -> bool:
    """True for a character drawn as part of the one before: combining marks, joiners, variation selectors."""
    return unicodedata.category(ch) in ("Mn", "Mc", "Me") or ch in "\u200c\u200d" or 0xFE00 <= ord(ch) <= 0xFE0F


def face_for_text(text: str) -> Face:
    """The first face that has every character of ``text`` (else the one with the most)."""
    chars = {ord(c) for c in text if not c.isspace()}
    best = faces()[0]
    best_missing = len(chars - best.coverage)
    for face in faces():
        missing = len(chars - face.coverage)
        if missing == 0:
            return face
        if missing < best_missing:
            best, best_missing = face, missing
    return best


def runs(text: str) -> list[tuple[Face, str]]:
    """``text`` cut into runs, each with the face that draws it; characters no face has are left out."""
    whole = face_for_text(text)
    if all(whole.covers(c) or c.isspace() for c in text):
        return [(whole, text)] if text else []
    out: list[tuple[Face, str]] = []
    for ch in text:
        current = out[-1][0] if out else None
        if current is not None and (current.covers(ch) or joins_previous(ch) or ch.isspace()):
            out[-1] = (current, out[-1][1] + ch)
            continue
        face = next((f for f in faces() if f.covers(ch)), None)
        if face is None:
            if unicodedata.category(ch) != "Cf":  # a direction mark or joiner no face has: nothing to draw
                _warn_missing(ch)
            continue
        out.append((face, ch))
    return out


def _script_of(ch: str) -> str:
    code = ord(ch)
    if 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF:
        return "emoji"
    if (0x2E80 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF
            or 0xFF00 <= code <= 0xFFEF or 0x20000 <= code <= 0x3FFFF or 0x1100 <= code <= 0x11FF):
        return "CJK"
    return "other"


@functools.cache
def _warn_missing_script(script: str) -> None:
    package = {name: pkg for name, _, pkg in SYSTEM_FONTS}.get(script)
    if package:
        log.warning("no installed font draws %s characters; they are left out of the video's text. Install the "
                    "system package %s (apt-get install %s) to draw them", script, package, package)
    else:
        log.warning("no installed font draws some characters of the text; they are left out of the video's text")


def _warn_missing(ch: str) -> None:
    _warn_missing_script(_script_of(ch))


def missing(text: str) -> str:
    """The characters of ``text`` that no installed face draws (spaces and joiners aside)."""
    known = faces()
    return "".join(c for c in text if not c.isspace() and not joins_previous(c)
                   and not any(f.covers(c) for f in known) and unicodedata.category(c) != "Cf")
