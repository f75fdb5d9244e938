"""The list as people use it: search, filters, a shared address, Back; what they type and where they are survive
the polls; values never wrap mid-number; the Activity panel agrees with the status strip once all has ended.
Screenshots of the list at 1280 and 360 px, light and dark, English and Chinese, go to var/screenshots/."""

import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from .steps import assert_not_reloaded, screenshot, screenshot_path, submit

pytestmark = pytest.mark.browser


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def search(page: Page, text: str) -> None:
    page.fill("#filter_q", text)
    page.press("#filter_q", "Enter")
    # The list that answers it polls for the search (a poll of the old list may land first).
    page.locator(f'#computation-list[hx-get*="{urlencode({"q": text})}"]').wait_for()


def shown(page: Page) -> list[str]:
    return page.locator("#computation-list tbody tr[id^=computation-]").evaluate_all("rows => rows.map(r => r.id)")


def test_search_filter_share_and_go_back(dashboard: Page, browser: Browser, base_url: str):
    big = submit(dashboard, "add", x="1234567.5", y="2")
    other = submit(dashboard, "multiply", x="3", y="4")
    row = dashboard.locator(f"#{big}")
    expect(row.locator(".status")).to_have_text("Succeeded", timeout=15_000)
    expect(row.locator(".inputs-cell")).to_have_text("x = 1,234,567.5 · y = 2")
    expect(row.locator(".result-cell")).to_have_text("1,234,569.5")

    search(dashboard, "1,234,567.5")
    assert shown(dashboard) == [big]
    assert query(dashboard) == {"q": ["1,234,567.5"]}
    dashboard.select_option("#filter_status", "succeeded")
    dashboard.locator('#computation-list[hx-get*="status=succeeded"]').wait_for()
    assert query(dashboard) == {"q": ["1,234,567.5"], "status": ["succeeded"]}
    assert shown(dashboard) == [big]
    screenshot(dashboard, "20-search")

    # The address, opened elsewhere, is the same view.
    elsewhere = browser.new_context(base_url=base_url).new_page()
    elsewhere.goto(dashboard.url)
    expect(elsewhere.locator("#filter_q")).to_have_value("1,234,567.5")
    expect(elsewhere.locator("#filter_status")).to_have_value("succeeded")
    assert shown(elsewhere) == [big]
    elsewhere.context.close()

    # Back: the search alone; Back again: the whole list; Forward: the search again.
    dashboard.go_back()
    expect(dashboard.locator("#filter_status")).to_have_value("")
    expect(dashboard.locator("#filter_q")).to_have_value("1,234,567.5")
    assert query(dashboard) == {"q": ["1,234,567.5"]} and shown(dashboard) == [big]
    dashboard.go_back()
    expect(dashboard.locator("#filter_q")).to_have_value("")
    expect(dashboard.locator(f"#{other}")).to_be_visible()
    dashboard.go_forward()
    expect(dashboard.locator("#filter_q")).to_have_value("1,234,567.5")
    assert shown(dashboard) == [big]

    # By number, and by operation in the reader's words.
    search(dashboard, "#" + other.removeprefix("computation-"))
    assert shown(dashboard) == [other]
    search(dashboard, "multi")
    assert other in shown(dashboard) and big not in shown(dashboard)


def test_nothing_wraps_mid_number_at_1280(dashboard: Page):
    long = submit(dashboard, "multiply", x="999999999999.999999", y="999999999999.999999")
    submit(dashboard, "factorize", n="600851475143")
    dashboard.set_viewport_size({"width": 1280, "height": 900})
    dashboard.reload()
    expect(dashboard.locator("#computation-list tr[id^=computation-]").first.locator(".status")).to_have_text(
        "Succeeded", timeout=15_000
    )
    assert_no_sideways_scroll(dashboard, 1280)
    # No text of a cell but the operation's name (words may wrap between them) runs over two lines.
    wrapped = dashboard.locator("#computation-list tr[id^=computation-] td:not(:nth-child(3))").evaluate_all(
        """cells => cells.flatMap(cell => {
             const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT), found = [];
             for (let text = walker.nextNode(); text; text = walker.nextNode()) {
               const range = document.createRange();
               range.selectNodeContents(text);
               if (new Set([...range.getClientRects()].map(box => Math.round(box.top))).size > 1)
                 found.push(`${cell.className}: ${text.textContent}`);
             }
             return found;
           })"""
    )
    assert wrapped == [], "texts on more than one line:\n" + "\n".join(wrapped)
    cut = dashboard.locator(f"#{long} .inputs-cell .cut")
    assert cut.evaluate("span => span.scrollWidth > span.clientWidth"), "the long inputs are cut"
    assert cut.get_attribute("title") and "999,999,999,999.999999" in cut.get_attribute("title")
    relative = dashboard.locator("#computation-list tr[id^=computation-] time").first
    expect(relative).to_have_text(re.compile(r"now|seconds? ago|minutes? ago"))
    assert re.fullmatch(r"\d+ \w{3} \d{4}, \d\d:\d\d:\d\d", relative.get_attribute("title"))


