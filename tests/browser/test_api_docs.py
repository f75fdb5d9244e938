"""The API's readable page, /api/v1/docs: Swagger UI from our own static files, under the same CSP as every page (the
page fixture fails on a console error, which a CSP violation is, and on any request to another host)."""

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_the_api_document_reads_as_a_page_with_no_cdn(page: Page):
    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", name="Computation dashboard")).to_be_visible()
    submit = page.locator(".opblock", has_text="/api/v1/computations").first
    expect(submit).to_be_visible()
    assert page.locator(".opblock").count() >= 15, "every operation of the document"
    submit.locator(".opblock-summary").click()
    expect(submit.get_by_text("Idempotency-Key")).to_be_visible()
