"""Forwarded headers and internal endpoints: believed from trusted proxies only, never a 500 on a malformed one."""

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import AuditEntry, Computation, Status
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

SUBMISSION = {"operation": "add", "x": "1", "y": "2"}


def audited_address(client: Client, **headers: str) -> str | None:
    """Cancels a queued computation through the API and returns the address the audit trail recorded."""
    computation = factories.computation()
    assert client.post(reverse("api-computation-cancel", args=[computation.pk]), **headers).status_code == 200
    return AuditEntry.objects.filter(computations=computation).get().address


def test_a_client_reaching_a_replica_directly_cannot_pick_its_address():
    direct = Client(REMOTE_ADDR="198.51.100.7")
    assert audited_address(direct, HTTP_X_FORWARDED_FOR="192.0.2.1") == "198.51.100.7"
    assert audited_address(direct, HTTP_X_FORWARDED_FOR="192.0.2.1, 192.0.2.2") == "198.51.100.7"


def test_a_trusted_proxy_sets_the_client_address_from_the_last_forwarded_one(client):
    assert audited_address(client, HTTP_X_FORWARDED_FOR="203.0.113.9") == "203.0.113.9"
    assert audited_address(client, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9") == "203.0.113.9"
    assert audited_address(client, HTTP_X_FORWARDED_FOR="2001:db8::1") == "2001:db8::1"


@pytest.mark.parametrize("forwarded", [",", "garbage", " ", "203.0.113.9, not-an-address", "1.2.3.4.5", "::g"])
def test_a_malformed_forwarded_address_is_ignored_never_a_500(client, forwarded, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        submitted = client.post(reverse("computations"), SUBMISSION, HTTP_X_FORWARDED_FOR=forwarded, **HTMX)
    assert submitted.status_code == 200
    assert audited_address(client, HTTP_X_FORWARDED_FOR=forwarded) == "127.0.0.1", "the proxy's own address"
    untrusted = Client(REMOTE_ADDR="198.51.100.7")
    assert untrusted.get(reverse("dashboard"), HTTP_X_FORWARDED_FOR=forwarded).status_code == 200


def test_a_client_reaching_a_replica_directly_cannot_claim_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    # As uWSGI's http-socket hands it over: the scheme already taken from the header.
    direct = Client(REMOTE_ADDR="198.51.100.7", **{"wsgi.url_scheme": "https"})
    redirected = direct.get(reverse("dashboard"), HTTP_X_FORWARDED_PROTO="https")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")
    behind_proxy = Client().get(reverse("dashboard"), HTTP_X_FORWARDED_PROTO="https")
    assert behind_proxy.status_code == 200


def test_metrics_answer_only_what_came_through_the_monitoring_listener(client):
    assert client.get(reverse("metrics")).status_code == 404, "the public front sets no listener"
    monitoring = client.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring")
    assert monitoring.status_code == 200 and "dashboard_computations_in_flight" in monitoring.content.decode()
    forged = Client(REMOTE_ADDR="198.51.100.7").get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring")
    assert forged.status_code == 404, "the listener is believed from a trusted proxy only"
    assert client.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="public").status_code == 404


def test_a_csrf_failure_of_the_json_api_answers_json():
    computation = factories.computation(Status.FAILED)
    browser = Client(enforce_csrf_checks=True)
    refused = browser.post(reverse("api-computation-retry", args=[computation.pk]))
    assert refused.status_code == 403 and refused["Content-Type"] == "application/json"
    assert "X-CSRFToken" in refused.json()["error"]
    page = browser.post(reverse("computation-retry", args=[computation.pk]))
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html"), "pages keep their HTML"
    assert Computation.objects.get().status == Status.FAILED


def test_with_a_proxy_secret_only_the_proxy_that_sends_it_is_believed(settings):
    """Any local user can connect from HAProxy's address; only HAProxy sends PROXY_SECRET (X-Dashboard-Proxy)."""
    settings.PROXY_SECRET = "s" * 43
    posing = Client()  # from 127.0.0.1, the trusted address
    assert audited_address(posing, HTTP_X_FORWARDED_FOR="203.0.113.9") == "127.0.0.1"
    assert audited_address(posing, HTTP_X_FORWARDED_FOR="203.0.113.9", HTTP_X_DASHBOARD_PROXY="t" * 43) == "127.0.0.1"
    assert posing.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring").status_code == 404
    haproxy = {"HTTP_X_DASHBOARD_PROXY": "s" * 43}
    assert audited_address(Client(), HTTP_X_FORWARDED_FOR="203.0.113.9", **haproxy) == "203.0.113.9"
    assert Client().get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring", **haproxy).status_code == 200


def test_an_ipv6_scope_in_a_forwarded_address_is_dropped_never_a_500(client):
    assert audited_address(client, HTTP_X_FORWARDED_FOR="fe80::1%eth0") == "fe80::1"
    assert audited_address(client, HTTP_X_FORWARDED_FOR="fe80::1%" + "x" * 60) == "fe80::1"
