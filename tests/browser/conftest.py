"""Browser fixtures: Debian's chromium driven by Playwright, a local static server,
and a recorder that fails a test when a page asks for anything off this machine.

The built artefacts come from two session fixtures defined in ``tests/conftest.py``:
``site_dir`` (the output of ``mkdocs build`` with the deck copied to
``slides/index.html``) and ``deck_dir`` (the deck's ``index.html``, ``lib/``,
``figures/``). Chromium is required: when it is missing the tests fail, they do
not skip, because CI installs it.
"""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
LOCAL_SCHEMES = frozenset({"file", "data", "blob", "about"})
TIMEOUT_MS = 30_000


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives Debian's chromium through Playwright (needs `apt-get install chromium`)"
    )


def is_local(url: str) -> bool:
    """True for URLs that stay on this machine (file, data, blob, 127.0.0.1, localhost)."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname in LOCAL_HOSTS


@dataclass
class RequestRecorder:
    """Every URL a page requested; requests off the machine are also aborted."""

    urls: list[str] = field(default_factory=list)

    @property
    def external(self) -> list[str]:
        return [url for url in self.urls if not is_local(url)]

    def assert_local(self) -> None:
        if self.external:
            pytest.fail("requests left the machine (the site must work offline): "
                        + ", ".join(self.external))

    def attach(self, page) -> None:
        page.on("request", lambda request: self.urls.append(request.url))
        page.route("**/*", self._route)

    def _route(self, route) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            route.abort("blockedbyclient")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed (`apt-get install chromium`); "
                    "the browser tests need it and do not download a browser")
    return path


@pytest.fixture(scope="session")
def chromium_browser(chromium_path: str) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def request_recorder() -> Iterator[RequestRecorder]:
    recorder = RequestRecorder()
    yield recorder
    recorder.assert_local()


@pytest.fixture
def page(chromium_browser, request_recorder: RequestRecorder) -> Iterator:
    """A fresh page (1280x800) whose requests are recorded; off-machine ones are blocked."""
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    request_recorder.attach(page)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    if errors:
        pytest.fail("JavaScript errors on the page: " + "; ".join(errors))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (signature of the base)
        pass


@pytest.fixture(scope="session")
def serve_directory() -> Iterator[Callable[[Path], str]]:
    """Factory: serve a folder on 127.0.0.1 (random port, background thread); returns the base URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def site_url(site_dir: Path, serve_directory: Callable[[Path], str]) -> str:
    """Base URL of the built site served over http on 127.0.0.1."""
    return serve_directory(site_dir)
