"""Accessible to everyone: axe-core finds no serious or critical violation on any page, in either language or
colour scheme; the whole flow works by keyboard alone, with the focus always visible.

axe runs inside the page through Playwright's evaluate, which our Content-Security-Policy does not stop (it
would stop an injected <script>). Each page's figures go to var/accessibility.txt.
"""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tools.stack import ROOT, Stack

from .steps import SIGNED_IN_PAGES, screenshot, sign_in

pytestmark = pytest.mark.browser

REPORT = ROOT / "var" / "accessibility.txt"
SERIOUS = ("serious", "critical")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_axe_finds_nothing_serious(
    page: Page, base_url: str, stack: Stack, pages: dict[str, str], language: str, scheme: str
):
    page.context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])
    page.emulate_media(color_scheme=scheme)
    axe, found, lines = Axe(), {}, []
    for name, path in pages.items():
        if path in SIGNED_IN_PAGES and not page.locator("form.account").count():
            sign_in(page, stack)
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", language)
        violations = axe.run(page).response["violations"]
        serious = [v for v in violations if v["impact"] in SERIOUS]
        found[name] = [f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}" for v in serious]
        lines.append(
            f"{language:8} {scheme:6} {name:12} serious/critical {len(serious)}, minor/moderate "
            f"{len(violations) - len(serious)}: {', '.join(sorted(v['id'] for v in violations)) or 'none'}"
        )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a") as report:
        report.write("\n".join(lines) + "\n")
    if scheme == "dark":
        page.goto(pages["dashboard"])
        screenshot(page, f"20-{language}-dark")
    assert {name: issues for name, issues in found.items() if issues} == {}


def tab_to(page: Page, selector: str, limit: int = 150) -> None:
    """Presses Tab until `selector` has the focus (none if it has it already), checking on the way that every
    focused element shows it."""
    for presses in range(limit):
        if presses:
            page.keyboard.press("Tab")
        focused = page.evaluate(
            """selector => {
                const element = document.activeElement;
                const style = getComputedStyle(element);
                return {
                    matches: element.matches(selector),
                    visible: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
                    name: element.outerHTML.slice(0, 80),
                };
            }""",
            selector,
        )
        if focused["matches"]:
            return
        assert focused["visible"] or not presses, f"no visible focus on {focused['name']}"
    raise AssertionError(f"{selector} not reached in {limit} presses of Tab")


def settled(page: Page) -> None:
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    page.wait_for_timeout(100)


def test_the_whole_flow_by_keyboard_alone(page: Page):
    """Submit, watch, cancel, retry, change language: Tab, typing, Enter and Space only."""
    page.goto("/")
    tab_to(page, "#id_operation")
    page.keyboard.press("ArrowDown")  # Subtract: the form for it is swapped in, the focus kept on the select
    expect(page.locator("#computation-form input[name=x]")).to_be_visible()
    tab_to(page, "#computation-form input[name=x]")
    page.keyboard.type("9")
    tab_to(page, "#computation-form input[name=y]")
    page.keyboard.type("2")
    tab_to(page, "#computation-form input[name=work_seconds]")
    page.keyboard.press("Control+A")
    page.keyboard.type("30")
    page.keyboard.press("Enter")
    link = page.locator("#computation-form .notice a")
    expect(link).to_be_visible()
    pk = link.inner_text().lstrip("#")
    row = page.locator(f"#computation-{pk}")
    expect(row.locator(".status")).to_have_text("Running", timeout=10_000)
    tab_to(page, f"#computation-{pk} .actions button")
    settled(page)
    page.keyboard.press("Enter")
    expect(row.locator(".status")).to_have_text("Cancelled", timeout=10_000)
    retry = page.locator(f"#computation-{pk} .actions button")
    expect(retry).to_have_text(re.compile("^Retry"))
    expect(retry).to_be_focused()  # the new button took the focus back: the person keeps their place
    settled(page)  # htmx takes over the new form as the swap settles (20 ms); a human is never that quick
    page.keyboard.press("Space")
    expect(row.locator(".status")).to_have_text(re.compile("Queued|Running"), timeout=10_000)
    page.goto("/")
    tab_to(page, "button[name=language][value=zh-hans]")
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    # Its 30 s of simulated work would hold a worker process from the tests that follow.
    token = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    cancelled = page.request.post(f"/computations/{pk}/cancel/", headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert cancelled.ok
