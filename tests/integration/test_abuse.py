"""Bad input and abuse: whatever is posted, no 5xx, no row from an invalid submission, every message escaped;
double submissions, floods and a full queue are refused in the right way."""

import html
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError
from django.test import Client, RequestFactory
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.web.middleware import UNREACHABLE, ServerUnavailableMiddleware
from tasks.models import Computation, Status
from tests import factories
from tests.helpers import HTMX, database_url
from tools.ports import free_ports
from tools.stack import ROOT

OPERATIONS = ["add", "subtract", "multiply", "divide", "count_primes", "estimate_pi", "factorize"]
FIELDS = ["operation", "x", "y", "n", "samples", "seed", "work_seconds", "idempotency_key", "status", "before"]
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' OR 1=1 --",
    "NaN",
    "-Infinity",
    "1e309",
    "9" * 400,
    "\x00",
    "０",
    "1_000",
    " 1 ",
    "",
]
values = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=60), st.integers().map(str), st.sampled_from(OPERATIONS))
form_data = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)

fuzz = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_escaped(html: str, data: dict[str, str]) -> None:
    for value in data.values():
        if "<" in value and len(value) > 3:
            assert value not in html, f"{value!r} is in the page unescaped"


# Each example runs inside the test's transaction, which is never committed: nothing is sent to the broker.
@pytest.mark.django_db
@fuzz
@given(data=form_data, htmx=st.booleans())
def test_any_submission_gets_a_4xx_or_a_row_never_a_5xx(data, htmx):
    before = Computation.objects.count()
    response = Client().post(reverse("computations"), data, **(HTMX if htmx else {}))
    assert response.status_code in (200, 303, 422), response.status_code
    created = Computation.objects.count() - before
    assert created == (1 if response.status_code in (200, 303) else 0)
    assert_escaped(response.content.decode(), data)
    Computation.objects.all().delete()


@pytest.mark.django_db
@fuzz
@given(query=st.dictionaries(st.sampled_from(["status", "operation", "before", "after"]), values, max_size=4))
def test_any_list_query_gets_a_page_or_a_400(query):
    for headers in ({}, HTMX):
        response = Client().get(reverse("computations"), query, **headers)
        assert response.status_code in (200, 286, 400)
        assert_escaped(response.content.decode(), query)
    response = Client().get(reverse("computation-new"), {"operation": query.get("operation", "")}, **HTMX)
    assert response.status_code == 200


@pytest.mark.django_db
@fuzz
@given(pk=st.integers(min_value=0, max_value=2**63 - 1))
def test_any_id_gets_an_answer_or_a_404(pk):
    client = Client()
    assert client.get(f"/computations/{pk}/").status_code == 404
    assert client.get(f"/api/computations/{pk}").status_code == 404
    assert client.post(f"/computations/{pk}/cancel/", **HTMX).status_code == 404
    assert client.post(f"/computations/{pk}/retry/").status_code == 404


@pytest.mark.django_db
def test_a_form_posted_twice_creates_one_computation(django_capture_on_commit_callbacks):
    data = {"operation": "add", "x": "1", "y": "2", "idempotency_key": str(uuid.uuid4())}
    with django_capture_on_commit_callbacks() as callbacks:
        first = Client().post(reverse("computations"), data, **HTMX)
        second = Client().post(reverse("computations"), data, **HTMX)
    assert first.status_code == second.status_code == 200
    computation = Computation.objects.get()
    for response in (first, second):
        assert f'href="/computations/{computation.pk}/"' in response.content.decode()
    assert len(callbacks) == 1, "one commit sends one task"


@pytest.mark.django_db
def test_submissions_beyond_the_rate_limit_get_429_with_retry_after(settings, django_capture_on_commit_callbacks):
    # An hour's window: the limits' windows are fixed, and a minute's could close between attempts.
    settings.SUBMISSION_RATE_LIMIT = "3/h"
    data = {"operation": "add", "x": "1", "y": "2"}
    client = Client()
    with django_capture_on_commit_callbacks():
        statuses = [client.post(reverse("computations"), data, **HTMX).status_code for _ in range(3)]
        refused = client.post(reverse("computations"), data, **HTMX)
        # Another client behind HAProxy (a trusted proxy) has its own count.
        other = client.post(reverse("computations"), data, HTTP_X_FORWARDED_FOR="203.0.113.9", **HTMX)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert "Too many submissions from you" in refused.content.decode()
    assert other.status_code == 200
    assert Computation.objects.count() == 4


