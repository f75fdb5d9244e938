"""The cache holds what the views' normalised inputs name, nothing a client makes up: junk in a query string or a
cookie adds no key, so no one can fill the cache's Redis by asking for new URLs."""

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db


def cache_keys() -> set[bytes]:
    return set(redis.Redis.from_url(settings.CACHE_URL).scan_iter("*"))


def test_ten_thousand_junk_query_strings_add_no_key(client):
    factories.computation()
    url = reverse("computations")
    assert client.get(url, {"status": "queued"}, **HTMX).status_code == 200
    before = cache_keys()
    statuses = {client.get(f"{url}?status=queued&junk={n}", **HTMX).status_code for n in range(10_000)}
    assert statuses == {200}
    assert cache_keys() == before


def test_junk_cookies_and_unknown_parameters_share_the_rendering_of_the_normalised_address():
    computation = factories.computation()
    url = reverse("computations")
    first = Client().get(url, **HTMX)
    before = cache_keys()
    for n in range(200):
        visitor = Client()
        visitor.cookies["sessionid"] = f"made-up-{n}"
        visitor.cookies["theme"] = f"made-up-{n}"
        answer = visitor.get(f"{url}?utm_source={n}&before=", **HTMX)
        assert answer.content == first.content
        detail = visitor.get(f"{reverse('computation-detail', args=[computation.pk])}?n={n}", **HTMX)
        assert detail.status_code == 200
    assert len(cache_keys() - before) == 1, "the detail's one rendering"
