"""What the browser tests do on the pages: fill and submit forms, take screenshots, write rows no form would."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dj_database_url
import MySQLdb
import MySQLdb.cursors
from playwright.sync_api import Page, expect

from tools.stack import ROOT, Stack

SCREENSHOTS = ROOT / "var" / "screenshots"
# The pages for operators: a check of every page signs in before the first of them.
# Pages for someone signed in (an operator, for the last two): the checks of every page sign in before the first.
SIGNED_IN_PAGES = ("/accounts/tokens/", "/webhooks/", "/storage/", "/workers/")


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
    # The answer replaces the form: only the new one's notice names the new computation.
    page.locator("#computation-form").evaluate("form => { form.dataset.stale = 'true' }")
    page.get_by_role("button", name="Compute").click()
    link = page.locator("#computation-form:not([data-stale]) .notice a")
    expect(link).to_be_visible()
    return f"computation-{link.inner_text().lstrip('#')}"


def fill_schedule(page: Page, name: str, cron: str) -> None:
    """Fills the Schedules page's form: an addition of 2 and 3, run by `cron`, and asks to create it."""
    form = page.locator("#schedule-form")
    form.get_by_label("Name").fill(name)
    form.locator("#id_x").fill("2")
    form.locator("#id_y").fill("3")
    form.locator("#id_kind").select_option("cron")
    form.get_by_label("Cron expression").fill(cron)
    form.get_by_role("button", name="Create the schedule").click()


def sign_in(page: Page, stack: Stack) -> None:
    """Signs the stack's admin in through the dashboard's own login page: the Workers and Storage pages are for
    operators."""
    page.goto("/accounts/login/?next=/")
    page.fill("input[name=username]", stack.environment["ADMIN_USERNAME"])
    page.fill("input[name=password]", stack.environment["ADMIN_PASSWORD"])
    page.locator("form.account-form button[type=submit]").click()
    expect(page.locator("form.account")).to_be_visible()


def pick(page: Page, operation: str, form: str = "#computation-form") -> None:
    """Picks an operation and waits until its form has been swapped in (what is typed into the old one is lost).
    The form of the operation already picked (as after a submission) is kept as it is: picking it again may fire
    no request at all."""
    if page.locator(f"{form} #id_operation").input_value() == operation:
        return
    page.locator(form).evaluate("form => { form.dataset.stale = 'true' }")
    page.select_option("#id_operation", operation)
    page.locator(f"{form}:not([data-stale])").wait_for()


@contextlib.contextmanager
def stack_database(stack: Stack) -> Iterator[MySQLdb.cursors.Cursor]:
    """A cursor on the stack's own database, for rows no form would write."""
    database = dj_database_url.parse(stack.environment["DATABASE_URL"])
    connection = MySQLdb.connect(
        host=database["HOST"],
        port=int(database["PORT"]),
        user=database["USER"],
        password=database["PASSWORD"],
        database=database["NAME"],
        autocommit=True,
    )
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.notReloaded") is True
