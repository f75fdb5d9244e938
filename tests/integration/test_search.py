"""The list's search: by number, task id, operation, or an exact input or result value; with the filters; paged;
and the bulk actions of "all matching" act on what it found, nothing more."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from tasks import services
from tasks.models import Computation, InputValue, Status, merged_page, search_sources, search_value
from tasks.operations import REGISTRY
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db


def add(x: str, y: str, **fields: object) -> Computation:
    computation = services.submit(operation=REGISTRY["add"], inputs={"x": x, "y": y})
    if fields:
        Computation.objects.filter(pk=computation.pk).update(**fields)
        computation.refresh_from_db()
    return computation


def found(text: str, rows=None) -> list[int]:
    rows = Computation.objects.all() if rows is None else rows
    return [row.pk for row in merged_page(search_sources(rows, text), size=100).rows]


def listed(client, **params: str) -> str:
    return client.get(reverse("computations"), params, **HTMX).content.decode()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1500", "1500"),
        ("1,500", "1500"),
        ("1 500", "1500"),
        ("1500.000", "1500"),
        ("-0.50", "-0.5"),
        ("2 × 3", "2 × 3"),
        ("  7 ", "7"),
    ],
)
def test_a_value_is_searched_in_its_plain_form(text, value):
    assert search_value(text) == value


def test_each_input_is_recorded_once_in_its_plain_form():
    computation = add("1500.50", "1500.5")
    assert list(InputValue.objects.filter(computation=computation).values_list("value", flat=True)) == ["1500.5"]


def test_a_batch_records_the_inputs_of_every_member():
    batch = services.submit_batch(operation=REGISTRY["multiply"], varied="x", start=1, stop=12, step=1, fixed={"y": 7})
    members = set(batch.computations.values_list("pk", flat=True))
    assert set(InputValue.objects.filter(value="7").values_list("computation_id", flat=True)) == members
    assert InputValue.objects.filter(value="12").get().computation_id in members


def test_found_by_number_task_id_operation_input_and_result():
    first, second = add("1500", "2"), add("3", "4")
    Computation.objects.filter(pk=second.pk).update(status=Status.SUCCEEDED, result="1234567")
    primes = services.submit(operation=REGISTRY["count_primes"], inputs={"n": 1000})
    assert found(f"#{first.pk}") == [first.pk]
    assert found(str(first.task_id)) == [first.pk]
    assert found(str(first.task_id).upper().replace("-", "")) == [first.pk]
    assert found("1,500") == [first.pk]
    assert found("1234567") == [second.pk]
    assert found("count") == [primes.pk]
    assert found("Count primes") == [primes.pk]
    assert found("ad") == [second.pk, first.pk]
    assert found("nothing like it") == []
    with translation.override("zh-hans"):
        assert found("统计") == [primes.pk], "by its label in the reader's language"


def test_a_number_finds_the_computation_of_that_id_and_those_with_that_value():
    first = add("5", "6")
    second = add(str(first.pk), "9")
    assert set(found(str(first.pk))) == {first.pk, second.pk}
    assert found(f"#{first.pk}") == [first.pk], "with # it is the id alone"


def test_the_search_joins_the_filters(client):
    failed = add("42", "1", status=Status.FAILED)
    add("42", "2", status=Status.SUCCEEDED)
    html = listed(client, q="42", status="failed")
    assert f'id="computation-{failed.pk}"' in html and html.count('class="row-') == 1


def test_pages_of_a_search_go_through_every_match_once(client):
    matches = [add("77", str(index)).pk for index in range(30)]
    add("78", "0")
    first = merged_page(search_sources(Computation.objects.all(), "77"))
    second = merged_page(search_sources(Computation.objects.all(), "77"), before=first.older_before)
    assert [row.pk for row in first.rows + second.rows] == sorted(matches, reverse=True)
    assert second.older_before is None
    back = merged_page(search_sources(Computation.objects.all(), "77"), after=second.newer_after)
    assert back.rows == first.rows, "Newer from the second page is the first"


def test_the_list_keeps_the_search_in_its_links_and_poll(client):
    for index in range(27):
        add("31", str(index))
    html = listed(client, q="31")
    assert 'hx-get="/computations/?q=31"' in html
    assert "q=31&amp;before=" in html, "the next page keeps the search"
    assert '<input type="hidden" name="q" value="31">' in html, "the bulk actions act on what it found"
    assert 'href="/computations/export.csv?"' in html, "an export takes the filters alone"


def test_a_search_with_no_match_says_what_can_be_searched(client):
    html = listed(client, q="<b>nope</b>")
    assert "Nothing matches “&lt;b&gt;nope&lt;/b&gt;”" in html


def test_a_search_longer_than_the_field_allows_is_a_400(client):
    response = client.get(reverse("computations"), {"q": "9" * 101}, **HTMX)
    assert response.status_code == 400
    assert "at most 100 characters" in response.content.decode()


def test_cancel_all_matching_a_search_cancels_only_what_it_found(client):
    wanted = [add("55", str(index)) for index in range(3)]
    other = add("56", "0")
    data = {"do": "cancel-matching", "q": "55", "confirm": "on"}
    response = client.post(reverse("computations-bulk"), data, **HTMX)
    assert response.status_code == 200, response.content
    statuses = dict(Computation.objects.values_list("pk", "status"))
    assert {statuses[row.pk] for row in wanted} == {Status.CANCELLED}
    assert statuses[other.pk] == Status.QUEUED


def test_a_search_costs_a_few_indexed_queries():
    add("12", "13")
    with CaptureQueriesContext(connection) as captured:
        found("12")
    assert len(captured) == 3, [query["sql"] for query in captured]  # an id, an input's value, a result's
    sql = " ".join(query["sql"] for query in captured)
    assert "LIKE" not in sql and " OR " not in sql


def test_a_task_id_that_is_not_there_finds_nothing():
    add("1", "2")
    assert found(str(uuid.uuid4())) == []
