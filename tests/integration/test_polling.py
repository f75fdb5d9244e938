"""Live refresh: the list and the detail poll while something is in flight, answer 304 from the change counter
without reading a row, and stop polling (286) when all is done."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tasks import changes
from tasks.models import Computation, Status
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db(transaction=True)


def poll(client, url, etag=None):
    headers = {**HTMX, **({"HTTP_IF_NONE_MATCH": etag} if etag else {})}
    return client.get(url, **headers)


def test_list_poll_answers_200_then_304_then_200_after_a_change_then_286(client, django_assert_num_queries):
    computation = factories.computation()
    rows = Computation.objects.filter(pk=computation.pk)
    url = reverse("computations")

    first = poll(client, url)
    assert first.status_code == 200
    assert 'hx-trigger="every 1s, computations-changed from:body"' in first.content.decode()
    etag = first["ETag"]

    with django_assert_num_queries(0):
        unchanged = poll(client, url, etag)
    assert unchanged.status_code == 304
    # Only what updates the browser's copy (RFC 9110): no policies or language on a response without a body.
    assert {name.lower() for name in unchanged.headers} == {"etag", "vary", "cache-control"}, unchanged.headers
    assert unchanged["ETag"] == etag and "HX-Request" in unchanged["Vary"]

    assert rows.claim(worker="test")
    changed = poll(client, url, etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert "Running" in changed.content.decode()

    assert rows.succeed(attempt=1, result="3")
    done = poll(client, url, changed["ETag"])
    assert done.status_code == 286
    html = done.content.decode()
    assert "every 1s" not in html, "the new list element does not poll either"
    assert 'hx-trigger="computations-changed from:body"' in html


def test_a_poll_keeps_the_filters_and_position_it_was_rendered_with(client):
    factories.computation(Status.FAILED, operation="divide")
    html = poll(client, reverse("computations") + "?status=failed&operation=divide").content.decode()
    assert 'hx-get="/computations/?status=failed&amp;operation=divide"' in html


def test_etags_differ_between_page_and_partial_and_between_filters(client):
    url = reverse("computations")
    partial, page = poll(client, url), client.get(url)
    filtered = poll(client, url + "?status=failed")
    assert len({partial["ETag"], page["ETag"], filtered["ETag"]}) == 3
    for response in (partial, page):
        assert response["Cache-Control"] == "no-cache"
        assert "HX-Request" in response["Vary"]


def test_invalid_filters_get_400_with_the_reason(client):
    response = poll(client, reverse("computations") + "?status=lost")
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_detail_polls_while_running_and_stops_when_done(client, django_assert_num_queries):
    computation = factories.computation()
    rows = Computation.objects.filter(pk=computation.pk)
    url = computation.get_absolute_url()
    rows.claim(worker="test")
    rows.report_progress(attempt=1, progress=30)

    running = poll(client, url)
    assert running.status_code == 200
    assert 'value="30"' in running.content.decode()
    with django_assert_num_queries(0):
        assert poll(client, url, running["ETag"]).status_code == 304

    rows.report_progress(attempt=1, progress=60)
    moved = poll(client, url, running["ETag"])
    assert moved.status_code == 200 and 'value="60"' in moved.content.decode()

    rows.succeed(attempt=1, result="3")
    done = poll(client, url, moved["ETag"])
    assert done.status_code == 286
    assert "every 1s" not in done.content.decode()


def test_without_redis_pages_are_rendered_in_full(client, settings):
    settings.CACHE_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": settings.CACHE_URL}}
    response = poll(client, reverse("computations"))
    assert response.status_code == 286
    assert not response.has_header("ETag")
    assert "Computations" in response.content.decode()


def test_a_partial_is_rendered_once_per_change_for_everyone(client, django_assert_num_queries):
    factories.computation()
    url = reverse("computations")
    first = poll(client, url)
    with django_assert_num_queries(0):
        other_viewer = poll(Client(), url)
    assert other_viewer.status_code == first.status_code == 200
    assert other_viewer.content == first.content
    assert "csrfmiddlewaretoken" not in first.content.decode(), "the shared HTML holds no one's CSRF token"


@pytest.mark.parametrize("page", ["/", "/?status=queued&operation=add", "detail", "batch"])
def test_a_page_gives_its_partial_the_etag_of_its_first_poll(client, page):
    """So that first poll answers 304 too when nothing changed, and htmx swaps nothing (focus and scroll stay)."""
    batch = factories.batch(Status.QUEUED, size=1)
    computation = batch.computations.get()
    changes.record_change()
    path = {"detail": f"/computations/{computation.pk}/", "batch": f"/batches/{batch.pk}/"}.get(page, page)
    html = client.get(path).content.decode()
    poll_url, etag = re.search(
        r'hx-get="([^"]+)"[^>]*hx-headers=\'\{"If-None-Match": "\\"([^"\\]+)\\""[^}]*\}\'', html
    ).groups()
    poll_url = poll_url.replace("&amp;", "&")
    first = client.get(poll_url, HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=f'"{etag}"')
    assert first.status_code == 304
    changes.record_change()
    assert client.get(poll_url, HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=f'"{etag}"').status_code in (200, 286)


def test_the_counts_by_status_are_worked_out_once_per_change_for_every_page(client):
    factories.computation()
    poll(client, reverse("computations"))  # the counts of this version, now shared

    def counted(response) -> str:
        return re.search(r"Queued <strong>(\d+)</strong>", response.content.decode()).group(1)

    with CaptureQueriesContext(connection) as queries:
        other_page = poll(client, reverse("computations") + "?status=queued")
    assert counted(other_page) == "1"
    assert not [query for query in queries if "UNION ALL" in query["sql"]], "no count query: shared"
    factories.computation(inputs={"x": "2", "y": "2"})
    changes.record_change()
    with CaptureQueriesContext(connection) as queries:
        after = poll(client, reverse("computations") + "?status=queued")
    assert counted(after) == "2" and [query for query in queries if "UNION ALL" in query["sql"]]


def test_while_the_list_keeps_its_shape_a_poll_brings_only_the_moving_rows(client):
    """A running computation's progress is most changes: a poll that names the shape it shows (X-Shape) and finds
    it unchanged gets the queued and running rows alone, swapped out of band, and nothing else swapped; a change
    of status, or a poll that names no shape, gets the whole list."""
    ended = factories.computation(Status.SUCCEEDED)
    running = factories.computation()
    rows = Computation.objects.filter(pk=running.pk)
    assert rows.claim(worker="test")
    url = reverse("computations")
    first = poll(client, url)
    html = first.content.decode()
    shape = re.search(r'"X-Shape": "([0-9a-f]+)"', html).group(1)
    assert f'id="computation-{ended.pk}"' in html

    assert rows.report_progress(attempt=1, progress=40)
    moved = client.get(url, **HTMX, HTTP_IF_NONE_MATCH=first["ETag"], HTTP_X_SHAPE=shape)
    assert moved.status_code == 200 and moved["HX-Reswap"] == "none" and "X-Shape" in moved["Vary"]
    html = moved.content.decode()
    assert f'<tr id="computation-{running.pk}" class="row-running" hx-swap-oob="morph">' in html
    assert 'value="40"' in html, "its progress"
    assert f"computation-{ended.pk}" not in html and 'id="computation-list"' not in html

    whole = client.get(url, **HTMX, HTTP_IF_NONE_MATCH=first["ETag"])
    assert whole.status_code == 200 and 'id="computation-list"' in whole.content.decode()
    assert not whole.has_header("HX-Reswap")

    assert rows.succeed(attempt=1, result="3")
    done = client.get(url, **HTMX, HTTP_IF_NONE_MATCH=moved["ETag"], HTTP_X_SHAPE=shape)
    assert done.status_code == 286 and 'id="computation-list"' in done.content.decode()
    assert f'"X-Shape": "{shape}"' not in done.content.decode(), "a new shape"
