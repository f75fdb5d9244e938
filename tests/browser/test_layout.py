"""The page as people see it: on a laptop the list starts on the first screen, and on every page, at a laptop's,
a small laptop's and a phone's width, in both languages, no two texts or controls are drawn over each other and
nothing is wider than its card or the screen (bounding boxes read from the page)."""

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tools.stack import Stack

from .steps import SIGNED_IN_PAGES, sign_in, submit

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1024, 360)
LAYOUT = (Path(__file__).parent / "layout.js").read_text()


def layout_faults(page: Page, width: int) -> list[str]:
    """Texts or controls drawn over each other, and what is wider than its card or the screen."""
    return page.evaluate(LAYOUT, width)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_no_text_over_text_and_nothing_out_of_its_card_on_any_page(
    page: Page, base_url: str, stack: Stack, pages: dict[str, str], language: str
):
    page.context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])
    found = {}
    for name, path in pages.items():
        if path in SIGNED_IN_PAGES and not page.locator("form.account").count():
            sign_in(page, stack)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(path)
            expect(page.locator("html")).to_have_attribute("lang", language)
            if faults := layout_faults(page, width):
                found[f"{name} at {width} px"] = faults[:5]
    assert found == {}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_at_1280_by_800_the_first_screen_shows_ten_rows_with_the_form_search_and_counts(
    page: Page, browser: Browser, base_url: str, language: str
):
    # A first page of the list at least, submitted from elsewhere (this page gets no toast for them); at most
    # three toasts show there at once, so the form's button stays free to click.
    elsewhere = browser.new_context(base_url=base_url).new_page()
    elsewhere.goto("/")
    for value in range(12):
        submit(elsewhere, "add", x=str(value), y="1")
    elsewhere.context.close()
    page.context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/")
    rows = page.locator("#computation-list tbody tr[id]")
    expect(rows.nth(11)).to_be_attached()
    on_screen = rows.evaluate_all("rows => rows.filter(row => row.getBoundingClientRect().bottom <= 800).length")
    assert on_screen >= 10
    for at_hand in ("#computation-form button[type=submit]", "#filter_q", ".summary", "#bulk-form"):
        assert page.locator(at_hand).evaluate("element => element.getBoundingClientRect().bottom <= 800"), at_hand
    assert layout_faults(page, 1280) == []
