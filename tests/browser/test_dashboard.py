"""A person at the dashboard, in Chromium, through HAProxy: submit, watch, cancel, read the details.

Every page load is checked for requests to any other host and for console errors (a CSP violation is one).
Screenshots of each step go to var/screenshots/.
"""

import contextlib
import json
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dj_database_url
import MySQLdb
import MySQLdb.cursors
import pytest
from playwright.sync_api import Page, expect

from compose.local.stack import ROOT, Stack

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "var" / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    # Debian's Chromium; Playwright's own browser download is not reachable from here.
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": args}


@pytest.fixture(scope="session")
def base_url(stack: Stack) -> str:
    return stack.url


@pytest.fixture
def dashboard(page: Page, base_url: str) -> Iterator[Page]:
    """The dashboard, opened, with a marker that a reload would lose; fails the test on any request to another
    host and on any console error."""
    foreign: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(base_url) else foreign.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/")
    page.evaluate("window.notReloaded = true")
    yield page
    assert foreign == [], "requests to other hosts"
    # Chromium logs every 4xx; those the page answers in place (400, 409, 422) are not errors.
    expected = re.compile(r"Failed to load resource: the server responded with a status of (400|409|422)\b")
    assert [error for error in errors if not expected.match(error)] == [], "console errors"


def screenshot(page: Page, name: str) -> Path:
    path = screenshot_path(name)
    # caret="initial": hiding the caret injects a <style>, which our CSP rightly blocks.
    page.screenshot(path=path, full_page=True, caret="initial")
    return path


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


def submit(page: Page, operation: str, **inputs: str) -> str:
    """Fills and submits the form; returns the new row's id attribute (computation-<pk>)."""
    pick(page, operation)
    for name, value in inputs.items():
        page.fill(f"#computation-form input[name={name}]", value)
    page.get_by_role("button", name="Compute").click()
    link = page.locator("#computation-form .notice a")
    expect(link).to_be_visible()
    return f"computation-{link.inner_text().lstrip('#')}"


def pick(page: Page, operation: str, form: str = "#computation-form") -> None:
    """Picks an operation and waits until its form has been swapped in (what is typed into the old one is lost)."""
    page.locator(form).evaluate("form => { form.dataset.stale = 'true' }")
    page.select_option("#id_operation", operation)
    page.locator(f"{form}:not([data-stale])").wait_for()


@contextlib.contextmanager
def stack_database(stack: Stack) -> Iterator[MySQLdb.cursors.Cursor]:
    """A cursor on the stack's own database, for rows no form would write."""
    database = dj_database_url.parse(stack.environment["DATABASE_URL"])
    connection = MySQLdb.connect(
        host=database["HOST"], port=int(database["PORT"]), user=database["USER"], password=database["PASSWORD"],
        database=database["NAME"], autocommit=True,
    )  # fmt: skip
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.notReloaded") is True


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

    stack.signal("worker", signal.SIGSTOP)
    try:
        row = dashboard.locator(f"#{submit(dashboard, 'add', x='1', y='1')}")
        expect(row.locator(".status")).to_have_text("Queued")
        time.sleep(1.5)  # the first poll after the page's load may swap once
        box = row.locator("td.select input")
        box.focus()
        box.evaluate("element => { element.dataset.marked = 'same element' }")
        scrolled = dashboard.evaluate("window.scrollTo(0, 300), window.scrollY")
        before = answered_304()
        time.sleep(4)
        not_modified = answered_304() - before
        expect(row.locator(".status")).to_have_text("Queued")
        expect(dashboard.locator("#computation-list h2")).to_have_text("Computations")
        assert not_modified >= 3, f"{not_modified} polls answered 304"
        assert box.evaluate("element => element.dataset.marked") == "same element", "the row was not replaced"
        assert box.evaluate("element => document.activeElement === element"), "the focus stayed"
        assert dashboard.evaluate("window.scrollY") == scrolled
    finally:
        stack.signal("worker", signal.SIGCONT)
    expect(row.locator(".status")).to_have_text("Succeeded", timeout=15_000)
    print(f"\nworker paused 4 s: {not_modified} polls answered 304, the list intact")


def test_on_a_phone_nothing_scrolls_sideways(dashboard: Page):
    dashboard.set_viewport_size({"width": 360, "height": 780})
    dashboard.reload()
    width = dashboard.evaluate("document.documentElement.scrollWidth")
    screenshot(dashboard, "07-phone")
    assert width <= 360


def test_hostile_values_in_a_computation_are_shown_as_text_and_run_nothing(dashboard: Page, stack: Stack):
    """Inputs and errors are validated on the way in; if such values reached the database anyway (an old row,
    another writer), the pages still show them as text."""
    script, image = "<script>alert('inputs')</script>", '"><img src=x onerror=alert(1)>'
    with stack_database(stack) as cursor:
        cursor.execute(
            "INSERT INTO tasks_computation (operation, inputs, work_seconds, status, progress, result, error, attempts,"
            " max_attempts, worker, task_id, created_at, updated_at, in_main_list) VALUES (%s, %s, 0, 'failed', 0, '',"
            " %s, 1, 3, %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), TRUE)",
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
    stack.signal("worker", signal.SIGSTOP)  # they stay queued while we tick them
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
        stack.signal("worker", signal.SIGCONT)
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


def test_the_activity_panel_draws_the_last_hour(dashboard: Page, stack: Stack):
    """An hour of finished computations, written as the workers would have, drawn as stacked bars, with the same
    figures in the screen readers' table (the other tests' computations all ended in the last few minutes)."""
    expected: dict[int, list[int]] = {}  # minutes ago -> succeeded, failed, cancelled
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
        expected[minute] = [succeeded, failed, cancelled]
    with stack_database(stack) as cursor:
        for operation, status, ended, seconds in rows:
            cursor.execute(
                "INSERT INTO tasks_computation (operation, inputs, work_seconds, status, progress, result, error,"
                " attempts, max_attempts, worker, task_id, created_at, updated_at, started_at, finished_at,"
                f" in_main_list) VALUES (%s, '{{}}', 0, %s, 100, '', '', 1, 3, 'test', %s, {ended}, {ended},"
                f" {ended} - INTERVAL %s MICROSECOND, {ended}, FALSE)",
                (operation, status, uuid.uuid4().hex, int(seconds * 1_000_000)),
            )
    panel = dashboard.locator(".activity")
    figures = panel.locator("table.visually-hidden tbody tr")
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
