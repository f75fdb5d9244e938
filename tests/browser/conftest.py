"""The browser tests' fixtures: Debian's Chromium, the local stack's URL, and the dashboard opened with its
checks (no request to another host, no console error)."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tools.stack import Stack

from .steps import fill_schedule, pick, submit


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


@pytest.fixture(scope="session")
def pages(browser, base_url: str) -> dict[str, str]:
    """One of each page, to check them all (axe, the layout): a computation, a batch, a workflow, a schedule, and
    the pages around them; those for someone signed in last (steps.SIGNED_IN_PAGES)."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.goto("/")
    computation = submit(page, "divide", x="1", y="8").removeprefix("computation-")
    page.goto("/batches/new/")
    pick(page, "add", form="#batch-form")
    for name, value in {"start": "1", "stop": "4", "step": "1", "y": "2"}.items():
        page.fill(f"#batch-form input[name={name}]", value)
    page.get_by_role("button", name="Run the batch").click()
    expect(page.locator("#batch-title")).to_be_visible()
    batch = page.url.removeprefix(base_url)
    page.goto("/workflows/new/")
    page.fill("#id_step-1-x-value", "1")
    page.fill("#id_step-1-y-value", "2")
    page.get_by_role("button", name="Add a step").click()
    expect(page.locator("#id_step-2-operation")).to_be_focused()
    page.select_option("#id_step-2-x-source", "1")
    page.fill("#id_step-2-y-value", "3")
    page.get_by_role("button", name="Create the workflow").click()
    expect(page.locator("#workflow-title")).to_be_visible()
    workflow = page.url.removeprefix(base_url)
    page.goto("/schedules/")
    fill_schedule(page, "every hour, a sum", "0 * * * *")
    expect(page.locator(".facts")).to_be_visible()
    schedule = page.url.removeprefix(base_url)
    context.close()
    return {
        "dashboard": "/",
        "detail": f"/computations/{computation}/",
        "batch": batch,
        "batch form": "/batches/new/",
        "workflow": workflow,
        "workflow builder": "/workflows/new/",
        "schedules": "/schedules/",
        "schedule": schedule,
        "login": "/accounts/login/",
        "error (404)": "/computations/999999999/",
        "API tokens": "/accounts/tokens/",
        "webhooks": "/webhooks/",
        "storage": "/storage/",
        "workers": "/workers/",
    }
