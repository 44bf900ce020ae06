"""Rendered scenes kept on disk while a video is assembled, so memory does not grow with its length.

A flow hands each segment and narration to a :class:`Spool` as it arrives and keeps only the
small record that says where the bytes are; the assembler reads one scene back at a time.
The spool file sits beside the outputs under a ``.*.part`` name, so a run killed before it
cleans up leaves nothing the next run's sweep does not remove.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasks.blobs import BlobMissing, NarrationFacts, SegmentFacts, StoredNarration, StoredSegment, copy_to
from tasks.models import Narration, Segment


class _Stored(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    scene_id: str
    path: str
    offset: int = Field(ge=0)
    size: int = Field(ge=0)
    #: SHA-256 of the stored bytes, taken as they were spooled: the assembly's inputs are keyed by it.
    sha256: str = ""

    def read(self) -> bytes:
        """The stored bytes."""
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.size)
        if len(data) != self.size:
            raise OSError(f"{self.path} ends before the {self.size} bytes stored for scene {self.scene_id!r}")
        return data


class SpooledSegment(_Stored, SegmentFacts):
    """A :class:`Segment` whose MP4 bytes lie in a spool file."""

    @property
    def mp4(self) -> bytes:
        return self.read()


class SpooledNarration(_Stored, NarrationFacts):
    """A :class:`Narration` whose PCM lies in a spool file."""

    def load(self) -> Narration:
        """The narration with its PCM read back."""
        return Narration(scene_id=self.scene_id, pcm=self.read(), sample_rate=self.sample_rate, voice=self.voice,
                         words=self.words)


class Spool:
    """An append-only temporary file in ``folder`` holding segments and narrations; delete it with :meth:`close`.

    Stored ones (:mod:`tasks.blobs`) are copied from ``storage``, the run's result storage, a piece at a time.
    """

    def __init__(self, folder: str | Path, storage: Any | None = None) -> None:
        fd, name = tempfile.mkstemp(prefix=".scenes.", suffix=".part", dir=folder)
        self.path = name
        self.storage = storage
        self._file = os.fdopen(fd, "wb")

    def _append(self, data: bytes | StoredNarration | StoredSegment) -> dict[str, int | str]:
        offset = self._file.tell()
        if isinstance(data, bytes):
            self._file.write(data)
            digest = hashlib.sha256(data).hexdigest()
        else:
            if self.storage is None:
                raise BlobMissing(f"scene {data.scene_id!r} names stored bytes, but this spool was given no storage")
            copy_to(self.storage, data.sha256, data.size, self._file)  # checked against its digest as it is copied
            digest = data.sha256
        self._file.flush()  # readers open the file by name
        return {"path": self.path, "offset": offset, "size": self._file.tell() - offset, "sha256": digest}

    def add_segment(self, segment: Segment | StoredSegment) -> SpooledSegment:
        return SpooledSegment(scene_id=segment.scene_id, **self._append(segment.mp4 if isinstance(segment, Segment)
                                                                        else segment),
                              duration_s=segment.duration_s, frames=segment.frames, width=segment.width,
                              height=segment.height, fps=segment.fps, still=segment.still)

    def add_narration(self, narration: Narration | StoredNarration) -> SpooledNarration:
        return SpooledNarration(scene_id=narration.scene_id,
                                **self._append(narration.pcm if isinstance(narration, Narration) else narration),
                                sample_rate=narration.sample_rate, voice=narration.voice, words=narration.words)

    def close(self) -> None:
        self._file.close()
        Path(self.path).unlink(missing_ok=True)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
