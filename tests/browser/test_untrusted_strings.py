"""Config strings that look like HTML are shown as text and never run as script."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", ["results/models.html", "slides/index.html"])
def test_hostile_strings_do_not_run(page, site_url, path):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(site_url.rstrip("/") + "/" + path)
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None, "a config string ran as script"
    assert dialogs == []
    text = page.evaluate("document.body.innerText")
    assert "onerror=" in text, f"the hostile string should be shown as text on {path}"
