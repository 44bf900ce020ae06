"""The espeak-ng engine: the library (from espeakng-loader) through ctypes, with word events.

espeak-ng keeps its state in globals and is not thread-safe, so the library is loaded once per
process and every call into it is serialized behind one lock. Synthesis runs in synchronous mode:
``espeak_Synth`` calls our callback with each block of samples and the events that fall in it.
The same loaded library also turns text into phonemes for the neural engines (:func:`phonemes`).
"""

from __future__ import annotations

import ctypes
import difflib
import logging
import os
import re
import struct
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tasks.errors import ConfigurationError, RenderError
from tasks.voices.base import Speech

log = logging.getLogger("pagereel.voices.espeak")

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() when the data is unusable
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_PHONEME, _EVENT_SAMPLERATE = 0, 1, 7, 8
_PHONEMES_IPA = 0x02
_BUFFER_MS = 200

# espeak-ng keeps its pitch-flutter phase, roughness cycle count and automatic gain in function
# statics that no API resets, so the same text comes out a few samples longer or shorter depending
# on what was said before. Putting them back to their initial values before each synthesis makes a
# narration depend on its inputs alone (cache keys, runners and retries then agree byte for byte).
_WAVEGEN_STATICS = {"Flutter_ix": 0, "cycle_count": 0, "agc": 256}
_RAND_SEED = 1

