"""A scene's big bytes kept beside the cached results under their SHA-256, so its record stays small.

A narration's PCM or a segment's MP4 sent through Prefect's JSON serializer is base64-encoded,
then copied into the record's JSON text and its bytes, and parsed back as many times when the
record is read: some five times the bytes held at once, and an hour's scenes are six times as
long as ten minutes'. Instead the narrate and render tasks write the bytes to the run's result
storage as a *blob* named by their digest (a file under ``blobs/`` of the local result folder,
or a Redis key ``pagereel:blob:<digest>``) and return a :class:`StoredNarration` or
:class:`StoredSegment` that names it. Whoever reads a blob back checks its digest, piece by
piece, so a blob is data whoever wrote it. A record whose blob is gone is a cache miss
(:func:`flows.records.check_record`'s storage checks it), so a cleared or evicted blob is made
again, never read half.

Blobs go where the results go, so a worker on another machine and the flow read the same ones:
with results in Redis, the bytes are there too. With a local result folder and workers on other
machines, the flow cannot see their disks, and the tasks return the bytes in the record, as
:class:`~tasks.models.Narration` and :class:`~tasks.models.Segment`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from tasks.models import Narration, Segment, WordTiming

#: The folder of the local result folder where blobs lie, one file per digest.
BLOB_DIR = "blobs"
#: Prefix of a blob's Redis key.
REDIS_PREFIX = "pagereel:blob:"
#: Bytes read, copied or checked in one step.
PIECE = 1 << 20
_HEX = re.compile(r"[0-9a-f]{64}")


class BlobMissing(OSError):
    """A blob is not in the store, or its bytes are not the ones its digest names."""


class _Blob(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    scene_id: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class NarrationFacts(BaseModel):
    """A :class:`~tasks.models.Narration` but its PCM, for models that keep the PCM elsewhere (``size`` bytes)."""

    sample_rate: int = Field(gt=0)
    voice: str
    words: list[WordTiming] = Field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.size / 2 / self.sample_rate  # type: ignore[attr-defined] - the model's ``size`` field


class SegmentFacts(BaseModel):
    """A :class:`~tasks.models.Segment` but its MP4, for models that keep the MP4 elsewhere."""

    duration_s: float = Field(gt=0)
    frames: int = Field(gt=0)
    width: int
    height: int
    fps: int
    still: bytes | None = None


class StoredNarration(_Blob, NarrationFacts):
    """A :class:`~tasks.models.Narration` whose PCM is the blob ``sha256``."""


class StoredSegment(_Blob, SegmentFacts):
    """A :class:`~tasks.models.Segment` whose MP4 is the blob ``sha256``."""


#: The models whose records name a blob (their ``"__class__"`` in a record).
BLOB_MODELS = frozenset(f"{m.__module__}.{m.__qualname__}" for m in (StoredNarration, StoredSegment))


# --------------------------------------------------------------------------- the stores


def _is_redis(storage: Any) -> bool:
    return hasattr(storage, "get_client") and not hasattr(storage, "basepath")


def _local_path(storage: Any, digest: str) -> Path:
    return Path(storage.basepath).expanduser() / BLOB_DIR / digest


def _checked_digest(digest: str) -> str:
    if not _HEX.fullmatch(digest):
        raise BlobMissing(f"{digest[:80]!r} is not a SHA-256 digest")
    return digest


def put(storage: Any, data: bytes) -> tuple[str, int]:
    """Keep ``data`` in ``storage`` (a result storage block) and return its (digest, size)."""
    digest = hashlib.sha256(data).hexdigest()
    if _is_redis(storage):
        from prefect_redis.connection import close_redis_client

        client = storage.get_client()
        try:
            client.set(REDIS_PREFIX + digest, data)
        finally:
            close_redis_client(client)
    else:
        # Written again even when there: a damaged blob is healed by the task that makes its bytes again.
        path = _local_path(storage, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{digest[:16]}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)  # whole or not at all, whoever else writes the same digest
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return digest, len(data)


def _drop(storage: Any, digest: str) -> None:
    """Delete the blob ``digest``: its bytes are not the ones it names, so the records naming it become misses."""
    if _is_redis(storage):
        from prefect_redis.connection import close_redis_client

        client = storage.get_client()
        try:
            client.delete(REDIS_PREFIX + digest)
        finally:
            close_redis_client(client)
    else:
        _local_path(storage, digest).unlink(missing_ok=True)


def exists(storage: Any, digest: str) -> bool:
    """Whether the blob ``digest`` is in ``storage`` (its bytes are checked when read)."""
    if not _HEX.fullmatch(digest):
        return False
    if _is_redis(storage):
        from prefect_redis.connection import close_redis_client

        client = storage.get_client()
        try:
            return bool(client.exists(REDIS_PREFIX + digest))
        finally:
            close_redis_client(client)
    return _local_path(storage, digest).is_file()


def _pieces(storage: Any, digest: str, size: int) -> Iterator[bytes]:
    if _is_redis(storage):
        from prefect_redis.connection import close_redis_client

        client = storage.get_client()
        try:
            for start in range(0, size, PIECE):
                yield client.getrange(REDIS_PREFIX + digest, start, min(start + PIECE, size) - 1)
        finally:
            close_redis_client(client)
        return
    try:
        with open(_local_path(storage, digest), "rb") as fh:
            while piece := fh.read(PIECE):
                yield piece
    except FileNotFoundError:
        return


def copy_to(storage: Any, digest: str, size: int, out: IO[bytes]) -> None:
    """Write the blob ``digest`` to ``out`` a piece at a time, checking its size and digest on the way."""
    _checked_digest(digest)
    h, got = hashlib.sha256(), 0
    for piece in _pieces(storage, digest, size):
        h.update(piece)
        got += len(piece)
        if got > size:
            break
        out.write(piece)
    if got != size or h.hexdigest() != digest:
        if got:
            _drop(storage, digest)
        raise BlobMissing(f"the stored bytes {digest[:16]} are gone or damaged ({got:,} of {size:,} bytes read); "
                          "they were deleted, and a new run makes them again")


def read(storage: Any, digest: str, size: int) -> bytes:
    """The blob ``digest`` (``size`` bytes), checked."""
    buffer = io.BytesIO()
    copy_to(storage, digest, size, buffer)
    return buffer.getvalue()


def run_storage() -> Any | None:
    """The result storage of the task run under way, or None outside one (its bytes then stay in its result)."""
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    store = getattr(ctx, "result_store", None) if ctx is not None else None
    return getattr(store, "result_storage", None)


# --------------------------------------------------------------------------- models


def stored_narration(storage: Any, narration: Narration) -> StoredNarration:
    digest, size = put(storage, narration.pcm)
    return StoredNarration(scene_id=narration.scene_id, sha256=digest, size=size, sample_rate=narration.sample_rate,
                           voice=narration.voice, words=narration.words)


def stored_segment(storage: Any, segment: Segment) -> StoredSegment:
    digest, size = put(storage, segment.mp4)
    return StoredSegment(scene_id=segment.scene_id, sha256=digest, size=size, duration_s=segment.duration_s,
                         frames=segment.frames, width=segment.width, height=segment.height, fps=segment.fps,
                         still=segment.still)


def loaded_narration(storage: Any, narration: Narration | StoredNarration) -> Narration:
    """``narration`` with its PCM in memory."""
    if isinstance(narration, Narration):
        return narration
    return Narration(scene_id=narration.scene_id, pcm=read(storage, narration.sha256, narration.size),
                     sample_rate=narration.sample_rate, voice=narration.voice, words=narration.words)


def clear_local(folder: Path) -> int:
    """Delete every blob under the local result ``folder``; how many were removed."""
    removed = 0
    blobs = Path(folder) / BLOB_DIR
    if not blobs.is_dir():
        return 0
    for path in blobs.iterdir():
        if _HEX.fullmatch(path.name) or (path.name.startswith(".") and path.name.endswith(".part")):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
