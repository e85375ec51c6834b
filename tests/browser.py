"""Headless Chromium for the site tests: where it is and how to run it offline."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="needs chromium on PATH (apt-get install -y chromium)"
)


def chromium(page: Path | str, profile: Path, *args: str, budget_ms: int = 15000) -> str:
    """Open `page` (a file, or a URL) in headless Chromium; returns its stdout (the DOM after
    the page's scripts ran, with `--dump-dom`)."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args, page if isinstance(page, str) else page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout



class SiteServer:
    """Serve a site folder on 127.0.0.1 (a page sees the same URLs as on a web server)."""

    def __init__(self, root: Path):
        import functools
        import http.server
        import threading

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        self.root = Path(root)
        handler = functools.partial(Quiet, directory=str(self.root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, page: Path) -> str:
        return self.base + Path(page).relative_to(self.root).as_posix()


# Plotly figures in a page, and those Plotly drew (an svg.main-svg inside the figure's div).
FIGURES = "document.querySelectorAll('.plotly-graph-div').length"
DRAWN = "[...document.querySelectorAll('.plotly-graph-div')].filter(d => d.querySelector('.main-svg')).length"


class DevTools:
    """Headless Chromium driven over the DevTools protocol (`--remote-debugging-pipe`), with
    every request of the page intercepted: those under `allowed` go on, all others are
    recorded in `blocked` and fail. Requests the browser makes for itself (updates, sync)
    belong to no page and are neither seen nor needed."""

    def __init__(self, profile: Path, allowed: str, *, width: int = 1200, height: int = 2000):
        self.allowed, self.blocked, self.requested = allowed, [], []
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def pipes_at_3_and_4():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        command = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--window-size={width},{height}", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, pass_fds=(3, 4), preexec_fn=pipes_at_3_and_4,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer, self._id, self._events = b"", 0, []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method, params in [("Page.enable", {}), ("Runtime.enable", {}),
                               ("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})]:  # fmt: skip
            self.send(method, params, session=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)

    def _read(self, timeout: float) -> dict:
        import json
        import select

        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_chrome], [], [], timeout)
            if not ready:
                raise TimeoutError("no message from Chromium")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _handle(self, message: dict) -> None:
        """Intercepted requests: continue those of the site, fail and record the others."""
        if message.get("method") != "Fetch.requestPaused":
            self._events.append(message)
            return
        params = message["params"]
        url = params["request"]["url"]
        self.requested.append(url)
        if url.startswith(self.allowed):
            self.send("Fetch.continueRequest", {"requestId": params["requestId"]}, session=True, wait=False)
        else:
            self.blocked.append(url)
            self.send("Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                      session=True, wait=False)  # fmt: skip

    def send(self, method: str, params: dict | None = None, *, session: bool = False, wait: bool = True,
             timeout: float = 60) -> dict:  # fmt: skip
        import json

        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        if not wait:
            return {}
        sent = self._id
        while True:
            reply = self._read(timeout)
            if reply.get("id") == sent:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._handle(reply)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        return result["result"].get("value")

    def open(self, url: str, *, settle_s: float = 15) -> None:
        """Load `url`, then wait until its Plotly figures are drawn (or `settle_s` passed)."""
        import time

        self._events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + 120
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            self._handle(self._read(max(deadline - time.monotonic(), 0.1)))
        deadline = time.monotonic() + settle_s
        while self.evaluate(f"{DRAWN} < {FIGURES}") and time.monotonic() < deadline:
            try:
                self._handle(self._read(0.25))
            except TimeoutError:
                pass

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        path.write_bytes(base64.b64decode(data))


def check_site_offline(site: Path, pages: list[Path], profile: Path, shots: Path, prefix: str) -> dict:
    """Open each page of `site` in headless Chromium (served from the folder on 127.0.0.1)
    with every request outside the site blocked. Returns, per page, the figures it holds and
    those drawn, whether it reads "Unable to display output", and its screenshot; and every
    request that left the site (`blocked`) or stayed in it (`requested`)."""
    shots.mkdir(parents=True, exist_ok=True)
    found = {}
    with SiteServer(site) as server, DevTools(profile, server.base) as browser:
        for page in pages:
            browser.open(server.url(page))
            name = page.relative_to(site).with_suffix("").as_posix().replace("/", "-")
            shot = shots / f"{prefix}-{name}.png"
            browser.screenshot(shot)
            found[page] = {
                "figures": browser.evaluate(FIGURES),
                "drawn": browser.evaluate(DRAWN),
                "unable": "Unable to display output" in browser.evaluate("document.body.innerText"),
                "shot": shot,
            }
        return {"pages": found, "blocked": list(browser.blocked), "requested": list(browser.requested)}