@pytest.mark.django_db
def test_a_forwarded_address_counts_only_from_a_trusted_proxy(settings, django_capture_on_commit_callbacks):
    settings.SUBMISSION_RATE_LIMIT = "1/h"
    data = {"operation": "add", "x": "1", "y": "2"}
    # A client that is not a trusted proxy cannot pick a fresh address for each submission.
    untrusted = Client(REMOTE_ADDR="198.51.100.7")
    with django_capture_on_commit_callbacks():
        first = untrusted.post(reverse("computations"), data, HTTP_X_FORWARDED_FOR="192.0.2.1", **HTMX)
        second = untrusted.post(reverse("computations"), data, HTTP_X_FORWARDED_FOR="192.0.2.2", **HTMX)
    assert (first.status_code, second.status_code) == (200, 429)


@pytest.mark.django_db
def test_a_full_queue_refuses_submissions_with_503_and_keeps_what_it_has(settings, django_capture_on_commit_callbacks):
    settings.COMPUTATION_MAX_QUEUED = 2
    factories.computation(inputs={"x": "1", "y": "1"})
    factories.computation(inputs={"x": "1", "y": "1"})
    with django_capture_on_commit_callbacks():
        response = Client().post(reverse("computations"), {"operation": "add", "x": "1", "y": "2"}, **HTMX)
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "The queue is full" in response.content.decode()
    assert Computation.objects.filter(status=Status.QUEUED).count() == 2


def test_a_database_outage_answers_a_clear_503_page():
    middleware = ServerUnavailableMiddleware(lambda request: None)
    error = OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1' (111)")
    page = middleware.process_exception(RequestFactory().get("/"), error)
    assert page.status_code == 503 and page["Retry-After"] == "10"
    text = page.content.decode()
    assert "The database cannot be reached right now" in text and "Traceback" not in text
    partial = middleware.process_exception(RequestFactory().get("/computations/", **HTMX), error)
    assert (partial["HX-Retarget"], partial["HX-Reswap"], partial["HX-Reselect"]) == ("#outage", "innerHTML", ".notice")
    assert middleware.process_exception(RequestFactory().get("/"), ValueError("not ours")) is None


@pytest.mark.django_db
def test_a_broker_outage_answers_503_in_the_page_and_in_the_api(operator_client, settings):
    """The broker's Redis unreachable (a port where nothing listens): an operator's control answers 503 saying so,
    as a page and as the JSON API's error, never a 500."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_ports(1)[0]}/0"
    api = operator_client.post(reverse("api-worker", args=["heavy@host", "grow"]))
    assert api.status_code == 503 and api["Retry-After"] == "10"
    assert api.json() == {"error": str(UNREACHABLE["broker"])}
    page = operator_client.post(reverse("queue-action", args=["heavy", "pause"]))
    assert page.status_code == 503 and "The queue's server cannot be reached" in html.unescape(page.content.decode())


@pytest.fixture
def manage(django_db_setup) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs manage.py as a deployment would, in a process of its own, on the tests' database (the checks of the
    MySQL backend connect to it; the default database need not exist)."""
    test_only = ("SECRET_KEY", "DEBUG", "HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {key: value for key, value in os.environ.items() if key not in test_only}
    database = django_settings.DATABASES["default"]
    env["DATABASE_URL"] = database_url(database, database["NAME"])

    def run(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *arguments],
            env={**env, **environment},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    return run


def test_production_mode_passes_djangos_deployment_checks(manage):
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("secret", [None, "development-only-secret-key-never-use-it-in-production", "short"])
def test_production_mode_refuses_to_start_without_a_real_secret(manage, secret):
    result = manage("check", DEBUG="false", **({"SECRET_KEY": secret} if secret else {}))
    assert result.returncode != 0
    assert "Production mode (DEBUG off) needs SECRET_KEY" in result.stderr


def test_production_mode_refuses_a_weak_admin_password(manage):
    result = manage(
        "ensure_admin",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ADMIN_USERNAME="admin",
        ADMIN_PASSWORD="admin123",
    )
    assert result.returncode != 0 and "ADMIN_PASSWORD is too weak" in result.stderr
