"""The colour scheme: the system's unless the person picks one in the header (a POST, remembered in a cookie)."""

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.web import theme

pytestmark = pytest.mark.django_db


def test_the_system_decides_until_a_choice_is_posted_with_csrf():
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("dashboard")).content.decode()
    assert '<html lang="en">' in page, "no data-theme: prefers-color-scheme decides"
    assert '<button type="submit" name="theme" value="dark" class="link">Dark</button>' in page
    assert browser.post(reverse("set-theme"), {"theme": "dark"}).status_code == 403
    token = browser.cookies["csrftoken"].value
    answer = browser.post(
        reverse("set-theme"), {"theme": "dark", "next": "/?status=failed", "csrfmiddlewaretoken": token}
    )
    assert answer.status_code == 303 and answer["Location"] == "/?status=failed"
    cookie = browser.cookies[theme.COOKIE]
    assert cookie.value == "dark" and cookie["httponly"] and cookie["max-age"] == 365 * 86_400
    assert '<html lang="en" data-theme="dark">' in browser.get(reverse("dashboard")).content.decode()
    browser.post(reverse("set-theme"), {"theme": "auto", "csrfmiddlewaretoken": token})
    assert '<html lang="en">' in browser.get(reverse("dashboard")).content.decode()


def test_a_page_cached_by_the_browser_is_not_reused_across_schemes(client):
    first = client.get(reverse("computations"))
    assert client.get(reverse("computations"), HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    client.cookies[theme.COOKIE] = "dark"
    assert client.get(reverse("computations"), HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


@pytest.mark.parametrize("data", [{"theme": "purple"}, {}, {"theme": "dark' onload='x"}])
def test_unknown_schemes_are_refused(client, data):
    answer = client.post(reverse("set-theme"), data)
    assert answer.status_code == 400 and theme.COOKIE not in answer.cookies


def test_it_never_sends_you_elsewhere_and_never_changes_on_a_get(client):
    answer = client.post(reverse("set-theme"), {"theme": "light", "next": "https://evil.example/"})
    assert answer["Location"] == "/"
    assert client.get(reverse("set-theme"), {"theme": "light"}).status_code == 405
    client.cookies[theme.COOKIE] = "<script>"
    assert "data-theme" not in client.get(reverse("dashboard")).content.decode()
