"""Every link of the built site resolves: local files exist, anchors exist on their pages,
and nothing is loaded from another host (a plain link to one in the text is allowed)."""
from __future__ import annotations

import re
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.slow

# Attributes that make the browser fetch something, by tag; "href" of <a> only navigates.
_FETCHED = {"img": ("src",), "script": ("src",), "iframe": ("src",), "source": ("src",),
            "video": ("src", "poster"), "audio": ("src",), "track": ("src",), "embed": ("src",),
            "object": ("data",), "link": ("href",), "input": ("src",)}
_NAVIGATED = {"a": ("href",), "area": ("href",)}
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


class _Page(HTMLParser):
    """The ids (anchors) of a page and its links as (tag, attribute, url)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        for name in ("id", "name") if tag == "a" else ("id",):
            if name in values:
                self.ids.add(values[name])
        for name in _FETCHED.get(tag, ()) + _NAVIGATED.get(tag, ()):
            if name in values:
                self.links.append((tag, name, values[name]))
        if "srcset" in values:
            self.links += [(tag, "srcset", part.split()[0]) for part in values["srcset"].split(",") if part.strip()]


@pytest.fixture(scope="module")
def parsed(site_dir: Path) -> dict[str, _Page]:
    pages = {}
    for html in sorted(site_dir.rglob("*.html")):
        page = _Page()
        page.feed(html.read_text(encoding="utf-8"))
        pages[html.relative_to(site_dir).as_posix()] = page
    assert "index.html" in pages and "slides/index.html" in pages, sorted(pages)[:10]
    return pages


def _target(site_dir: Path, page: str, url: str) -> tuple[str, str]:
    """The site-relative file a local ``url`` on ``page`` points to, and its fragment."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not path:
        return page, parts.fragment
    base = PurePosixPath("/") if path.startswith("/") else PurePosixPath("/", page).parent
    resolved = PurePosixPath(_normalise(str(base / path)))
    if url.split("#")[0].split("?")[0].endswith("/") or (site_dir / resolved.relative_to("/")).is_dir():
        resolved = resolved / "index.html"
    return str(resolved.relative_to("/")), parts.fragment


def _normalise(path: str) -> str:
    out: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if not out:
                return "/__outside_the_site__"
            out.pop()
        elif part not in ("", "."):
            out.append(part)
    return "/" + "/".join(out)


def test_every_local_link_and_anchor_resolves(site_dir, parsed):
    broken, checked = [], 0
    for page, info in parsed.items():
        for tag, attribute, url in info.links:
            scheme = urlsplit(url).scheme
            if scheme in ("http", "https", "mailto", "data", "tel"):
                continue
            assert scheme == "", f"{page}: <{tag} {attribute}={url!r}>: scheme {scheme!r} not allowed"
            target, fragment = _target(site_dir, page, url)
            checked += 1
            if not (site_dir / target).is_file():
                broken.append(f"{page}: <{tag} {attribute}={url!r}> -> {target} (no such file)")
            elif fragment and target in parsed and unquote(fragment) not in parsed[target].ids:
                broken.append(f"{page}: <{tag} {attribute}={url!r}> -> no id {fragment!r} on {target}")
            elif fragment and target not in parsed:
                broken.append(f"{page}: <{tag} {attribute}={url!r}> -> anchor into a non-HTML file")
    print(f"\n{checked} local links checked on {len(parsed)} pages")
    assert checked > 100, checked
    assert broken == [], f"{len(broken)} broken links:\n" + "\n".join(broken[:50])


def test_other_hosts_only_as_plain_links_in_text(parsed):
    external: dict[str, set[str]] = defaultdict(set)
    loaded = []
    for page, info in parsed.items():
        for tag, attribute, url in info.links:
            if urlsplit(url).scheme in ("http", "https") or url.startswith("//"):
                if tag in _NAVIGATED:
                    external[url].add(page)
                else:
                    loaded.append(f"{page}: <{tag} {attribute}={url!r}>")
    print(f"\n{len(external)} external links (plain <a href>, followed only when clicked):")
    for url in sorted(external):
        print(f"  {url}  ({len(external[url])} pages)")
    assert loaded == [], "pages load files from other hosts:\n" + "\n".join(loaded)


def test_style_sheets_refer_only_to_files_of_the_site(site_dir):
    missing, remote = [], []
    for css in sorted(site_dir.rglob("*.css")):
        page = css.relative_to(site_dir).as_posix()
        for url in _CSS_URL.findall(css.read_text(encoding="utf-8")):
            scheme = urlsplit(url).scheme
            if scheme == "data" or url.startswith("#"):
                continue
            if scheme or url.startswith("//"):
                remote.append(f"{page}: url({url})")
            elif not (site_dir / _target(site_dir, page, url)[0]).is_file():
                missing.append(f"{page}: url({url})")
    assert remote == [], "style sheets load from other hosts: " + ", ".join(remote)
    assert missing == [], "style sheets refer to missing files: " + ", ".join(missing)
