"""A workflow built on its page with the keyboard alone, then watched as its graph fills in."""

import pytest
from playwright.sync_api import Page, expect

from .steps import assert_not_reloaded, screenshot

pytestmark = pytest.mark.browser


def choose(page: Page, select: str, *keys: str) -> None:
    """A select, focused, set by its options' first letters (as a person does with a closed select: "S" again goes to
    the next option that begins with S), each change's preview answered before the next key."""
    page.focus(select)
    press(page, *keys)


def press(page: Page, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)
        settled(page)


def settled(page: Page) -> None:
    """The builder's preview answered: a person's next change comes after it (a change while one is on its way
    replaces it, which htmx logs as an error)."""
    page.wait_for_timeout(100)
    expect(page.locator("#workflow-builder.htmx-request")).to_have_count(0)


def test_a_three_step_workflow_built_by_keyboard_runs_and_its_graph_fills_in(dashboard: Page):
    dashboard.goto("/")
    dashboard.get_by_role("link", name="Build a workflow").focus()
    dashboard.keyboard.press("Enter")
    expect(dashboard.get_by_role("heading", name="What it makes")).to_be_visible()
    dashboard.evaluate("window.notReloaded = true")

    dashboard.focus("#id_name")
    dashboard.keyboard.type("product, then its factors")
    dashboard.keyboard.press("Tab")
    settled(dashboard)
    choose(dashboard, "#id_step-1-operation", "M")  # Multiply
    expect(dashboard.locator("#workflow-builder svg a")).to_have_count(1)
    dashboard.focus("#id_step-1-x-value")
    dashboard.keyboard.type("6")
    dashboard.keyboard.press("Tab")  # y's source: a value
    settled(dashboard)
    dashboard.keyboard.press("Tab")
    dashboard.keyboard.type("7")
    dashboard.keyboard.press("Tab")
    settled(dashboard)

    dashboard.focus("#workflow-add")
    dashboard.keyboard.press("Enter")
    expect(dashboard.locator("#id_step-2-operation")).to_be_focused()
    press(dashboard, "F")  # Factorize
    choose(dashboard, "#id_step-2-n-source", "R")  # "Result of step 1", the only option so begun
    expect(dashboard.locator("#workflow-builder svg path.edge")).to_have_count(1)

    dashboard.focus("#workflow-add")
    dashboard.keyboard.press("Enter")
    expect(dashboard.locator("#id_step-3-operation")).to_be_focused()
    press(dashboard, "S", "S")  # Subtract, then Sum of values
    expect(dashboard.locator("#step-3-values-steps-1")).to_be_visible()
    dashboard.focus("#step-3-values-steps-1")
    dashboard.keyboard.press("Space")
    settled(dashboard)
    dashboard.focus("#step-3-after-2")
    dashboard.keyboard.press("Space")
    settled(dashboard)
    dashboard.focus("#id_step-3-values-extra")
    dashboard.keyboard.type("0.5")
    dashboard.keyboard.press("Tab")
    settled(dashboard)
    expect(dashboard.locator("#workflow-builder svg path.edge")).to_have_count(3)
    expect(dashboard.locator("#workflow-builder svg path.edge-wait")).to_have_count(1)
    assert_not_reloaded(dashboard)  # every change above came back as a fragment
    screenshot(dashboard, "30-workflow-builder")

    dashboard.focus("#workflow-create")
    dashboard.keyboard.press("Enter")
    expect(dashboard.locator("#workflow-title")).to_contain_text("product, then its factors")
    graph = dashboard.locator("#workflow svg.workflow-graph")
    expect(graph.locator("a")).to_have_count(3)
    expect(graph.locator("rect.status-succeeded")).to_have_count(3, timeout=30_000)
    rows = dashboard.locator("#workflow table tbody tr")
    expect(rows.nth(0)).to_contain_text("42")
    expect(rows.nth(1)).to_contain_text("2 × 3 × 7")
    expect(rows.nth(2)).to_contain_text("42.5")
    screenshot(dashboard, "31-workflow-done")