#: BCP 47 subtags a language tag may lose to find a voice: region (US, 419), script (Hans), variant (1996).
_DROPPABLE_SUBTAG = re.compile(r"[a-z]{2}|[0-9]{3}|[a-z]{4}|[a-z0-9]{5,8}|[0-9][a-z0-9]{3}")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT``; natural alignment gives the 40-byte 64-bit layout (user_data at offset 24)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters (code points) of the text
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds from the start of this synthesis
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    """``espeak_VOICE``; ``languages`` is a run of (priority byte, NUL-terminated tag) ended by a 0 byte."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class _VoiceInfo:
    name: str
    identifier: str  # what espeak_SetVoiceByName is given, e.g. "gmw/en-US"
    languages: tuple[tuple[int, str], ...]  # (priority, tag); a lower number is a better match


@dataclass
class _Catalogue:
    """Every way a user may name a voice (tag, file name, identifier, display name), lower-cased."""

    by_key: dict[str, str] = field(default_factory=dict)
    codes: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)


class _Engine:
    """The loaded library; use only while holding ``_LOCK``."""

    def __init__(self) -> None:
        import espeakng_loader

        lib_path, data_path = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as exc:
            raise RenderError(f"cannot load espeak-ng from {lib_path} ({exc}); reinstall espeakng-loader") from exc
        _declare(lib)
        self.sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, os.fsencode(data_path), _INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            raise RenderError(f"espeak-ng could not read its data in {data_path}; reinstall espeakng-loader")
        self.lib = lib
        self.version = (lib.espeak_Info(None) or b"?").decode("utf-8", "replace")
        self.chunks: list[bytes] = []
        self.events: list[tuple[int, int, int, int, int, str]] = []
        self._callback = _SynthCallback(self._on_synth)  # kept here so it is never garbage-collected
        lib.espeak_SetSynthCallback(self._callback)
        self.catalogue = _catalogue(_list_voices(lib), Path(data_path))
        self._statics = _wavegen_statics(lib, lib_path)
        self._srand = _libc_srand()

    def _on_synth(self, wav: Any, numsamples: int, events: Any) -> int:
        if numsamples > 0 and wav:
            self.chunks.append(ctypes.string_at(wav, numsamples * 2))
        if events:
            i = 0
            while (e := events[i]).type != _EVENT_LIST_TERMINATED:
                name = bytes(e.id.string).split(b"\0", 1)[0] if e.type == _EVENT_PHONEME else b""
                self.events.append(
                    (e.type, e.text_position, e.length, e.audio_position, e.id.number, name.decode("utf-8", "replace"))
                )
                i += 1
        return 0  # carry on

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> tuple[np.ndarray, int, list[tuple[int, int, int]]]:
        """Samples (native int16), their rate, and (position, length, ms) of each word event."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ConfigurationError(
                f"espeak-ng refused the voice {voice!r}; `python -m flows status` lists the usable ones"
            )
        self.lib.espeak_SetParameter(_RATE, rate_wpm, 0)
        for static, value in self._statics:
            static.value = value
        if hasattr(self.lib, "espeak_ng_SetRandSeed"):
            self.lib.espeak_ng_SetRandSeed(_RAND_SEED)
        if self._srand is not None:
            self._srand(_RAND_SEED)  # breath noise in some voices comes from libc's rand()
        self.chunks, self.events = [], []
        data = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(data)
        status = self.lib.espeak_Synth(buffer, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if status != 0:
            raise RenderError(f"espeak-ng failed to synthesize the narration (espeak_Synth returned {status})")
        rate = self.sample_rate
        for kind, _pos, _len, _ms, number, _name in self.events:
            if kind == _EVENT_SAMPLERATE and number > 0:
                rate = number
        samples = np.frombuffer(b"".join(self.chunks), dtype=np.int16)
        words = [(pos, length, ms) for kind, pos, length, ms, _, _ in self.events if kind == _EVENT_WORD and pos > 0]
        self.chunks, self.events = [], []
        return samples, rate, words

    def clauses(self, text: str, voice: str) -> list[tuple[str, str, int, int]]:
        """(IPA with stress marks, its end punctuation, first and end character) of each clause of ``text``."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ConfigurationError(f"espeak-ng refused the voice {voice!r} for phonemes")
        data = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(data)
        text = data.decode("utf-8")
        pointer = ctypes.c_void_p(ctypes.addressof(buffer))
        clauses: list[tuple[str, str, int, int]] = []
        while pointer.value:
            start = pointer.value - ctypes.addressof(buffer)
            ipa = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA)
            end = min(pointer.value - ctypes.addressof(buffer) if pointer.value else len(data), len(data))
            # espeak-ng reads one character past the clause before it stops: that one starts the next clause.
            first = max(0, len(data[:start].decode("utf-8", "replace")) - 1) if start else 0
            last = len(data[:end].decode("utf-8", "replace")) - (1 if end < len(data) else 0)
            consumed = text[first:last].rstrip(" \"')]»”’")
            ending = consumed[-1] if consumed and consumed[-1] in ".,;:!?" else ""
            clauses.append(((ipa or b"").decode("utf-8", "replace").strip(), ending, first, last))
        return clauses

    def phoneme_owners(self, text: str, voice: str) -> list[tuple[str, int]]:
        """Each phoneme espeak-ng speaks for ``text`` (IPA, no stress) and the 1-based position of its word."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ConfigurationError(f"espeak-ng refused the voice {voice!r} for phonemes")
        self.lib.espeak_ng_SetPhonemeEvents(1, 1)
        try:
            self.chunks, self.events = [], []
            data = text.encode("utf-8")
            buffer = ctypes.create_string_buffer(data)
            self.lib.espeak_Synth(buffer, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            owners: list[tuple[str, int]] = []
            word = 0
            for kind, position, _length, _ms, _number, name in self.events:
                if kind == _EVENT_WORD and position > 0:
                    word = position
                elif kind == _EVENT_PHONEME and name:
                    owners.append((name, word))
            return owners
        finally:
            self.lib.espeak_ng_SetPhonemeEvents(0, 0)
            self.chunks, self.events = [], []


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    """The process's engine, loaded on first use; the caller holds ``_LOCK``."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def _after_fork_in_child() -> None:
    global _LOCK, _ENGINE
    if _LOCK.locked():
        _ENGINE = None  # another thread was mid-synthesis when the process forked: start afresh
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------- the engine


class EspeakNarrator:
    """espeak-ng behind :class:`tasks.voices.base.Narrator`: formant synthesis, a voice per language."""

    name = "espeak"

    def version(self, voice: str) -> str:
        with _LOCK:
            return _engine().version

    def voices(self) -> list[str]:
        """Voice codes :meth:`resolve` accepts as they are: language tags and voice file names."""
        with _LOCK:
            return list(_engine().catalogue.codes)

    def about(self, voice: str) -> str:
        with _LOCK:
            rate = _engine().sample_rate
        return f"{rate} Hz; espeak-ng data, GPL-3.0-or-later"

    def resolve(self, lang_or_voice: str) -> str:
        """Map a language ("en", "en-US", "de", "fr-FR") or voice ("en-us+f3") to an espeak-ng voice name.

        Tries the name exactly, then drops trailing region, script and variant subtags ("zh-Hans-CN",
        "zh-Hans", "zh"); raises :class:`ConfigurationError` naming close matches when nothing fits, so a
        typo such as "en-uss" is reported rather than read as "en".
        """
        with _LOCK:
            catalogue = _engine().catalogue
        wanted = unicodedata.normalize("NFC", lang_or_voice).strip().lower().replace("_", "-")
        base, _, variant = wanted.partition("+")
        if not base:
            raise ConfigurationError(f"voice {lang_or_voice!r} is empty; try one of: en, en-us, de, fr")
        if variant and variant not in catalogue.variants:
            raise ConfigurationError(
                f"unknown espeak-ng voice variant {variant!r} in {lang_or_voice!r}; "
                + _suggest(variant, catalogue.variants, "variants")
            )
        parts = base.split("-")
        for n in range(len(parts), 0, -1):
            identifier = catalogue.by_key.get("-".join(parts[:n]))
            if identifier is not None:
                return f"{identifier}+{variant}" if variant else identifier
            if not _DROPPABLE_SUBTAG.fullmatch(parts[n - 1]):
                break
        raise ConfigurationError(
            f"unknown espeak-ng voice {lang_or_voice!r}; " + _suggest(base, catalogue.codes, "voices")
        )

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> Speech:
        """Speak ``text`` (already speakable) with the resolved ``voice``."""
        with _LOCK:
            samples, rate, events = _engine().synthesize(text, voice, int(rate_wpm))
        return Speech(samples=samples, sample_rate=rate, marks=events)


NARRATOR = EspeakNarrator()


def clauses(text: str, voice: str) -> list[tuple[str, str, int, int]]:
    """Piper's input: the IPA of each clause of ``text`` (espeak_TextToPhonemes), its end punctuation,
    and the 0-based character range of the text it came from."""
    resolved = NARRATOR.resolve(voice)
    with _LOCK:
        return _engine().clauses(text, resolved)


def phoneme_owners(text: str, voice: str) -> list[tuple[str, int]]:
    """Every phoneme espeak-ng says for ``text`` with the 1-based text position of its word (phoneme events)."""
    resolved = NARRATOR.resolve(voice)
    with _LOCK:
        engine = _engine()
        for static, value in engine._statics:
            static.value = value
        return engine.phoneme_owners(text, resolved)


# --------------------------------------------------------------------------- voices


def _suggest(wanted: str, candidates: list[str], what: str) -> str:
    close = difflib.get_close_matches(wanted, candidates, n=5, cutoff=0.6)
    if close:
        return f"did you mean: {', '.join(close)}?"
    return f"no {what} come close; `python -m flows status` lists them all"


def _list_voices(lib: ctypes.CDLL) -> list[_VoiceInfo]:
    """The voices espeak-ng lists (mbrola and variants left out, as espeak_ListVoices(NULL) does)."""
    voices: list[_VoiceInfo] = []
    listed = lib.espeak_ListVoices(None)
    i = 0
    while listed and listed[i]:
        v = listed[i].contents
        languages: list[tuple[int, str]] = []
        p = v.languages or 0
        while p and (priority := ctypes.string_at(p, 1)[0]) != 0:
            tag = ctypes.string_at(p + 1)
            languages.append((priority, tag.decode("utf-8", "replace").lower()))
            p += len(tag) + 2
        name = (v.name or b"").decode("utf-8", "replace")
        identifier = (v.identifier or b"").decode("utf-8", "replace")
        if identifier:
            voices.append(_VoiceInfo(name, identifier, tuple(languages)))
        i += 1
    return voices


def _catalogue(voices: list[_VoiceInfo], data_path: Path) -> _Catalogue:
    catalogue = _Catalogue()
    best: dict[str, tuple[int, int, int]] = {}  # tag -> (priority, not its file name, list order)
    for order, voice in enumerate(voices):
        file_name = voice.identifier.rsplit("/", 1)[-1].lower()
        for priority, tag in voice.languages:
            rank = (priority, tag != file_name, order)
            if tag and (tag not in best or rank < best[tag]):
                best[tag] = rank
                catalogue.by_key[tag] = voice.identifier
    codes = set(best)
    for voice in voices:
        file_name = voice.identifier.rsplit("/", 1)[-1].lower()
        codes.add(file_name)
        for key in (file_name, voice.identifier.lower(), voice.name.lower()):
            catalogue.by_key.setdefault(key, voice.identifier)
    catalogue.codes = sorted(codes)
    variants_dir = data_path / "voices" / "!v"
    if variants_dir.is_dir():
        catalogue.variants = sorted(p.name.lower() for p in variants_dir.iterdir() if p.is_file())
    return catalogue


# --------------------------------------------------------------------------- library plumbing


def _declare(lib: ctypes.CDLL) -> None:
    c_int, c_uint, c_void_p, c_char_p = ctypes.c_int, ctypes.c_uint, ctypes.c_void_p, ctypes.c_char_p
    lib.espeak_Initialize.argtypes = [c_int, c_int, c_char_p, c_int]
    lib.espeak_Initialize.restype = c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [c_char_p]
    lib.espeak_SetVoiceByName.restype = c_int
    lib.espeak_SetParameter.argtypes = [c_int, c_int, c_int]
    lib.espeak_SetParameter.restype = c_int
    lib.espeak_Synth.argtypes = [c_void_p, ctypes.c_size_t, c_uint, c_int, c_uint, c_uint, c_void_p, c_void_p]
    lib.espeak_Synth.restype = c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = c_int
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(c_void_p), c_int, c_int]
    lib.espeak_TextToPhonemes.restype = c_char_p
    lib.espeak_ng_SetPhonemeEvents.argtypes = [c_int, c_int]
    lib.espeak_ng_SetPhonemeEvents.restype = c_int
    lib.espeak_Info.argtypes = [c_void_p]
    lib.espeak_Info.restype = c_char_p
    lib.espeak_ListVoices.argtypes = [c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = c_int


def _libc_srand() -> Any:
    try:
        srand = ctypes.CDLL(None).srand
    except (OSError, AttributeError, TypeError):
        return None
    srand.argtypes = [ctypes.c_uint]
    srand.restype = None
    return srand


def _wavegen_statics(lib: ctypes.CDLL, lib_path: str) -> list[tuple[ctypes.c_int, int]]:
    """The statics of ``_WAVEGEN_STATICS`` in the loaded library, found through its ELF symbol table.

    Returns ``[]`` (and warns once) when they cannot be found safely: narration then still works,
    but the same text may come out a few samples different from one call to the next.
    """
    try:
        symbols = _elf_symbols(Path(lib_path).read_bytes())
        synth = [value for sym, value in symbols if sym == "espeak_Synth"]
        if len(synth) != 1:
            raise LookupError("espeak_Synth is not in the symbol table")
        base = ctypes.cast(lib.espeak_Synth, ctypes.c_void_p).value - synth[0]
        found: list[tuple[ctypes.c_int, int]] = []
        for name, initial in _WAVEGEN_STATICS.items():
            # GCC names a function's static "agc.6035"; clang "Wavegen.agc".
            offsets = [off for sym, off in symbols if sym.split(".")[0] == name or sym.endswith("." + name)]
            if len(offsets) != 1:
                raise LookupError(f"{len(offsets)} symbols named {name}")
            static = ctypes.c_int.from_address(base + offsets[0])
            found.append((static, initial))
        flutter, cycles, agc = (s.value for s, _ in found)
        if not (0 <= flutter < 0x170 * 64 and cycles >= 0 and 0 < agc <= 256):
            raise LookupError(f"implausible values {flutter}, {cycles}, {agc}")
        return found
    except (OSError, LookupError, ValueError, struct.error) as exc:
        log.warning("espeak-ng's wavegen state cannot be reset (%s): the same narration may differ slightly "
                    "from one call to the next", exc)
        return []


def _elf_symbols(image: bytes) -> list[tuple[str, int]]:
    """Values of the 4-byte data objects and of ``espeak_Synth`` in a little-endian ELF64 file's .symtab."""
    if image[:4] != b"\x7fELF" or image[4] != 2 or image[5] != 1:
        raise ValueError("not a little-endian ELF64 file")
    (shoff,) = struct.unpack_from("<Q", image, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", image, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", image, shoff + i * shentsize) for i in range(shnum)]
    symtab = next((s for s in sections if s[1] == 2), None)  # SHT_SYMTAB: absent from stripped builds
    if symtab is None:
        raise LookupError("the library is stripped")
    strtab = sections[symtab[6]]
    str_off = strtab[4]
    out: list[tuple[str, int]] = []
    for off in range(symtab[4], symtab[4] + symtab[5], 24):
        st_name, st_info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", image, off)
        kind = st_info & 0xF
        if shndx == 0 or not ((kind == 1 and size == 4) or kind == 2):  # STT_OBJECT of an int, or STT_FUNC
            continue
        end = image.index(b"\0", str_off + st_name)
        name = image[str_off + st_name : end].decode("ascii", "replace")
        if kind == 1 or name == "espeak_Synth":
            out.append((name, value))
    return out
