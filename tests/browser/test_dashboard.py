"""A person at the dashboard, in Chromium, through HAProxy: submit, watch, cancel, read the details.

Every page load is checked for requests to any other host and for console errors (a CSP violation is one).
Screenshots of each step go to var/screenshots/.
"""

import json
import re
import signal
import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from tools.stack import Stack

from .steps import assert_not_reloaded, pick, screenshot, screenshot_path, stack_database, submit

pytestmark = pytest.mark.browser


def test_submit_then_watch_progress_and_result_arrive_without_a_reload(dashboard: Page):
    screenshot(dashboard, "01-dashboard")
    row_id = submit(dashboard, "add", x="1.5", y="2.25", work_seconds="4")
    row = dashboard.locator(f"#{row_id}")
    progress = row.locator("progress")
    expect(progress).to_be_visible(timeout=10_000)
    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(seen) < 3:
        if progress.count():
            seen.add(int(progress.get_attribute("value") or 0))
        time.sleep(0.3)
    screenshot(dashboard, "02-running")
    assert len(seen) >= 3, f"the progress bar moved through {sorted(seen)}"
    expect(row.locator(".status")).to_have_text("Succeeded", timeout=15_000)
    expect(row.locator(".result-cell")).to_have_text("3.75")
    screenshot(dashboard, "03-succeeded")
    assert_not_reloaded(dashboard)


def test_a_validation_message_appears_in_place(dashboard: Page):
    rows_before = dashboard.locator("#computation-list tbody tr").count()
    pick(dashboard, "divide")
    dashboard.fill("#computation-form input[name=x]", "1")
    dashboard.fill("#computation-form input[name=y]", "0")
    dashboard.get_by_role("button", name="Compute").click()
    expect(dashboard.locator("#computation-form .errorlist")).to_have_text("Division by zero is not possible.")
    expect(dashboard.locator("#computation-form input[name=y]")).to_have_attribute("aria-invalid", "true")
    screenshot(dashboard, "04-validation")
    assert dashboard.locator("#computation-list tbody tr").count() == rows_before
    assert_not_reloaded(dashboard)


def test_cancel_a_running_computation(dashboard: Page):
    row = dashboard.locator(f"#{submit(dashboard, 'count_primes', n='1000', work_seconds='30')}")
    expect(row.locator(".status")).to_have_text("Running", timeout=10_000)
    row.get_by_role("button", name="Cancel").click()
    expect(dashboard.locator("#notice")).to_contain_text("is cancelled")
    expect(row.locator(".status")).to_have_text("Cancelled")
    expect(row.get_by_role("button", name="Retry")).to_be_visible()
    screenshot(dashboard, "05-cancelled")
    assert_not_reloaded(dashboard)


def test_the_detail_page_is_live_while_the_computation_runs(dashboard: Page):
    row_id = submit(dashboard, "factorize", n="600851475143", work_seconds="3")
    dashboard.locator(f"#{row_id} a").first.click()
    expect(dashboard.locator("#computation-detail h1")).to_contain_text("Factorize n into primes")
    dashboard.evaluate("window.notReloaded = true")
    expect(dashboard.locator("#computation-detail .status")).to_have_text("Running", timeout=10_000)
    expect(dashboard.locator("#computation-detail .result")).to_have_text("71 × 839 × 1471 × 6857", timeout=15_000)
    expect(dashboard.locator("#computation-detail .status")).to_have_text("Succeeded")
    screenshot(dashboard, "06-detail")
    assert_not_reloaded(dashboard)


def test_the_list_stays_intact_across_unchanged_polls(dashboard: Page, stack: Stack):
    """With the worker paused nothing changes: the server answers each poll 304, which htmx leaves unswapped
    (the partial asks with its own ETag; see if_none_match.html), so the list keeps its very elements, the focus
    and the scroll position, and keeps polling."""

    def answered_304() -> int:
        return next(
            int(row["hrsp_3xx"]) for row in stack.stats() if row["# pxname"] == "web" and row["svname"] == "BACKEND"
        )

    stack.signal_workers(signal.SIGSTOP)
    try:
        row = dashboard.locator(f"#{submit(dashboard, 'add', x='1', y='1')}")
        expect(row.locator(".status")).to_have_text("Queued")
        dashboard.reload()  # the page's own first poll is unchanged as well
        box = row.locator("td.select input")
        box.focus()
        box.evaluate("element => { element.dataset.marked = 'same element' }")
        scrolled = dashboard.evaluate("window.scrollTo(0, 300), window.scrollY")
        before = answered_304()
        time.sleep(4)
        not_modified = answered_304() - before
        expect(row.locator(".status")).to_have_text("Queued")
        expect(dashboard.locator("#list-heading")).to_have_text("Computations")
        assert not_modified >= 3, f"{not_modified} polls answered 304"
        assert box.evaluate("element => element.dataset.marked") == "same element", "the row was not replaced"
        assert box.evaluate("element => document.activeElement === element"), "the focus stayed"
        assert dashboard.evaluate("window.scrollY") == scrolled
    finally:
        stack.signal_workers(signal.SIGCONT)
    expect(row.locator(".status")).to_have_text("Succeeded", timeout=15_000)
    print(f"\nworker paused 4 s: {not_modified} polls answered 304, the list intact")


