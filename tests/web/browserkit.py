"""Helpers for tests against a served app: a real HTTP server on a free port, Socket.IO clients,
and headless Debian Chromium (selenium) driving the dashboard."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import socketio
from flask import Flask
from werkzeug.serving import make_server

from config.settings import Settings
from tests.polling import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MISSING = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
# The marks of every browser test module (``pytestmark = BROWSER_MARKS``): skipped, saying why,
# where Debian's chromium and chromium-driver are not installed.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"browser tests need Debian chromium and chromium-driver; missing: "
        f"{', '.join(MISSING)} (apt-get install chromium chromium-driver)",
    ),
]


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` (HTTP, long-polling and WebSocket through simple-websocket) on a free port.

    Flask-SocketIO's threading mode needs nothing more than a threaded werkzeug server: the
    Socket.IO middleware is already wrapped around ``app.wsgi_app``.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="test-web-server", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def served_web(settings: Settings, redis_url: str) -> Iterator[str]:
    """The web as the product serves it: ``python -m cli.webserver`` (gevent, its own process) on a
    free port, on ``settings``' data folder and the given Redis; its log goes to the test's stderr."""
    import requests

    from config.settings import settings_env
    from tests.daemon.servicekit import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMOCR_")}
    env.update(settings_env(settings))
    env.update({"TEAMOCR_REDIS_URL": redis_url, "TEAMOCR_HOST": "127.0.0.1", "TEAMOCR_PORT": str(port)})
    if settings.web.jwt_secret:
        env["TEAMOCR_WEB__JWT_SECRET"] = settings.web.jwt_secret
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.webserver"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
    )

    def answers() -> bool:
        assert proc.poll() is None, f"python -m cli.webserver exited with {proc.returncode}"
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False

    try:
        wait_until(answers, 60, "the web server to answer", interval=0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def handshake(base_url: str, auth: Any) -> tuple[str, Any]:
    """Open a Socket.IO session by hand (Engine.IO 4 long-polling) with ``auth``.

    Returns ("connected", data) or ("refused", the server's message). This speaks the wire
    protocol directly because python-socketio's client, when refused over long-polling, may
    wait out a pending poll (25 s) before it gives up.
    """
    import json

    import requests

    url = f"{base_url}/socket.io/"
    with requests.Session() as http:
        opened = http.get(url, params={"EIO": "4", "transport": "polling"}, timeout=10)
        sid = json.loads(opened.text[1:])["sid"]  # "0{...}": the Engine.IO open packet
        query = {"EIO": "4", "transport": "polling", "sid": sid}
        http.post(url, params=query, data="40" + json.dumps(auth), timeout=10)  # Socket.IO CONNECT
        try:
            for packet in http.get(url, params=query, timeout=10).text.split("\x1e"):
                if packet.startswith("40"):
                    return "connected", json.loads(packet[2:] or "null")
                if packet.startswith("44"):  # CONNECT_ERROR
                    return "refused", json.loads(packet[2:]).get("message")
            raise AssertionError("no answer to CONNECT")
        finally:
            http.post(url, params=query, data="1", timeout=10)  # Engine.IO CLOSE


class SocketClient:
    """A real python-socketio client that records every ``result`` and ``error`` event.

    WebSocket by default: python-engineio's long-polling client can lose its goodbye in a race
    and then wait out a 25 s poll when closing (use :func:`handshake` for long-polling).
    """

    def __init__(self, url: str, token: str | None, transports: list[str] | None = None) -> None:
        self.results: list[dict[str, Any]] = []
        self.errors: list[Any] = []
        self.refusals: list[Any] = []
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("result", self.results.append)
        self.sio.on("error", self.errors.append)
        self.sio.on("connect_error", self.refusals.append)
        auth = {"token": token} if token is not None else None
        try:
            self.sio.connect(url, auth=auth, transports=transports or ["websocket"], wait_timeout=10)
        except socketio.exceptions.ConnectionError as exc:
            self.sio.shutdown()
            # the client's own message is generic; the server's reason came with connect_error
            reasons = [r.get("message", r) if isinstance(r, dict) else r for r in self.refusals]
            raise socketio.exceptions.ConnectionError(f"{exc}: {'; '.join(map(str, reasons))}") from exc

    def close(self) -> None:
        ws = getattr(self.sio.eio, "ws", None)
        if ws is not None:
            # werkzeug's server never answers the close frame; websocket-client would wait 3 s for it
            ws.close = functools.partial(ws.close, timeout=0.2)
        if self.sio.connected:
            self.sio.disconnect()
        self.sio.shutdown()


def screenshot(path: Path, words: str, seed: int = 0) -> Path:
    """A 1024x768 "screenshot": a window title bar, a heading with ``words`` and a reference line.

    Screen-sized on purpose: the detector enlarges images whose short side is under its minimum
    (736 px), so a thin banner would cost several times the pixels of a real screenshot.
    """
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    image = np.full((768, 1024, 3), 255, np.uint8)
    image[:48] = (235, 235, 235)
    cv2.putText(image, "Report viewer", (20, 32), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (60, 60, 60), 2, cv2.LINE_AA)
    cv2.putText(image, words, (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(
        image,
        f"ref {int(rng.integers(1000, 9999))}",
        (40, 300),
        cv2.FONT_HERSHEY_SIMPLEX,
        1.2,
        (40, 40, 40),
        2,
        cv2.LINE_AA,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise ValueError(f"cannot encode {path.suffix}")
    path.write_bytes(data.tobytes())
    return path


def chrome(profile: Path) -> Any:
    """Headless Debian Chromium with a fresh profile in ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--lang=en-US",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


@dataclass
class Stack:
    """A served dashboard: the service's settings, a staging folder for test files, a browser per user."""

    settings: Settings
    staging: Path
    browsers: dict[str, Dashboard]

    def drop(self, source: Path, name: str | None = None, channel: str = "") -> Path:
        """Copy ``source`` into the shared folder (its root is the default team's channel)."""
        dest = self.settings.shared_dir / channel / (name or source.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        return dest


# -- the dashboard, as a test sees it -----------------------------------------------------------

FEED_ITEM = "#feed [data-testid=feed-item][data-id='{id}']"


class Dashboard:
    """One browser on the dashboard, with the few actions and reads the tests need."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def login(self, username: str, password: str) -> None:
        self.driver.get(self.base_url + "/")
        self.css("[data-testid=login-username]").send_keys(username)
        self.css("[data-testid=login-password]").send_keys(password)
        self.css("[data-testid=login-submit]").click()
        wait_until(self.online, 60, f"{username}'s live connection")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def feed_item(self, result_id: str) -> dict[str, Any] | None:
        """What the feed shows for a result: status, filename, text, error (or None)."""
        return self.js(
            """const node = document.querySelector(arguments[0]);
            if (!node) return null;
            const text = (sel) => { const n = node.querySelector(sel); return n ? n.textContent : null; };
            return {status: node.dataset.status, filename: text('[data-testid=item-filename]'),
                    text: text('[data-testid=item-text]'), error: text('[data-testid=item-error]'),
                    visible: node.offsetParent !== null};""",
            FEED_ITEM.format(id=result_id),
        )

    def feed_ids(self) -> list[str]:
        return list(
            self.js("return [...document.querySelectorAll('#feed [data-testid=feed-item]')].map(n => n.dataset.id)")
        )

    def find_by_filename(self, filename: str) -> dict[str, Any] | None:
        return self.js(
            """for (const node of document.querySelectorAll('#feed [data-testid=feed-item]')) {
                 const name = node.querySelector('[data-testid=item-filename]');
                 if (name && name.textContent === arguments[0]) return {id: node.dataset.id,
                   status: node.dataset.status, html: node.innerHTML,
                   text: (node.querySelector('[data-testid=item-text]') || {}).textContent || ''};
               }
               return null;""",
            filename,
        )

    def open_viewer(self, result_id: str) -> None:
        self.css(FEED_ITEM.format(id=result_id)).click()
        wait_until(
            lambda: self.js(
                "const v = document.getElementById('viewer');"
                "return !v.hidden && v.dataset.id === arguments[0] && v.dataset.state === 'ready' && "
                "document.querySelectorAll('[data-testid=viewer-line]').length > 0",
                result_id,
            ),
            60,
            "the viewer with its lines",
        )

    def viewer_lines(self) -> list[str]:
        return list(
            self.js(
                "return [...document.querySelectorAll('[data-testid=viewer-line] "
                "[data-testid=line-text]')].map(n => n.textContent)"
            )
        )

    def online(self) -> bool:
        return bool(self.js("return document.getElementById('connection').dataset.state === 'online'"))

    def wait_final(self, filename: str, timeout: float) -> dict[str, Any]:
        """The feed item of ``filename`` once it is done, duplicate or failed."""

        def final() -> dict[str, Any] | None:
            found = self.find_by_filename(filename)
            return found if found and found["status"] in ("done", "failed", "duplicate") else None

        return wait_until(final, timeout, f"{filename} to finish")

    def watch_feed(self) -> None:
        """Record, per result, its first <li> and every status it showed, and mark the page so a
        reload would show (see :meth:`feed_history`)."""
        self.js("""window.__noReload = true; window.__seen = {};
            new MutationObserver(() => {
              for (const n of document.querySelectorAll('#feed [data-testid=feed-item]')) {
                const log = window.__seen[n.dataset.id] ||= {node: n, statuses: []};
                if (log.statuses.at(-1) !== n.dataset.status) log.statuses.push(n.dataset.status);
              }
            }).observe(document.getElementById('feed'), {subtree: true, childList: true, attributes: true});""")

    def feed_history(self, result_id: str) -> dict[str, Any] | None:
        """Since :meth:`watch_feed`: the statuses shown, whether it is still the same element, reloads."""
        return self.js(
            """const log = window.__seen && window.__seen[arguments[0]];
            return log ? {statuses: log.statuses, reloaded: !window.__noReload,
                          same: log.node === document.querySelector(arguments[1])} : null;""",
            result_id,
            FEED_ITEM.format(id=result_id),
        )

    def select_channel(self, value: str) -> None:
        self.js(
            "const s = document.getElementById('channel-filter'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('change'))",
            value,
        )

    def visible_channels(self) -> list[str]:
        return list(
            self.js(
                "return [...document.querySelectorAll('#feed [data-testid=feed-item]')]"
                ".filter(n => !n.hidden).map(n => n.dataset.channel)"
            )
        )

    def refresh_then_ping(self) -> dict[str, Any]:
        """Refresh the page's tokens, then ping over its socket: the ack, the new token, the stored session."""
        return dict(
            self.driver.execute_async_script(
                """const done = arguments[arguments.length - 1];
            const t = window.teamocr;
            t.session.refresh()
              .then(() => new Promise((ok) => setTimeout(ok, 200)))  // "renew" goes out on the tokens event
              .then(() => t.socket.timeout(5000).emitWithAck('ping'))
              .then((ack) => done({ack, token: t.session.accessToken,
                                   stored: sessionStorage.getItem('teamocr.session')}))
              .catch((err) => done({error: String(err)}));"""
            )
        )

    def fetch_status(self, path: str, token: str) -> int:
        """The HTTP status of GET ``path`` with ``token``, fetched by the page."""
        return int(
            self.driver.execute_async_script(
                """const done = arguments[arguments.length - 1];
            fetch(arguments[0], {headers: {Authorization: 'Bearer ' + arguments[1]}}).then((r) => done(r.status));""",
                path,
                token,
            )
        )

    def alert_open(self) -> bool:
        from selenium.common.exceptions import NoAlertPresentException

        try:
            self.driver.switch_to.alert  # noqa: B018 - the property raises when there is none
        except NoAlertPresentException:
            return False
        return True


@contextmanager
def logged_in(url: str, names: Iterable[str], profiles: Path, password: str) -> Iterator[dict[str, Dashboard]]:
    """One headless Chromium per user (profiles under ``profiles``), each logged in to ``url``;
    every browser is closed afterwards, the ones opened before a failure too."""
    drivers: list[Any] = []
    try:
        pages = {}
        for name in names:
            drivers.append(chrome(profiles / f"profile-{name}"))
            pages[name] = Dashboard(drivers[-1], url)
            pages[name].login(name, password)
        yield pages
    finally:
        for driver in drivers:
            driver.quit()
