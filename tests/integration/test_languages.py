"""English and Simplified Chinese: chosen by the browser's Accept-Language, overridden by a switcher (a POST with
CSRF) that is remembered; everything a person reads follows, errors recorded by workers included."""

import datetime
import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from tasks.models import Computation, Status
from tasks.operations import TimeLimitExceeded
from tests import factories

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}


def test_the_browser_language_chooses(client):
    english = client.get(reverse("dashboard")).content.decode()
    assert '<html lang="en">' in english and ">Compute</button>" in english
    chinese = client.get(reverse("dashboard"), **ZH).content.decode()
    assert '<html lang="zh-hans">' in chinese
    assert "开始计算" in chinese and "统计小于 n 的素数" in chinese and "排队中" in chinese
    assert ">Compute</button>" not in chinese


def test_the_switcher_posts_with_csrf_and_is_remembered():
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("dashboard")).content.decode()
    assert re.search(r'<form class="languages" action="/i18n/setlang/" method="post"', page)
    assert '<button type="submit" name="language" value="zh-hans" lang="zh-hans" class="link">简体中文</button>' in page
    assert browser.post(reverse("set_language"), {"language": "zh-hans", "next": "/"}).status_code == 403
    token = browser.cookies["csrftoken"].value
    answer = browser.post(reverse("set_language"), {"language": "zh-hans", "next": "/", "csrfmiddlewaretoken": token})
    assert answer.status_code == 302 and answer["Location"] == "/"
    assert browser.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert browser.cookies[settings.LANGUAGE_COOKIE_NAME]["httponly"]
    again = browser.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="zh-hans">' in again, "the choice wins over the browser's language"


def test_the_switcher_never_redirects_elsewhere(client):
    answer = client.post(reverse("set_language"), {"language": "zh-hans", "next": "https://evil.example/"})
    assert answer.status_code == 302 and answer["Location"] == "/"


def failed(operation: str, inputs: dict, error: Exception) -> Computation:
    """A computation that a worker ran and failed with `error`, through the transitions a worker uses."""
    computation = factories.computation(operation=operation, inputs=inputs)
    rows = Computation.objects.filter(pk=computation.pk)
    assert rows.claim(worker="test") == 1 and rows.fail(attempt=1, error=error) == 1
    return rows.get()


def test_a_workers_error_reads_in_the_readers_language():
    computation = failed("count_primes", {"n": "10"}, TimeLimitExceeded(65))
    assert computation.status == Status.FAILED
    assert computation.error == "Stopped: the computation ran longer than its time limit of 65 seconds."
    assert computation.error_detail == {"message": TimeLimitExceeded(65).message, "params": {"seconds": "65"}}
    url = reverse("computation-detail", args=[computation.pk])
    assert computation.error in Client().get(url).content.decode()
    chinese = Client().get(url, **ZH).content.decode()
    with translation.override("zh-hans"):
        expected = gettext(TimeLimitExceeded(65).message) % {"seconds": 65}
    assert computation.error not in chinese and expected in chinese and "65 秒" in expected


def test_the_api_keeps_english_for_machines(client):
    computation = failed("add", {"x": "1", "y": "2"}, TimeLimitExceeded(5))
    data = client.get(reverse("api-computation", args=[computation.pk]), **ZH).json()
    assert data["error"] == "Stopped: the computation ran longer than its time limit of 5 seconds."
    assert data["status"] == "failed"


def test_dates_read_as_in_each_language_in_the_configured_time_zone(client, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    created = datetime.datetime(2026, 11, 25, 1, 2, 3, tzinfo=datetime.UTC)
    computation = factories.computation(created_at=created)
    url = reverse("computation-detail", args=[computation.pk])
    assert "25 Nov 2026, 09:02:03" in client.get(url).content.decode()
    assert "2026年11月25日 09:02:03" in client.get(url, **ZH).content.decode()