def test_on_a_phone_nothing_scrolls_sideways(dashboard: Page):
    """At 360 px: no sideways scroll, the list as cards, every control at least 44 px for a finger."""
    submit(dashboard, "add", x="2", y="3")
    dashboard.set_viewport_size({"width": 360, "height": 780})
    dashboard.reload()
    width = dashboard.evaluate("document.documentElement.scrollWidth")
    screenshot(dashboard, "07-phone")
    assert width <= 360
    expect(dashboard.locator("#computation-list .table-wrap > table > thead")).to_have_css("position", "absolute")
    small = dashboard.evaluate(
        """() => [...document.querySelectorAll(
                'button, select, input:not([type=hidden]), .site-header a'
            )].filter(element => element.offsetParent !== null)
             .map(element => [element.outerHTML.slice(0, 60), element.getBoundingClientRect()])
             .filter(([, box]) => box.height < 43.5 || box.width < 43.5)
             .map(([name, box]) => `${name}: ${Math.round(box.width)}x${Math.round(box.height)}`)"""
    )
    assert small == [], "touch targets under 44 px:\n" + "\n".join(small)


def test_the_colour_scheme_follows_the_system_until_one_is_picked(dashboard: Page):
    def background() -> str:
        return dashboard.evaluate("getComputedStyle(document.body).backgroundColor")

    dark, light = "rgb(18, 21, 27)", "rgb(245, 246, 248)"
    dashboard.emulate_media(color_scheme="dark")
    assert background() == dark, "prefers-color-scheme"
    dashboard.get_by_role("button", name="Light").click()
    expect(dashboard.locator("html")).to_have_attribute("data-theme", "light")
    assert background() == light, "the choice wins over the system"
    dashboard.emulate_media(color_scheme="light")
    dashboard.get_by_role("button", name="Dark").click()
    expect(dashboard.locator("html")).to_have_attribute("data-theme", "dark")  # the post's answer has loaded
    dashboard.reload()
    expect(dashboard.locator("html")).to_have_attribute("data-theme", "dark")
    assert background() == dark, "remembered"
    screenshot(dashboard, "21-dark")
    dashboard.get_by_role("button", name="Auto").click()
    expect(dashboard.get_by_role("button", name="Auto")).to_be_disabled()  # the post's answer has loaded
    assert dashboard.locator("html").get_attribute("data-theme") is None and background() == light


def test_hostile_values_in_a_computation_are_shown_as_text_and_run_nothing(dashboard: Page, stack: Stack):
    """Inputs and errors are validated on the way in; if such values reached the database anyway (an old row,
    another writer), the pages still show them as text."""
    script, image = "<script>alert('inputs')</script>", '"><img src=x onerror=alert(1)>'
    with stack_database(stack) as cursor:
        cursor.execute(
            "INSERT INTO tasks_computation (operation, inputs, work_seconds, status, progress, result, error, attempts,"
            " max_attempts, worker, task_id, created_at, updated_at, finished_at, in_main_list) VALUES (%s, %s, 0,"
            " 'failed', 0, '', %s, 1, 3, %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), TRUE)",
            (script, json.dumps({"x": image}), f"{script}{image}", image, uuid.uuid4().hex),
        )
        pk = cursor.lastrowid
    dialogs: list[str] = []
    dashboard.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    dashboard.goto("/")
    row = dashboard.locator(f"#computation-{pk}")
    expect(row.locator("td").nth(2)).to_have_text(script)
    expect(row.locator(".inputs-cell")).to_have_text(f"x = {image}")
    dashboard.goto(f"/computations/{pk}/")
    expect(dashboard.locator("#computation-detail .error-text")).to_have_text(f"{script}{image}")
    screenshot(dashboard, "08-hostile-values")
    assert dialogs == [] and dashboard.locator("#computation-detail img").count() == 0


