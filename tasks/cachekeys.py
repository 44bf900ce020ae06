"""Cache keys derived from the code a stage really runs, never from hand-kept lists.

A stage's key covers the source of its module and of every first-party module (``tasks.*``,
``kernels.*``) that module imports, transitively, found by parsing the sources with :mod:`ast`
(nothing is executed), plus the versions of the libraries among those imports that change the
bytes a stage makes: PyAV with its FFmpeg and x264 builds, the speech engine, Pillow, NumPy,
Numba, trafilatura. Everything is worked out once per process; an edit to a module shows up in
the keys of the next process. What a source file imports is also kept on disk under the SHA-256
of its bytes (see :func:`memo_dir`), so a new process parses only files that changed.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.exceptions import HashError
from prefect.utilities.hashing import hash_objects
from pydantic import BaseModel

#: Top-level packages whose modules are pagereel's own: their sources are part of a key.
FIRST_PARTY = ("tasks", "kernels")


# --------------------------------------------------------------------------- first-party sources


@functools.cache
def _package_dirs(top: str) -> tuple[Path, ...]:
    """Folders of top-level package ``top``, as the import system finds them (nothing is run)."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return ()
    return tuple(Path(p) for p in (spec.submodule_search_locations or ())) if spec else ()


@functools.cache
def _module_path(name: str) -> Path | None:
    """The source file of first-party module ``name``, or None when no such module exists."""
    top, *rest = name.split(".")
    for folder in _package_dirs(top):
        base = folder.joinpath(*rest)
        for candidate in (base / "__init__.py", base.with_suffix(".py") if rest else None):
            if candidate is not None and candidate.is_file():
                return candidate
    return None


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module name of a ``from ... import`` (relative forms included)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


#: Narration tasks key their results in parallel threads; one parse at a time.
_PARSE_LOCK = threading.Lock()
#: Bumped when what is kept per source file changes shape.
_MEMO_FORMAT = 1


