"""Safe output paths and atomic writes: no half-written file ever sits where a finished one belongs."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from tasks.errors import ConfigurationError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_ID_CHARS = 80


def sanitize_workflow_id(raw: str) -> str:
    """Turn ``raw`` into a single safe folder name (no separators, no dots in front, bounded length)."""
    cleaned = _UNSAFE.sub("-", raw.replace("\x00", "")).strip(".-_")
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:MAX_ID_CHARS].strip(".-_")
    if not cleaned:
        cleaned = "run-" + hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:12]
    return cleaned


def workflow_id_for(url: str) -> str:
    """A readable, stable id for a URL: host and last path part, plus a short hash of the whole URL."""
    parts = urlsplit(url)
    host = (parts.hostname or "page").removeprefix("www.")
    stem = Path(parts.path.rstrip("/")).stem if parts.path.strip("/") else ""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:8]
    return sanitize_workflow_id("-".join(p for p in (host, stem[:40], digest) if p))


def run_dir(out_dir: Path, workflow_id: str) -> Path:
    """``out_dir/<sanitized id>``, created, and proven to lie inside ``out_dir``."""
    base = Path(out_dir).resolve()
    target = (base / sanitize_workflow_id(workflow_id)).resolve()
    if target.parent != base:
        raise ConfigurationError(f"workflow id {workflow_id!r} does not name a folder inside {base}")
    target.mkdir(parents=True, exist_ok=True)
    return target


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it into place."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
