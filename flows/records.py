"""Cached results are data, never code: every record read back from the cache is checked first.

Prefect keeps each result as a record whose metadata names the serializer to read it with. A
record in a shared cache naming ``pickle`` (or a JSON serializer with another json library,
decoder or keyword arguments) would run code on whichever machine reads it, and the JSON
decoder itself imports any module a ``"__class__"`` names. The storage blocks here hand Prefect
a record only when it is plain JSON in the shape pagereel writes, names Prefect's default JSON
serializer, holds no types but pagereel's own models, and validates. Anything else is a cache
miss: the entry is deleted, one warning is logged, and the task computes the result again.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect._internal.result_records import ResultRecord
from prefect.filesystems import LocalFileSystem
from prefect.serializers import JSONSerializer
from pydantic import BaseModel

from tasks import blobs
from tasks.blobs import BLOB_MODELS

log = logging.getLogger("pagereel.records")

#: The only serializer a record may name: Prefect's JSON serializer exactly as pagereel's tasks configure it.
TRUSTED_SERIALIZER: dict[str, Any] = JSONSerializer().model_dump(mode="json")
#: Records larger than this are refused unread (a rendered segment of a long scene is a few MB).
MAX_RECORD_BYTES = 512 * 1024 * 1024
_MODEL_NAME = re.compile(r"tasks\.[a-z_]+\.[A-Z][A-Za-z0-9]*")


class UntrustedRecord(ValueError):
    """A cached result record that pagereel refuses to read (a ValueError, which Prefect treats as a miss)."""


def check_record(content: bytes | None, key: str) -> list[str]:
    """Raise :class:`UntrustedRecord` unless ``content`` is a result record pagereel wrote for ``key``.

    Returns the digests of the blobs (:mod:`tasks.blobs`) the record names, for its storage to find.
    """
    if content is None:
        raise UntrustedRecord("no such record")
    if len(content) > MAX_RECORD_BYTES:
        raise UntrustedRecord(f"it is {len(content):,} bytes, more than {MAX_RECORD_BYTES:,}")
    record = _json(content, "the record")
    if not isinstance(record, dict) or set(record) != {"metadata", "result"}:
        raise UntrustedRecord("it is not a result record")
    metadata = record["metadata"]
    if not isinstance(metadata, dict):
        raise UntrustedRecord("its metadata is not a mapping")
    serializer = metadata.get("serializer")
    if serializer != TRUSTED_SERIALIZER:
        kind = serializer.get("type") if isinstance(serializer, dict) else serializer
        raise UntrustedRecord(f"it names serializer {kind!r} with settings pagereel never writes; only JSON is read")
    stored = metadata.get("storage_key")
    if not isinstance(stored, str) or Path(stored).name != Path(key).name:
        raise UntrustedRecord(f"it says it belongs to key {stored!r}")
    if not isinstance(record["result"], str):
        raise UntrustedRecord("its result is not JSON text")
    blobs = _check_types(_json(record["result"].encode(), "its result"))
    try:
        ResultRecord.deserialize(content)
    except Exception as exc:  # noqa: BLE001 - whatever fails to validate is a miss, never a crash
        raise UntrustedRecord(f"it does not validate: {' '.join(str(exc).split())[:300]}") from None
    return blobs


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise UntrustedRecord(f"{what} is not valid JSON ({type(exc).__name__})") from None


def _check_types(payload: Any) -> list[str]:
    """Every ``"__class__"`` must name a pydantic model of pagereel's ``tasks`` package; no exceptions.

    Returns the digests the stored narrations and segments among them name.
    """
    stack, blobs = [payload], []
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if "__exc_type__" in item:
                raise UntrustedRecord("it holds an exception, which pagereel never caches")
            if "__class__" in item:
                _trusted_model(item["__class__"])
                if item["__class__"] in BLOB_MODELS:
                    blobs.append(_blob_digest(item))
            stack.extend(item.values())
    return blobs


def _blob_digest(item: dict[str, Any]) -> str:
    data = item.get("data")
    digest = data.get("sha256") if isinstance(data, dict) else None
    if not isinstance(digest, str):
        raise UntrustedRecord(f"its {item['__class__']} names no stored bytes")
    return digest


def check_blobs(storage: Any, digests: list[str]) -> None:
    """Raise :class:`UntrustedRecord` unless every blob a record names (``digests``) is still in ``storage``."""
    for digest in digests:
        if not blobs.exists(storage, digest):
            raise UntrustedRecord(f"the bytes it names ({digest[:16]}) are no longer stored")


def _trusted_model(name: Any) -> None:
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise UntrustedRecord(f"it holds type {str(name)[:80]!r}, which is not one of pagereel's models")
    module_name, attr = name.rsplit(".", 1)
    try:
        found = getattr(importlib.import_module(module_name), attr, None)
    except ImportError:
        found = None
    if not (isinstance(found, type) and issubclass(found, BaseModel) and found.__module__.startswith("tasks.")):
        raise UntrustedRecord(f"it holds type {name!r}, which is not one of pagereel's models")


def refuse_record(where: str, key: str, reason: UntrustedRecord) -> UntrustedRecord:
    log.warning("discarding the cached result %s in %s: %s; it will be computed again", Path(key).name, where, reason)
    return UntrustedRecord(f"cached result {Path(key).name} refused: {reason}")


class CheckedLocalFileSystem(LocalFileSystem):
    """A local result folder that gives Prefect only records :func:`check_record` accepts."""

    _block_type_name = "pagereel checked result folder"
    _block_type_slug = "pagereel-checked-result-folder"

    async def aread_path(self, path: str) -> bytes:
        return self._vetted(path, await super().aread_path(path))

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        return self._vetted(path, super().read_path(path, _sync=True))

    def _vetted(self, path: str, content: bytes) -> bytes:
        try:
            check_blobs(self, check_record(content, path))
        except UntrustedRecord as exc:
            file = Path(self._resolve_path(path))
            try:
                if file.read_bytes() == content:
                    file.unlink()
            except OSError:
                pass  # already gone, or rewritten by another run
            raise refuse_record(str(self.basepath), path, exc) from None
        return content


def __getattr__(name: str) -> Any:
    # The Redis storage lives with the rest of the Redis code, imported only by runs that use Redis.
    if name == "CheckedRedisDatabase":
        from flows.redis_store import CheckedRedisDatabase

        return CheckedRedisDatabase
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CheckedLocalFileSystem", "TRUSTED_SERIALIZER", "UntrustedRecord", "check_record"]