def test_bulk_cancel_of_ticked_rows_with_a_confirmation(dashboard: Page, stack: Stack):
    stack.signal_workers(signal.SIGSTOP)  # they stay queued while we tick them
    try:
        rows = [dashboard.locator(f"#{submit(dashboard, 'add', x=str(n), y='1')}") for n in range(3)]
        for row in rows[:2]:
            row.locator("td.select input").check()
        time.sleep(2.5)  # polls replace the list around the ticks
        assert [row.locator("td.select input").is_checked() for row in rows] == [True, True, False]
        dashboard.locator("#bulk-form").get_by_role("button", name="Cancel").first.click()
        expect(dashboard.locator("#bulk")).to_contain_text("Cancel 2 computations?")
        screenshot(dashboard, "09-bulk-confirm")
        dashboard.get_by_role("button", name="Yes, cancel them").click()
        expect(dashboard.locator("#bulk")).to_contain_text("2 computations cancelled.")
        for row, status in zip(rows, ["Cancelled", "Cancelled", "Queued"], strict=True):
            expect(row.locator(".status")).to_have_text(status)
        screenshot(dashboard, "10-bulk-done")
    finally:
        stack.signal_workers(signal.SIGCONT)
    assert_not_reloaded(dashboard)


def test_a_batch_from_the_form_to_its_live_page_and_its_row_in_the_list(dashboard: Page):
    dashboard.get_by_role("link", name="Run over a range…").click()
    expect(dashboard.locator("#batch-heading")).to_have_text("Run over a range")
    dashboard.evaluate("window.notReloaded = true")
    pick(dashboard, "multiply", form="#batch-form")
    dashboard.select_option("#id_varied", "y")
    for name, value in {"start": "1", "stop": "12", "step": "1", "x": "3", "work_seconds": "1"}.items():
        dashboard.fill(f"#batch-form input[name={name}]", value)
    screenshot(dashboard, "11-batch-form")
    dashboard.get_by_role("button", name="Run the batch").click()
    expect(dashboard.locator("#batch-title")).to_contain_text("Batch #")
    expect(dashboard.locator("#batch .batch-progress")).to_contain_text("of 12 ended")
    screenshot(dashboard, "12-batch-running")
    expect(dashboard.locator("#batch .batch-progress")).to_contain_text("12 of 12 ended", timeout=30_000)
    expect(dashboard.locator("#batch tbody tr").nth(11)).to_contain_text("36")
    screenshot(dashboard, "13-batch-done")
    dashboard.goto("/")
    expect(dashboard.locator(".batch-row").first).to_contain_text("y = 1 … 12, step 1; x = 3")
    values = dashboard.locator(".batch-values").first
    values.locator("summary").click()
    expect(values.locator("details table tbody tr")).to_have_count(10)
    screenshot(dashboard, "14-batch-in-the-list")


ROLL_UP_AGAIN = """
import time
from tasks import jobs, rollups
from tasks import redis_clients
from tasks.models import Rollup, RollupMark
while not redis_clients.durable().set(jobs.ROLL_UP_LOCK, 1, nx=True, ex=60):
    time.sleep(0.1)
Rollup.objects.all().delete()
RollupMark.objects.all().delete()
rollups.roll_up()
redis_clients.durable().delete(jobs.ROLL_UP_LOCK)
"""


