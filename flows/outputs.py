"""Where a run's files go, and how they get there whole: a local folder or an object store.

``out_dir`` is a folder, or an fsspec URL (``s3://bucket/prefix``, ``gs://``, ``az://``;
``memory://`` for tests). Either way a run writes its files into a staging folder of its own on
local disk and :meth:`RunFolder.commit` puts them in place together when the run finishes, so a
workflow folder always describes one run:

- ``manifest.json`` goes first out and last in: while a commit is under way the folder has none,
  and a folder with a manifest holds that run's files and nothing of another run's.
- A file the run did not make (the video, after a dry run) is removed, so no older file stays
  beside newer ones.
- A run that fails or is killed commits nothing: the folder keeps the last finished run.
- Commits of one workflow id take turns: an exclusive ``flock`` on ``<folder>/.lock``. An object
  store has no such lock; the flow's machine takes the same lock on a local file named after the
  URL, so runs of one id on one machine take turns, and runs on different machines should use
  different workflow ids (whichever commits last wins, whole).

On an object store each file is uploaded finished, in one put: S3 and its peers show an object
only once its upload completed, so a killed upload leaves nothing where a finished file belongs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tasks.errors import ConfigurationError
from tasks.files import release_staging_dir, run_dir, sanitize_workflow_id, staging_dir, sweep_stale_parts

log = logging.getLogger("pagereel.outputs")

MANIFEST = "manifest.json"
#: Every file a run may leave in its folder; the manifest is committed last.
OUTPUT_NAMES = ("storyboard.json", "video.srt", "video.vtt", "thumbnail.png", "video.mp4", MANIFEST)
#: Object stores pagereel writes to, and the package each needs (installed with ``pagereel[s3]`` for S3).
OBJECT_STORES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
                 "memory": None}


def is_url(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` names an object store rather than a local folder."""
    return isinstance(out_dir, str) and "://" in out_dir


def url_scheme(url: str) -> str:
    """The scheme of an object-store URL, refused (one line) unless pagereel writes there."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in OBJECT_STORES:
        known = ", ".join(f"{s}://" for s in OBJECT_STORES)
        raise ConfigurationError(f"out_dir {url!r}: pagereel cannot write to {scheme}:// URLs; use a folder or {known}")
    return scheme


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it, with a clear error if its package is missing."""
    import fsspec

    scheme = url_scheme(url)
    try:
        # A fresh instance: credentials and endpoints come from the environment of this call.
        fs, path = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    except ImportError:
        package = OBJECT_STORES[scheme]
        extra = " (pip install 'pagereel[s3]')" if package == "s3fs" else ""
        raise ConfigurationError(f"out_dir {url!r} needs the {package} package{extra}") from None
    return fs, path.rstrip("/")


def check_out_dir(out_dir: str | Path) -> None:
    """Raise :class:`ConfigurationError` unless run folders can be written under ``out_dir``.

    Called before anything is fetched, so a wrong ``--out`` costs nothing.
    """
    if is_url(out_dir):
        _check_store(str(out_dir))
        return
    path = Path(out_dir).expanduser()
    advice = "set --out (or out_dir) to a folder you can write"
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"output folder {str(path)!r} is not a folder; {advice}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", suffix=".part", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigurationError(
            f"output folder {str(path)!r} cannot be written ({exc.strerror or exc}); {advice}") from None


def _check_store(url: str) -> None:
    fs, path = _filesystem(url)
    bucket = path.split("/", 1)[0]
    if url_scheme(url) == "memory" or not bucket:
        return
    try:
        found = fs.exists(bucket)
    except Exception as exc:  # noqa: BLE001 - every client raises its own kinds; the user needs one line
        raise ConfigurationError(f"out_dir {url!r} cannot be reached ({' '.join(str(exc).split())[:200]}); "
                                 "check the URL, the endpoint and the credentials") from None
    if not found:
        raise ConfigurationError(f"out_dir {url!r}: bucket {bucket!r} does not exist; create it or fix the URL")


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


