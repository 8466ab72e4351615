"""Drive headless Chromium over the DevTools protocol (CDP) through a pipe (``--remote-debugging-pipe``:
commands on file descriptor 3, replies and events on 4, each a JSON text ended by a NUL byte), so
tests can click, move sliders, go back in history and record every request a page makes, with the
standard library only (no websocket client, no browser driver).

Launch flags follow tests/unit/report/test_leaderboard_browser.py.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome",
                                                         "google-chrome-stable")) if p), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000"]


class CdpError(RuntimeError):
    pass


class Browser:
    """One Chromium process; :meth:`page` opens a tab whose network requests are recorded."""

    def __init__(self, profile: Path, timeout: float = 60.0, flags: tuple[str, ...] = ()) -> None:
        if CHROMIUM is None:
            raise CdpError("chromium is not installed")
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._buffer = b""
        self._id = 0
        r_in, self._w = os.pipe()
        self._r, w_out = os.pipe()
        cmd = [CHROMIUM, *FLAGS, *flags, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        # a small trampoline moves the pipe ends to the descriptors Chromium reads (3) and writes (4)
        move = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], sys.argv[3:])"
        self.proc = subprocess.Popen([sys.executable, "-c", move, str(r_in), str(w_out), *cmd], pass_fds=(r_in, w_out),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_in)
        os.close(w_out)

    # -- protocol ------------------------------------------------------------------------------
    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("no reply from chromium in time")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise CdpError("chromium closed the pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Read events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            if b"\0" in self._buffer:
                self.events.append(self._message(deadline + 1))
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                return
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                return
            self._buffer += chunk

    def page(self) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", {}, session)
        return Page(self, session)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (CdpError, OSError):
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass


class Page:
    """A tab: navigate, evaluate JavaScript, wait for conditions; :attr:`requests` lists every URL
    it requested."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def _mine(self, method: str) -> list[dict[str, Any]]:
        return [e.get("params", {}) for e in self.browser.events
                if e.get("sessionId") == self.session and e.get("method") == method]

    @property
    def requests(self) -> list[str]:
        """Every URL this tab asked for (documents, scripts, styles, images, fetches)."""
        return [p["request"]["url"] for p in self._mine("Network.requestWillBeSent")]

    @property
    def failures(self) -> list[str]:
        """Requests that failed, JavaScript exceptions and console errors."""
        out = [f"load failed: {p.get('errorText')} ({p.get('requestId')})" for p in self._mine("Network.loadingFailed")]
        out += [f"exception: {p.get('exceptionDetails', {}).get('text')} "
                f"{p.get('exceptionDetails', {}).get('exception', {}).get('description', '')}"
                for p in self._mine("Runtime.exceptionThrown")]
        out += [f"console: {p['entry'].get('text')}" for p in self._mine("Log.entryAdded")
                if p.get("entry", {}).get("level") == "error"]
        return out

    def evaluate(self, expression: str) -> Any:
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                        "awaitPromise": True}, self.session)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression[:80]}: {result['exceptionDetails'].get('text')} "
                           f"{result['exceptionDetails'].get('exception', {}).get('description', '')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy (a navigation in between is retried)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
                if last:
                    return last
            except CdpError as exc:  # the context went away mid-navigation
                last = exc
            self.browser.pump(0.1)
        raise CdpError(f"timed out waiting for {expression!r} (last: {last!r})")

    def loaded(self, url_part: str) -> None:
        """Wait until the document at a URL containing ``url_part`` has finished loading."""
        self.wait_for(f"location.href.indexOf({json.dumps(url_part)}) >= 0 && document.readyState === 'complete'")

    def goto(self, url: str) -> None:
        self.browser.send("Page.navigate", {"url": url}, self.session)
        self.loaded(url.rsplit("/", 1)[-1].split("?")[0])

    def navigating(self, expression: str) -> Any:
        """``evaluate`` an expression that starts a navigation: under load the page may be gone
        before the reply is sent (CDP's "Inspected target navigated or closed"), which means the
        navigation began; returns the value, or ``True`` then."""
        try:
            return self.evaluate(expression)
        except CdpError as exc:
            if "Inspected target navigated or closed" not in str(exc):
                raise
            return True

    def back(self) -> None:
        """The browser's back button (``history.back()``)."""
        self.navigating("history.back(); 1")

    def click(self, selector: str) -> None:
        found = self.navigating(f"(function(){{var el = document.querySelector({json.dumps(selector)});"
                                f"if(!el) return false; el.click(); return true;}})()")
        if not found:
            raise CdpError(f"nothing matches {selector!r} on {self.evaluate('location.href')}")