def test_the_activity_panel_draws_the_last_hour(dashboard: Page, stack: Stack):
    """An hour of finished computations, written as the workers would have, drawn as stacked bars, with the same
    figures in the screen readers' table (the other tests' computations all ended in the last few minutes)."""
    expected: dict[int, list[int]] = {}  # minutes ago -> succeeded, failed, cancelled, not run
    rows = []
    for minute in range(1, 59):
        ended = f"UTC_TIMESTAMP(6) - INTERVAL {minute} MINUTE"
        succeeded = 2 + (minute * 7) % 5 + (4 if 20 <= minute <= 30 else 0)
        for index in range(succeeded):
            operation, seconds = [("add", 0.004), ("count_primes", 1.5 + index / 3), ("factorize", 0.8)][index % 3]
            rows.append((operation, "succeeded", ended, seconds))
        if failed := int(minute % 7 == 0):
            rows.append(("estimate_pi", "failed", ended, 2.0))
        if cancelled := int(minute % 11 == 0):
            rows.append(("count_primes", "cancelled", ended, 0.0))
        expected[minute] = [succeeded, failed, cancelled, 0]
    with stack_database(stack) as cursor:
        for operation, status, ended, seconds in rows:
            cursor.execute(
                "INSERT INTO tasks_computation (operation, inputs, work_seconds, status, progress, result, error,"
                " attempts, max_attempts, worker, task_id, created_at, updated_at, started_at, finished_at,"
                f" in_main_list) VALUES (%s, '{{}}', 0, %s, 100, '', '', 1, 3, 'test', %s, {ended}, {ended},"
                f" {ended} - INTERVAL %s MICROSECOND, {ended}, FALSE)",
                (operation, status, uuid.uuid4().hex, int(seconds * 1_000_000)),
            )
    # Rows written into minutes the rollups have already counted: they count again from the table, under beat's
    # lock, as on a first run.
    stack.run_once("python", "manage.py", "shell", "-c", ROLL_UP_AGAIN)
    panel = dashboard.locator(".activity")
    figures = panel.locator(".visually-hidden table tbody tr")
    deadline = time.monotonic() + 15  # the panel's figures are shared for ten seconds
    while figures.count() < len(expected) and time.monotonic() < deadline:
        time.sleep(1)
        dashboard.reload()
    oldest = [[int(cell) for cell in row.locator("td").all_inner_texts()] for row in figures.all()[:28]]
    assert oldest == [expected[minute] for minute in range(58, 30, -1)]
    assert panel.locator("rect.bar").count() >= 58 + 8 + 5, "a segment per minute and status"
    expect(panel.locator(".run-times")).to_contain_text("Count primes below n")
    panel.screenshot(path=screenshot_path("15-activity"), caret="initial")


def test_the_pages_in_simplified_chinese(dashboard: Page):
    """The switcher in the header: one click, then every page reads in Chinese, and stays so."""
    dashboard.get_by_role("button", name="简体中文").click()
    expect(dashboard.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(dashboard.get_by_role("button", name="简体中文")).to_be_disabled()
    pick(dashboard, "multiply")
    for name, value in {"x": "6", "y": "7"}.items():
        dashboard.fill(f"#computation-form input[name={name}]", value)
    dashboard.get_by_role("button", name="开始计算").click()
    link = dashboard.locator("#computation-form .notice a")
    expect(link).to_be_visible()
    pk = link.inner_text().lstrip("#")
    expect(dashboard.locator(f"#computation-{pk} .status")).to_have_text("成功")
    screenshot(dashboard, "16-zh-dashboard")
    dashboard.goto(f"/computations/{pk}/")
    expect(dashboard.locator("#computation-detail")).to_contain_text("42")
    screenshot(dashboard, "17-zh-detail")
    dashboard.get_by_role("link", name="← 全部计算").click()
    dashboard.get_by_role("link", name="按范围运行…").click()
    pick(dashboard, "add", form="#batch-form")
    dashboard.select_option("#id_varied", "x")
    for name, value in {"start": "1", "stop": "5", "step": "1", "y": "10"}.items():
        dashboard.fill(f"#batch-form input[name={name}]", value)
    dashboard.get_by_role("button", name="运行批次").click()
    expect(dashboard.locator("#batch-title")).to_contain_text("批次")
    expect(dashboard.locator("#batch tbody tr").nth(4)).to_contain_text("15", timeout=30_000)
    screenshot(dashboard, "18-zh-batch")
    assert "Succeeded" not in dashboard.locator("main").inner_text()


def test_a_toast_says_when_a_computation_from_this_browser_ends(dashboard: Page):
    """The tab's title counts what runs; when the computation ends a toast says so, announced politely, and a
    keyboard closes it."""
    row_id = submit(dashboard, "multiply", x="6", y="7", work_seconds="2")
    expect(dashboard).to_have_title(re.compile(r"^\(1 running\) Computations"), timeout=5_000)
    toast = dashboard.locator("#toasts dialog.toast")
    expect(toast).to_contain_text(f"#{row_id.removeprefix('computation-')} Multiply succeeded: 42", timeout=15_000)
    expect(dashboard.locator("#toasts")).to_have_attribute("aria-live", "polite")
    expect(dashboard).to_have_title(re.compile(r"^Computations"))
    screenshot(dashboard, "19-toast")
    toast.get_by_role("button", name="Dismiss").focus()
    dashboard.keyboard.press("Enter")
    expect(toast).to_be_hidden()
    assert_not_reloaded(dashboard)