class RunFolder:
    """One run's files for a workflow id: written into :attr:`staging`, put in place together by :meth:`commit`."""

    def __init__(self, out_dir: str | Path, workflow_id: str) -> None:
        self.workflow_id = sanitize_workflow_id(workflow_id)
        if is_url(out_dir):
            self._fs, root = _filesystem(str(out_dir))
            self._remote = f"{root}/{self.workflow_id}"
            self.location = f"{str(out_dir).rstrip('/')}/{self.workflow_id}"
            self.staging = Path(tempfile.mkdtemp(prefix=f"pagereel-{self.workflow_id[:40]}-", suffix=".part"))
            digest = hashlib.sha256(self.location.encode()).hexdigest()[:24]
            self._lock = Path(tempfile.gettempdir()) / "pagereel-locks" / f"{digest}.lock"
            self._folder: Path | None = None
        else:
            folder = run_dir(Path(out_dir), self.workflow_id)
            sweep_stale_parts(folder)  # what a killed run of this workflow left behind
            self._fs = None
            self._folder = folder
            self.location = str(folder)
            self.staging = staging_dir(folder)
            self._lock = folder / ".lock"

    def take_over(self, inputs: str, names: tuple[str, ...]) -> dict[str, str] | None:
        """Stage the committed files ``names`` again when the committed run assembled them from ``inputs``.

        Only from a local folder whose manifest records ``inputs`` (see :class:`tasks.models.AssemblyRecord`)
        and only when each staged file still has the digest recorded there: the digests are taken of
        the staged copies, so a run that commits meanwhile cannot slip another file in. Returns those
        digests, or None with nothing staged.
        """
        folder = self._folder
        if folder is None:
            return None
        try:
            record = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("assembly") or {}
        except (OSError, ValueError, AttributeError):
            return None
        if not isinstance(record, dict) or record.get("inputs") != inputs or not isinstance(record.get("files"), dict):
            return None
        try:
            for name in names:
                _link_or_copy(folder / name, self.staging / name)
            digests = file_digests(self.staging, names)
        except OSError:
            digests = None
        if digests != record["files"]:
            for name in names:
                (self.staging / name).unlink(missing_ok=True)
            return None
        return digests

    def where(self, name: str) -> str:
        """Where the file ``name`` will be once committed: a path, or a URL on an object store."""
        return f"{self.location}/{name}" if self._folder is None else str(self._folder / name)

    def commit(self) -> None:
        """Put every staged file in place (manifest last) and remove the folder's files this run did not make."""
        staged = {name for name in OUTPUT_NAMES if (self.staging / name).is_file()}
        with _exclusive(self._lock):
            if self._folder is not None:
                self._commit_local(self._folder, staged)
            else:
                self._commit_remote(staged)
        log.debug("committed %s to %s", sorted(staged), self.location)
        self.discard()

    def discard(self) -> None:
        """Forget the staged files (a failed run leaves the folder as the last finished run left it)."""
        release_staging_dir(self.staging)

    def _commit_local(self, folder: Path, staged: set[str]) -> None:
        (folder / MANIFEST).unlink(missing_ok=True)
        for name in OUTPUT_NAMES:
            if name in staged:
                os.replace(self.staging / name, folder / name)
            else:
                (folder / name).unlink(missing_ok=True)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the renames survive a power cut together with the files
        finally:
            os.close(dir_fd)

    def _commit_remote(self, staged: set[str]) -> None:
        fs = self._fs
        manifest = f"{self._remote}/{MANIFEST}"
        if fs.exists(manifest):
            fs.rm_file(manifest)
        for name in OUTPUT_NAMES:
            target = f"{self._remote}/{name}"
            if name in staged:
                fs.put_file(str(self.staging / name), target)
            elif name != MANIFEST and fs.exists(target):
                fs.rm_file(target)


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no bytes move), or a copy where links are refused."""
    try:
        os.link(source, target)
    except OSError:
        if not source.is_file():
            raise
        shutil.copyfile(source, target)


def file_digests(folder: Path, names: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of each file ``names`` in ``folder``."""
    digests = {}
    for name in names:
        with open(folder / name, "rb") as f:
            digests[name] = hashlib.file_digest(f, "sha256").hexdigest()
    return digests


__all__ = ["MANIFEST", "OBJECT_STORES", "OUTPUT_NAMES", "RunFolder", "check_out_dir", "file_digests", "is_url",
           "url_scheme"]