def test_a_half_typed_search_the_focus_and_the_scroll_survive_changed_polls(dashboard: Page):
    dashboard.set_viewport_size({"width": 1280, "height": 500})
    row_id = submit(dashboard, "count_primes", n="1000", work_seconds="6")
    row = dashboard.locator(f"#{row_id}")
    expect(row.locator(".status")).to_have_text("Running", timeout=10_000)
    dashboard.locator("#filter_q").click()
    dashboard.keyboard.type("12")
    scrolled = dashboard.evaluate("window.scrollTo(0, 120), window.scrollY")
    for _ in range(2):  # two polls that changed the list (its progress moved), each morphing the running row
        row.evaluate("row => { row.dataset.old = 'true' }")
        dashboard.locator(f"#{row_id}:not([data-old])").wait_for(timeout=5_000)
    expect(dashboard.locator("#filter_q")).to_have_value("12")
    expect(dashboard.locator("#filter_q")).to_be_focused()
    assert dashboard.evaluate("window.scrollY") == scrolled
    dashboard.keyboard.type("3")
    expect(dashboard.locator("#filter_q")).to_have_value("123")
    assert query(dashboard) == {}, "nothing was searched until Enter"
    assert_not_reloaded(dashboard)


def test_the_activity_panel_agrees_with_the_status_strip_after_the_last_poll(dashboard: Page):
    row = dashboard.locator(f"#{submit(dashboard, 'add', x='5', y='5', work_seconds='2')}")
    expect(row.locator(".status")).to_have_text("Succeeded", timeout=15_000)
    deadline = time.monotonic() + 20
    while not settled(dashboard) and time.monotonic() < deadline:  # other tests' work, ending
        time.sleep(0.5)
    time.sleep(1.5)  # a last poll, had there been one to make
    strip = {
        status: int(dashboard.locator(f".summary .status-{status} strong").inner_text().replace(",", ""))
        for status in ("succeeded", "failed", "cancelled")
    }
    legend = dashboard.locator(".activity .legend li").all_inner_texts()
    chart = {text.split()[0].lower(): int(text.split()[-1].replace(",", "")) for text in legend}
    assert chart == strip
    assert_not_reloaded(dashboard)


def assert_no_sideways_scroll(page: Page, width: int) -> None:
    wider = page.evaluate(
        """width => [...document.querySelectorAll('body *')]
             .filter(element => element.getBoundingClientRect().right > width + 0.5)
             .filter(element => element.parentElement.getBoundingClientRect().right <= width + 0.5)
             .map(element => `${element.tagName}.${element.className}: ${element.getBoundingClientRect().right}`)""",
        width,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "\n".join(wider[:10])
    if width >= 1280:  # on a laptop the list fits the page: it does not scroll in its box either
        table = page.locator("#computation-list .table-wrap")
        widths = table.evaluate("wrap => [wrap.scrollWidth, wrap.clientWidth]")
        columns = table.locator("thead th").evaluate_all("cells => cells.map(cell => Math.round(cell.offsetWidth))")
        assert widths[0] <= widths[1], f"the list is {widths[0]} px wide in {widths[1]} px; columns: {columns}"


def settled(page: Page) -> bool:
    """Nothing queued or running, by the status strip."""
    counts = [page.locator(f".summary .status-{s} strong").inner_text() for s in ("queued", "running")]
    return counts == ["0", "0"]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_screenshots_of_the_list(page: Page, base_url: str, language: str):
    page.goto("/")
    submit(page, "multiply", x="1234.5", y="2")  # a row at least, when run alone
    page.context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 800})
            page.goto("/")
            expect(page.locator("#computation-list tr[id^=computation-]").first).to_be_visible()
            assert_no_sideways_scroll(page, width)
            if width < 700:  # a phone's screen: the list's top, where the cards begin
                page.evaluate("document.querySelector('#list-heading').scrollIntoView()")
            page.screenshot(path=screenshot_path(f"list-{language}-{scheme}-{width}"), caret="initial")
