"""Safe output paths and atomic writes: no half-written file ever sits where a finished one belongs."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from tasks.errors import ConfigurationError

log = logging.getLogger("pagereel.files")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_ID_CHARS = 80
# Folders this process has claimed: the shared lock lives as long as its open file does.
_claimed: dict[Path, int] = {}
_claimed_guard = threading.Lock()
# Staging folders of runs under way in this process: its own lock cannot keep them from its own sweep.
_in_use: set[Path] = set()


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


def staging_dir(folder: Path) -> Path:
    """A new ``.run-*.part`` folder inside ``folder`` for one run's files, kept from sweeps until released."""
    with _claimed_guard:
        path = Path(tempfile.mkdtemp(prefix=".run-", suffix=".part", dir=folder))
        _in_use.add(path)
    return path


def release_staging_dir(path: Path) -> None:
    """Delete a folder made by :func:`staging_dir` with whatever is left in it."""
    shutil.rmtree(path, ignore_errors=True)
    with _claimed_guard:
        _in_use.discard(path)


def sweep_stale_parts(folder: Path) -> list[Path]:
    """Delete the ``.*.part`` files and staging folders a killed run left in ``folder``; return what was deleted.

    A run killed by SIGKILL never reaches its ``finally``, so its temporary files stay. Each run
    holds a shared lock (flock) on the folder until its process ends; the sweep happens only
    when no other process holds it, so a concurrent run's file being written is never touched.
    """
    folder = Path(folder)
    with _claimed_guard:
        fd = _claimed.get(folder)
        if fd is None:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # the folder itself is the lock: no extra file
            _claimed[folder] = fd
        removed: list[Path] = []
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another live run uses this folder: its part files may be in progress
        else:
            for part in folder.glob(".*.part"):
                if part in _in_use:
                    continue
                if part.is_dir() and not part.is_symlink():  # a run's staging folder (flows.outputs)
                    shutil.rmtree(part, ignore_errors=True)
                else:
                    part.unlink(missing_ok=True)
                removed.append(part)
        fcntl.flock(fd, fcntl.LOCK_SH)
    if removed:
        log.warning("removed %d unfinished file(s) left in %s by an interrupted run", len(removed), folder)
    return removed
