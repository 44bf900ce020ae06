"""A damaged or hostile cache entry is a miss, never a crash, a broken video or code run on this machine."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import redis
from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
from prefect.serializers import JSONSerializer, PickleSerializer

from flows import cache
from flows.records import UntrustedRecord, check_record
from flows.video_flow import run_video
from tests.reliability.helpers import ARTICLE, SMALL_VIDEO, assert_valid_video

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


class _Touch:
    """Unpickling this creates ``path``: proof that a record was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def pickle_record(key: str, marker: Path) -> bytes:
    """A well-formed result record that names the pickle serializer and would create ``marker`` if read."""
    metadata = ResultRecordMetadata(storage_key=key, serializer=PickleSerializer())
    return ResultRecord(metadata=metadata, result=_Touch(marker)).serialize()


def _with_result(encoded: bytes) -> bytes:
    """A JSON record for key "k" whose result text is ``encoded`` (JSON, escaped as a string)."""
    return json_record("k", {"x": 1}).replace(b'{\\"x\\": 1}', encoded)


def json_record(key: str, payload: object, **serializer: object) -> bytes:
    metadata = ResultRecordMetadata(storage_key=key, serializer=JSONSerializer(**serializer))
    return ResultRecord(metadata=metadata, result=payload).serialize()


@pytest.fixture
def small_video(monkeypatch: pytest.MonkeyPatch, pagereel_env: Path, prefect_api: str) -> Path:
    for name, value in SMALL_VIDEO.items():
        monkeypatch.setenv(name, value)
    cache.reset_probes()
    return pagereel_env


def _kind(content: bytes) -> str:
    """Which model a stored record holds (StoredSegment, StoredNarration, Page, ...)."""
    result = json.loads(json.loads(content)["result"])
    return result.get("__class__", "?").rsplit(".", 1)[-1] if isinstance(result, dict) else type(result).__name__


# --------------------------------------------------------------------------- the check itself


def test_the_crafted_pickle_record_is_live(tmp_path: Path) -> None:
    """Without pagereel's check, Prefect would run the payload: the attack the other tests refuse is real."""
    marker = tmp_path / "pwned"
    ResultRecord.deserialize(pickle_record("k", marker))
    assert marker.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not valid JSON"),
        (b"\x00\xffgarbage", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"metadata": {}, "result": "1"}', "serializer None"),
        (b'{"metadata": {"storage_key": "k"}}', "not a result record"),
    ],
)
def test_garbage_is_refused(content: bytes, reason: str) -> None:
    with pytest.raises(UntrustedRecord, match=reason):
        check_record(content, "k")


def test_only_plain_json_with_pagereel_types_is_read(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    check_record(json_record("k", {"x": [1, 2]}), "k")  # plain JSON: read
    refused = [
        pickle_record("k", marker),
        json_record("k", {"x": 1}).replace(b'"jsonlib":"json"', b'"jsonlib":"pickle"'),
        json_record("k", {"x": 1}, object_decoder="builtins.eval"),
        json_record("k", {"x": 1}).replace(b'"loads_kwargs":{}', b'"loads_kwargs":{"parse_int":"eval"}'),
        _with_result(b'{\\"__class__\\": \\"subprocess.Popen\\", \\"data\\": 1}'),
        _with_result(b'{\\"__class__\\": \\"tasks.fetch.socket\\", \\"data\\": 1}'),
        _with_result(b'{\\"__exc_type__\\": \\"SystemExit\\", \\"message\\": 1}'),
        json_record("other-key", {"x": 1}),
    ]
    for content in refused:
        with pytest.raises(UntrustedRecord):
            check_record(content, "k")
    assert not marker.exists()


# --------------------------------------------------------------------------- in a real run


def _spoil(read: dict[str, bytes], write, marker: Path) -> dict[str, str]:
    """Damage three render results: truncated, garbage, and a pickle record; returns key -> how."""
    segments = sorted(k for k, v in read.items() if _kind(v) == "StoredSegment")
    assert len(segments) >= 3, segments
    damage = {
        segments[0]: read[segments[0]][: len(read[segments[0]]) // 2],
        segments[1]: b"\x8b\x01 not a record at all \xff" * 50,
        segments[2]: pickle_record(segments[2], marker),
    }
    for key, content in damage.items():
        write(key, content)
    return dict(zip(damage, ("truncated", "garbage", "pickle"), strict=True))


def _check_second_run(first, second, marker: Path, caplog: pytest.LogCaptureFixture, folder: Path) -> None:
    assert not marker.exists(), "a cached record was unpickled"
    assert_valid_video(folder)
    assert second.scenes == first.scenes
    # Exactly the three spoiled renders are computed again; everything else is a hit.
    assert second.metrics.cache_misses == 3
    assert second.metrics.cache_hits == first.metrics.cache_misses - 3
    warnings = [r.getMessage() for r in caplog.records if "discarding the cached result" in r.getMessage()]
    assert len(warnings) == 3, warnings


def test_spoiled_local_records_are_discarded_and_recomputed(http_server, small_video: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    url = http_server.url(ARTICLE)
    first = run_video(url, workflow_id="first")
    folder = small_video / "cache"
    records = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    marker = small_video / "pwned"
    spoiled = _spoil(records, lambda key, content: (folder / key).write_bytes(content), marker)

    caplog.set_level(logging.WARNING, logger="pagereel")
    second = run_video(url, workflow_id="second")
    _check_second_run(first, second, marker, caplog, small_video / "out" / "second")
    for key in spoiled:  # each spoiled entry was replaced by a good record
        check_record((folder / key).read_bytes(), key)


def test_spoiled_redis_records_are_discarded_and_recomputed(http_server, redis_db: redis.Redis, small_video: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    url = http_server.url(ARTICLE)
    first = run_video(url, workflow_id="first")
    assert "cache:redis" in first.optimizations_used
    records = {}
    for key in redis_db.scan_iter(_type="STRING"):
        value = redis_db.get(key)
        if value and value.startswith(b'{"metadata"'):
            records[key.decode()] = value
    marker = small_video / "pwned"
    spoiled = _spoil(records, redis_db.set, marker)

    caplog.set_level(logging.WARNING, logger="pagereel")
    second = run_video(url, workflow_id="second")
    _check_second_run(first, second, marker, caplog, small_video / "out" / "second")
    for key in spoiled:
        check_record(redis_db.get(key), key)
