"""Result tables sort by a click on a header (numbers by their leading number, "n/a" last),
and figures open in a lightbox that keeps their alt text and loads nothing from outside."""
from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.browser

# A result table as the site writes it (table_markdown), with the cells the sort must handle.
_CELLS = ["0.950 [0.900, 0.990]", "n/a", "0.200 [0.100, 0.300]", "inf", "-0.500", "10", "0.210"]
_TABLE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title></head><body>
<div class="result-table"><table><thead><tr><th>group</th><th>accuracy</th></tr></thead><tbody>
{rows}
</tbody></table></div>
<script src="tablesort.min.js"></script><script src="tablesort-init.js"></script>
</body></html>"""


@pytest.fixture
def table_url(site_dir, tmp_path, serve_directory) -> str:
    """A page with one hand-made result table and the site's own tablesort files."""
    shutil.copy(site_dir / "assets/vendor/tablesort/tablesort.min.js", tmp_path)
    shutil.copy(site_dir / "javascripts/tablesort-init.js", tmp_path)
    rows = "\n".join(f"<tr><td>g{i}</td><td>{cell}</td></tr>" for i, cell in enumerate(_CELLS))
    (tmp_path / "table.html").write_text(_TABLE_PAGE.format(rows=rows), encoding="utf-8")
    return serve_directory(tmp_path) + "table.html"


def _column(page, index: int) -> list[str]:
    return page.eval_on_selector_all(
        ".result-table tbody tr", f"(rows) => rows.map((r) => r.cells[{index}].textContent.trim())")


def test_numbers_sort_by_their_leading_number_and_missing_values_stay_last(page, table_url):
    page.goto(table_url, wait_until="load")
    header = page.locator("th", has_text="accuracy")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert _column(page, 1) == ["-0.500", "0.200 [0.100, 0.300]", "0.210", "0.950 [0.900, 0.990]", "10", "inf", "n/a"]
    header.press("Enter")  # keyboard works too
    assert header.get_attribute("aria-sort") == "descending"
    assert _column(page, 1) == ["inf", "10", "0.950 [0.900, 0.990]", "0.210", "0.200 [0.100, 0.300]", "-0.500", "n/a"]


def test_text_columns_sort_as_text(page, table_url):
    page.goto(table_url, wait_until="load")
    page.locator("th", has_text="group").click()
    assert _column(page, 0) == sorted(f"g{i}" for i in range(len(_CELLS)))


def test_result_tables_of_the_site_are_sortable(page, site_url):
    page.goto(site_url + "results/models.html", wait_until="load")
    headers = page.locator(".result-table table th[role=columnheader]")
    headers.first.wait_for(state="attached")
    tables = page.locator(".result-table table").count()
    assert tables >= 2 and headers.count() >= 2 * tables
    numeric = page.locator(".result-table table th[data-sort-method=leading-number]").first
    numeric.click()
    column = numeric.evaluate("(th) => th.cellIndex")
    values = numeric.evaluate(
        """(th) => Array.from(th.closest("table").tBodies[0].rows)
                .map((r) => r.cells[th.cellIndex].textContent.trim())
                .filter((t) => !/^(n\\/a|)$/i.test(t)).map((t) => parseFloat(t))""")
    assert values == sorted(values), (column, values)


def test_figures_open_in_a_lightbox_with_their_alt_text(page, request_recorder, site_url):
    page.goto(site_url + "results/models.html", wait_until="load")
    link = page.locator("figure.result-figure a.glightbox").first
    alt = link.locator("img").get_attribute("alt")
    assert alt and alt.strip()
    link.click()
    enlarged = page.locator(".glightbox-container .gslide.current img")
    enlarged.wait_for(state="visible")
    assert enlarged.get_attribute("alt") == alt
    assert enlarged.evaluate("(img) => img.complete && img.naturalWidth > 0")
    page.keyboard.press("Escape")
    page.locator(".glightbox-container").wait_for(state="detached")
    request_recorder.assert_local()