def memo_dir() -> Path:
    """Where what each source file imports is kept between processes (the user's cache folder)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pagereel" / f"imports-v{_MEMO_FORMAT}"


@functools.cache
def _scanned(name: str) -> tuple[str, frozenset[str]]:
    """The SHA-256 of module ``name``'s source and the module names its imports mention, resolved."""
    path = _module_path(name)
    if path is None:
        return hashlib.sha256(b"").hexdigest(), frozenset()
    source = path.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    # Relative imports resolve against the module's name and whether it is a package: both name the entry.
    memo = memo_dir() / f"{name}-{path.name}-{digest}.json"
    try:
        return digest, frozenset(json.loads(memo.read_text())["imports"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    names = _parsed_imports(source, path, name)
    _keep(memo, {"imports": sorted(names)})
    return digest, names


def _parsed_imports(source: bytes, path: Path, name: str) -> frozenset[str]:
    with _PARSE_LOCK:  # CPython 3.11's parser is not safe in threads at once (gh-106905's SystemError)
        tree = ast.parse(source, filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(node, name, is_package)
            names.add(base)
            # `from tasks import text` names a module; `from tasks.text import WORD` names a value.
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return frozenset(names)


def _keep(memo: Path, entry: dict[str, Any]) -> None:
    """Write ``entry`` to ``memo`` whole (renamed into place), or not at all: a read-only home just parses again."""
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=memo.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump(entry, f)
        os.replace(tmp, memo)
    except OSError:
        pass


@functools.cache
def imports_of(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """(first-party modules, other top-level packages) that module ``name`` imports anywhere in its source.

    Imports inside functions and ``TYPE_CHECKING`` blocks count too: a lazy import is still code
    the stage runs, and a key that says too much only costs a cache miss.
    """
    ours, others = set(), set()
    for imported in _scanned(name)[1]:
        top = imported.split(".")[0]
        if top in FIRST_PARTY:
            ours.update(m for m in _with_parents(imported) if _module_path(m) is not None)
        elif top:
            others.add(top)
    ours.discard(name)
    return frozenset(ours), frozenset(others)


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs its packages' ``__init__`` too."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@functools.cache
def module_closure(name: str) -> frozenset[str]:
    """``name``, its packages and every first-party module they import, transitively."""
    seen: set[str] = set()
    todo = [m for m in _with_parents(name) if _module_path(m) is not None]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(imports_of(module)[0] - seen)
    return frozenset(seen)


def _source_digest(name: str) -> str:
    return _scanned(name)[0]


# --------------------------------------------------------------------------- library versions


def _dist(*names: str) -> str:
    found = []
    for dist in names:
        try:
            found.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} absent")
    return ";".join(found)


def _pyav() -> str:
    import av

    # The wheel bundles FFmpeg and x264 under content-hashed file names: a rebuilt encoder is a new name.
    bundled = sorted(p.name for d in Path(av.__file__).parent.parent.glob("av*libs") for p in d.iterdir())
    versions = sorted(getattr(av, "library_versions", {}).items())
    return f"{_dist('av')};ffmpeg {getattr(av, 'ffmpeg_version_info', '?')};{versions};{bundled}"


def _espeak() -> str:
    import ctypes

    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    version = (lib.espeak_Info(None) or b"?").decode("utf-8", "replace")
    return f"{_dist('espeakng-loader')};espeak-ng {version}"


def _pillow() -> str:
    from PIL import features

    return f"{_dist('pillow')};freetype {features.version('freetype2')}"


#: For each top-level import that shapes a stage's output, what says which build of it is installed.
#: Libraries not listed (httpx, pydantic, ...) move bytes around without changing them.
LIBRARY_FINGERPRINTS: dict[str, Callable[[], str]] = {
    "av": _pyav,
    "espeakng_loader": _espeak,
    "PIL": _pillow,
    "numpy": lambda: _dist("numpy"),
    "numba": lambda: _dist("numba", "llvmlite"),
    "trafilatura": lambda: _dist("trafilatura", "lxml", "justext", "htmldate"),
    "lxml": lambda: _dist("lxml"),
    "onnxruntime": lambda: _dist("onnxruntime"),
    "onnx": lambda: _dist("onnx"),
    "charset_normalizer": lambda: _dist("charset-normalizer"),
    # tasks/fonts.py: the font files text is drawn with (packaged and system ones), read with fontTools.
    "fontTools": lambda: f"{_dist('fonttools')} {_fonts()}",
}


def _fonts() -> str:
    from tasks.fonts import fingerprint

    return fingerprint()


@functools.cache
def library_fingerprint(top: str) -> str:
    """Which build of library ``top`` (an import name) is installed; empty for one not in the table."""
    probe = LIBRARY_FINGERPRINTS.get(top)
    if probe is None:
        return ""
    try:
        return f"{top}:{probe()}"
    except (ImportError, OSError, AttributeError) as exc:  # a missing library cannot have made a cached result
        return f"{top}: unavailable ({type(exc).__name__})"


def libraries_of(module: str) -> tuple[str, ...]:
    """The byte-shaping libraries the code of ``module`` imports (sorted import names)."""
    tops: set[str] = set()
    for name in module_closure(module):
        tops |= imports_of(name)[1]
    return tuple(sorted(t for t in tops if t in LIBRARY_FINGERPRINTS))


#: Tasks starting together in threads need the same digests: one thread works them out, the others wait.
_DIGEST_LOCK = threading.Lock()


def stage_code_digest(module: str) -> str:
    """One digest of the sources a module runs and the builds of the libraries that shape its output."""
    with _DIGEST_LOCK:
        return _stage_code_digest(module)


@functools.cache
def _stage_code_digest(module: str) -> str:
    h = hashlib.sha256()
    for name in sorted(module_closure(module)):
        h.update(f"{name}={_source_digest(name)}\n".encode())
    for top in libraries_of(module):
        h.update(f"{library_fingerprint(top)}\n".encode())
    return h.hexdigest()


def forget() -> None:
    """Drop what this process worked out, as if it had just started (for tests that edit sources)."""
    for cached in (_package_dirs, _module_path, _scanned, imports_of, module_closure, library_fingerprint,
                   _stage_code_digest):
        cached.cache_clear()


# --------------------------------------------------------------------------- the policy


@dataclass
class StageCode(CachePolicy):
    """Key on the code a task's stage really runs: its module's import closure and shaping libraries.

    Prefect's TASK_SOURCE hashes one function; a stage's output also depends on the helpers,
    models and kernels it calls and on the encoder and speech engine builds, so a change to any of
    them must invalidate its cached results.
    """

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        return stage_code_digest(task_ctx.task.fn.__module__)


@dataclass
class NarrationEngine(CachePolicy):
    """Key on the name and version of the engine that speaks the task's ``voice`` input.

    A narration depends on the engine's build (espeak-ng's data, a Piper model file, a speech
    API's model), which no import of pagereel's code shows.
    """

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        voice = inputs.get("voice")
        if not isinstance(voice, str):
            return None
        from tasks.voices import engine_version

        return hashlib.sha256(engine_version(voice, inputs.get("speech")).encode()).hexdigest()


@dataclass
class DigestedInputs(CachePolicy):
    """Prefect's INPUTS, with every ``bytes`` value (inside models too) standing as its SHA-256.

    INPUTS dumps the inputs to JSON before hashing them: a scene's narration PCM and pictures
    would be base64-encoded, then copied into a JSON string and its bytes, several times the
    size of the PCM held at once per task, and an hour's scenes are long. A digest is read from
    the bytes where they lie. (Not a subclass of ``Inputs``: a compound policy would swap it for
    a plain ``Inputs``.)
    """

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        if not inputs:
            return None
        digested = {name: digested_value(value) for name, value in inputs.items()}
        try:
            return hash_objects(digested, raise_on_failure=True)
        except HashError as exc:
            raise ValueError(f"{exc}\n\nthe task's inputs cannot be keyed; give it cache_policy=NO_CACHE") from exc


def digested_value(value: Any) -> Any:
    """``value`` with bytes replaced by their digest and models by a dict naming their class."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"sha256": hashlib.sha256(value).hexdigest(), "size": memoryview(value).nbytes}
    if isinstance(value, BaseModel):
        fields = {name: digested_value(getattr(value, name)) for name in type(value).model_fields}
        return {"model": f"{type(value).__module__}.{type(value).__qualname__}", "fields": fields}
    if isinstance(value, dict):
        return {key: digested_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [digested_value(item) for item in value]
    return value


__all__ = [
    "FIRST_PARTY",
    "DigestedInputs",
    "NarrationEngine",
    "LIBRARY_FINGERPRINTS",
    "StageCode",
    "digested_value",
    "forget",
    "imports_of",
    "libraries_of",
    "library_fingerprint",
    "module_closure",
    "stage_code_digest",
]
