"""A cache policy that keys a local file (a saved page, a picture on disk) on its bytes.

Pages and pictures are cached by their address, and fetched pages expire after ``fetch.cache_ttl_s``.
That suits http(s), where the address is all a run knows; a local file can be read again for almost
nothing, so its key also holds a hash of what it holds now and an edit on disk is seen by the next run.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext

from tasks.errors import FetchError
from tasks.guarded_http import local_path
from tasks.models import FetchOptions

_PIECE = 1 << 20


@dataclass
class LocalFileContent(CachePolicy):
    """Add the content of a local ``url`` input to the key; an http(s) URL adds nothing (its TTL applies)."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        url = inputs.get("url")
        if not isinstance(url, str):
            return None
        target = url.strip()
        scheme = urlsplit(target).scheme.lower()
        if scheme and scheme != "file" and not (os.name == "nt" and len(scheme) == 1):
            return None
        options = inputs.get("options")
        limit = options.max_bytes if isinstance(options, FetchOptions) else FetchOptions().max_bytes
        try:
            return content_digest(local_path(target), limit)
        except (OSError, FetchError):
            # Missing, unreadable or not a plain file: the fetch itself says why; never reuse a result for it.
            return uuid.uuid4().hex


def content_digest(path: os.PathLike[str] | str, limit: int) -> str:
    """SHA-256 of the first ``limit + 1`` bytes of the regular file at ``path`` (more is refused by the fetch).

    Opened without blocking and checked to be a regular file first, so a FIFO or a device never stalls a run.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        digest = hashlib.sha256()
        left = limit + 1
        while left > 0:
            piece = os.read(fd, min(_PIECE, left))
            if not piece:
                break
            digest.update(piece)
            left -= len(piece)
        return digest.hexdigest()
    finally:
        os.close(fd)
