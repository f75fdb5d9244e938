"""The Workers page in a browser: live, its controls without a reload, and screenshots in both languages
(var/screenshots/workers-*.png)."""

import pytest
from playwright.sync_api import Page, expect

from tools.stack import Stack

from .steps import assert_not_reloaded, screenshot_path, sign_in, submit


def test_pausing_and_resuming_a_queue_updates_the_page_in_place(dashboard: Page, stack: Stack):
    sign_in(dashboard, stack)
    dashboard.goto("/workers/")
    dashboard.evaluate("window.notReloaded = true")
    row = dashboard.locator('tr[data-queue="heavy"]')
    expect(dashboard.locator('tr[data-worker^="heavy@"][data-state="online"]')).to_be_visible()
    row.get_by_role("button", name="Pause").click()
    expect(row.locator(".status")).to_have_text("paused")
    expect(dashboard.locator("#workers-section .notice")).to_contain_text("The Heavy queue is paused")
    row.get_by_role("button", name="Resume").click()
    expect(row.locator(".status")).to_have_text("running")
    assert_not_reloaded(dashboard)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_screenshots_of_the_workers_page(page: Page, base_url: str, stack: Stack, language: str):
    sign_in(page, stack)
    submit(page, "factorize", n="360", work_seconds="8")  # a computation under the heavy worker
    page.context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/workers/")
    expect(page.locator('tr[data-worker^="heavy@"] a[href^="/computations/"]').first).to_be_visible(timeout=10_000)
    for table in page.locator("#workers-section .table-wrap").all():  # both tables fit a laptop's screen
        widths = table.evaluate("wrap => [wrap.scrollWidth, wrap.clientWidth]")
        assert widths[0] <= widths[1], f"a table is {widths[0]} px wide in {widths[1]} px"
    page.screenshot(path=screenshot_path(f"workers-{language}"), caret="initial", full_page=True)
