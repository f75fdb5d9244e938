"""The Schedules page in a browser: a refused form keeps its messages in place, a schedule is created, run now,
and its run links to its computation (screenshot: var/screenshots/schedules.png, schedule.png)."""

from playwright.sync_api import Page, expect

from .steps import fill_schedule, screenshot_path


def test_a_schedule_from_its_form_to_a_run_linked_to_its_computation(dashboard: Page):
    dashboard.goto("/schedules/")
    form = dashboard.locator("#schedule-form")
    fill_schedule(dashboard, "nightly report", "0 2 * * 99")
    expect(form.locator(".errorlist")).to_contain_text("Not a cron expression")
    expect(form.get_by_label("Name")).to_have_value("nightly report")

    form.get_by_label("Cron expression").fill("0 2 * * *")
    form.get_by_role("button", name="Create the schedule").click()
    expect(dashboard.locator("h1")).to_contain_text("nightly report")
    expect(dashboard.locator(".facts")).to_contain_text("cron 0 2 * * * (UTC)")
    dashboard.get_by_role("button", name="Run now").click()
    link = dashboard.locator("table.runs a[href^='/computations/']")
    expect(link).to_have_count(1)
    dashboard.set_viewport_size({"width": 1280, "height": 800})
    dashboard.screenshot(path=screenshot_path("schedule"), caret="initial", full_page=True)
    link.click()
    expect(dashboard.locator("h1")).to_contain_text("Add")

    dashboard.goto("/schedules/")
    expect(dashboard.locator("table.schedules")).to_contain_text("nightly report")
    dashboard.screenshot(path=screenshot_path("schedules"), caret="initial", full_page=True)
