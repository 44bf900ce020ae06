"""Processes that behave like another machine: pagereel from a wheel, and none of the client's folders.

A process started by :meth:`OtherMachine.start` runs in a mount namespace of its own (``unshare
--mount``, root only) where the repository and the test session's temporary folders are hidden
under empty tmpfs mounts. Its Python is a venv of its own with pagereel installed from a wheel;
the dependencies come from the repository's ``.venv`` through a ``.pth`` file pointing at a bind
mount that stays visible after the repository is hidden. Its working directory, HOME and TMPDIR
are its own.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def unshare_problem() -> str | None:
    """Why mount namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "hiding the client's folders needs root (unshare --mount)"
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return None if done.returncode == 0 else f"unshare --mount is not permitted: {done.stderr.decode().strip()}"


def build_wheel(into: Path) -> Path:
    """A wheel of the tracked files of this checkout (built from a copy, so the checkout gets no build/)."""
    source = into / "source"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = into / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(source)],
                   check=True, capture_output=True, timeout=300)
    return next(wheels.glob("pagereel-*.whl"))


class OtherMachine:
    """A home for processes that must not see the client's files; ``stop()`` ends everything it started."""

    def __init__(self, wheel: Path, hidden: list[Path]) -> None:
        # Short: Ray puts AF_UNIX sockets (at most 107 bytes a path) deep under TMPDIR.
        self.base = Path(tempfile.mkdtemp(prefix="pagereel-om-"))
        self.hidden = [p.resolve() for p in hidden]
        self.home, self.tmp, self.work = (self.base / n for n in ("home", "tmp", "work"))
        for folder in (self.home, self.tmp, self.work):
            folder.mkdir()
        self.deps = self.base / "deps"  # the bind mount of .venv's site-packages
        self.deps.mkdir()
        self.venv = self.base / "venv"
        subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(self.venv)], check=True)
        purelib = Path(sysconfig.get_path("purelib", vars={"base": str(self.venv), "platbase": str(self.venv)}))
        (purelib / "client-dependencies.pth").write_text(f"{self.deps}\n")
        subprocess.run([sys.executable, "-m", "pip", "--python", str(self.venv / "bin" / "python"), "install",
                        "--quiet", "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                       timeout=300)
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *argv: str) -> str:
        """Run ``argv`` there to the end and return its output (for checking what that machine sees)."""
        process = self.start("check", *argv)
        process.wait(timeout=60)
        return self.log("check").read_text(errors="replace")

    def start(self, name: str, *argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` (``python`` means this machine's venv) hidden from the client; its log is ``log(name)``."""
        site_packages = Path(sysconfig.get_path("purelib"))  # the client's .venv dependencies
        steps = [f"mount --bind {shlex.quote(str(site_packages))} {shlex.quote(str(self.deps))}"]
        steps += [f"mount -t tmpfs -o size=64m tmpfs {shlex.quote(str(p))}" for p in self.hidden]
        command = [str(self.python) if a == "python" else a for a in argv]
        steps.append(f"cd {shlex.quote(str(self.work))}")
        steps.append("exec " + shlex.join(command))
        environ = {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            **(env or {}),
        }
        log = self.log(name)
        with log.open("wb") as out:
            process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                        " && ".join(steps)], env=environ, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.processes.append((process, log))
        return process

    def log(self, name: str) -> Path:
        return self.base / f"{name}.log"

    def wait_for(self, name: str, text: str, timeout: float = 120) -> None:
        """Wait until ``text`` appears in the log of ``name``; fail with the log if its process ends first."""
        deadline = time.monotonic() + timeout
        log = self.log(name)
        process = next(p for p, path in self.processes if path == log)
        while time.monotonic() < deadline:
            if text in log.read_text(errors="replace"):
                return
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        raise AssertionError(f"{name} did not log {text!r} within {timeout} s:\n{log.read_text()[-4000:]}")

    def stop(self) -> None:
        for process, _ in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process, _ in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)
