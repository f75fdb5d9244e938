"""Every text answer travels compressed: HAProxy compresses statuses 200 to 203, Django the others (the 286 that
ends a list's polling, a form's 422), and nothing is compressed twice."""

import gzip

import pytest
from django.urls import reverse

from tasks.models import Computation, Status
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db(transaction=True)

GZIP = {"HTTP_ACCEPT_ENCODING": "gzip, deflate, br"}


def test_the_poll_that_stops_the_polling_is_compressed_and_a_200_is_left_to_haproxy(client):
    for _ in range(20):  # a list of some size: gzip's header and Django's random padding are ~100 bytes
        factories.computation(Status.SUCCEEDED)
    rows = Computation.objects.filter(pk=factories.computation().pk)
    url = reverse("computations")
    running = client.get(url, **HTMX, **GZIP)
    assert running.status_code == 200 and not running.has_header("Content-Encoding")

    assert rows.claim(worker="test") and rows.succeed(attempt=1, result="3")
    done = client.get(url, **HTMX, **GZIP)
    assert done.status_code == 286 and done["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in done["Vary"] and "HX-Request" in done["Vary"]
    html = gzip.decompress(done.content).decode()
    assert 'id="computation-list"' in html and "Succeeded" in html
    assert len(done.content) * 3 < len(html), (len(done.content), len(html))


def test_a_refused_form_is_compressed_only_when_asked(client):
    data = {"operation": "add", "x": "one", "y": "2"}
    refused = client.post(reverse("computations"), data, **HTMX, **GZIP)
    assert refused.status_code == 422 and refused["Content-Encoding"] == "gzip"
    assert "Enter a number." in gzip.decompress(refused.content).decode()
    plain = client.post(reverse("computations"), data, **HTMX)
    assert plain.status_code == 422 and not plain.has_header("Content-Encoding")
    assert "Enter a number." in plain.content.decode()
    assert not Computation.objects.exists()
