"""Look at the review form in the Prefect UI: a headless Chromium opens a run that waits for review.

    .venv/bin/python scripts/review_form_in_ui.py [--out review-form.png]

Starts a private Prefect server (UI on, its own PREFECT_HOME, a free loopback port), runs
``pagereel video examples/article.html --review`` against it until the run waits, opens the run's
page in Chromium (the Debian package ``chromium``) driven over the DevTools protocol, presses
Resume, checks that the form lists each scene's narration, saves a screenshot, and rejects the run.
Exit status 0 when the form was seen, 1 when not, 2 when Chromium is not installed.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMALL = {"PAGEREEL_RENDER__RESOLUTION": "144", "PAGEREEL_RENDER__FPS": "8", "PAGEREEL_REVIEW__POLL_S": "1",
         "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "15"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Any, timeout: float = 120, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own loopback server
            return answer.status == 200
    except OSError:
        return False


class Page:
    """One Chromium tab over the DevTools protocol (websockets, which Prefect installs)."""

    def __init__(self, port: int) -> None:
        from websockets.sync.client import connect

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:  # noqa: S310
            target = next(t for t in json.load(answer) if t["type"] == "page")
        self.socket = connect(target["webSocketDebuggerUrl"], max_size=64 * 2**20)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == call_id:
                return message.get("result", {})

    def js(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="review-form.png", help="Where the screenshot goes.")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed (apt-get install chromium): nothing checked", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pagereel-ui-") as tmp:
        return check_form(Path(tmp), chromium, Path(args.out).resolve())


def check_form(tmp: Path, chromium: str, out: Path) -> int:
    port, devtools = free_port(), free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAGEREEL_", "PREFECT_"))}
    env.update(SMALL, PREFECT_HOME=str(tmp / "prefect"), PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="0",
               PAGEREEL_OUT_DIR=str(tmp / "out"), PAGEREEL_CACHE__DIR=str(tmp / "cache"), DO_NOT_TRACK="1")
    procs: list[subprocess.Popen[Any]] = []
    try:
        procs.append(subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                                       str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for("the Prefect server", lambda: http_ok(f"{api}/health"))
        shutil.copy(ROOT / "examples" / "article.html", tmp / "article.html")
        procs.append(subprocess.Popen([str(BIN / "pagereel"), "video", "article.html", "--workflow-id", "ui-form",
                                       "--review"], cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        run_id = wait_for("a run waiting for review", lambda: paused_run(api), timeout=240)
        procs.append(subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                                       f"--remote-debugging-port={devtools}", f"--user-data-dir={tmp / 'chrome'}",
                                       "--window-size=1400,2200", "about:blank"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for("Chromium", lambda: http_ok(f"http://127.0.0.1:{devtools}/json/version"))
        page = Page(devtools)
        page.call("Page.enable")
        page.call("Page.navigate", url=f"http://127.0.0.1:{port}/runs/flow-run/{run_id}")
        wait_for("the Resume button", lambda: page.js(CLICK_RESUME), timeout=60)
        seen = wait_for("the review form", lambda: page.js(FORM_TEXT) or None, timeout=60)
        described = wait_for("the form's description", lambda: page.js(
            "document.body.innerText.includes('Review the storyboard of')"), timeout=30)
        time.sleep(2)  # the markdown is drawn after the fields
        page.js("document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
        time.sleep(0.5)
        shot = page.call("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))
        print(f"form seen: {seen}\ndescription above the form: {described}\nscreenshot: {out}")
        subprocess.run([str(BIN / "pagereel"), "review", run_id, "--reject", "--note", "checked the form"],
                       env=env, capture_output=True, timeout=60)
        return 0
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


CLICK_RESUME = """(() => {
  const b = [...document.querySelectorAll('button')].find(e => e.innerText.trim() === 'Resume');
  if (b) { b.click(); return true; } return false; })()"""
FORM_TEXT = """(() => { const t = document.body.innerText;
  return t.includes('Scene 2') && t.includes('narration') && t.includes('Decision')
    ? t.split('\\n').filter(l => l.includes('Scene')).slice(0, 4).join(' | ') : ''; })()"""


def paused_run(api: str) -> str | None:
    query = {"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}}
    request = urllib.request.Request(f"{api}/flow_runs/filter", method="POST", data=json.dumps(query).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:  # noqa: S310 - our own loopback server
            runs = json.load(answer)
    except OSError:
        return None  # the server is busy starting the run: ask again
    return str(runs[0]["id"]) if runs else None


if __name__ == "__main__":
    sys.exit(main())
