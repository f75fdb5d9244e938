"""The integration layer runs on both databases users run: the machine's MariaDB, and MySQL 9.7 (`make test` runs
it a second time with TEST_DATABASE=mysql, on a private server)."""

import os

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_the_run_is_on_the_database_it_says():
    with connection.cursor() as cursor:
        cursor.execute("SELECT VERSION(), @@collation_database, @@optimizer_switch")
        version, collation, switches = cursor.fetchone()
    if os.environ.get("TEST_DATABASE") == "mysql":
        assert version.startswith("9.7") and "MariaDB" not in version
    else:
        assert "MariaDB" in version
    assert collation == "utf8mb4_unicode_ci"
    assert "index_merge_intersection=off" in switches, "each connection's init_command ran"


def rows_read(run) -> int:
    """How many index entries and rows the server read while `run()` ran (its handler counters, the same on MariaDB
    and MySQL), whatever plan it chose. (Not FLUSH STATUS: a FLUSH commits the test's transaction.)"""

    def counted(between) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Handler_read%%'")
            before = dict(cursor.fetchall())
            between()
            cursor.execute("SHOW SESSION STATUS LIKE 'Handler_read%%'")
            after = dict(cursor.fetchall())
        return sum(int(after[name]) - int(before[name]) for name in before if name != "Handler_read_key")

    return counted(run) - counted(lambda: None)  # less what reading the counters reads


def test_a_page_deep_in_the_list_reads_about_a_page_of_rows():
    from tasks.models import Computation, Status, merged_page
    from tests import factories

    # Every row in the main list: with an index on the flag, MariaDB walked every newer entry to reach the cursor.
    factories.computation(Status.SUCCEEDED)
    Computation.objects.bulk_create(
        Computation(operation="add", inputs={"x": "1", "y": "2"}, status=Status.SUCCEEDED) for _ in range(3000)
    )
    deep = Computation.objects.order_by("pk").values_list("pk", flat=True)[100]
    page = None

    def read_page():
        nonlocal page
        page = merged_page([Computation.objects.filter(in_main_list=True)], before=deep)

    read = rows_read(read_page)
    assert len(page.rows) == 25 and page.rows[0].pk < deep
    assert read < 200, f"{read} rows read for a page of 25 (the plan scans from the newest row)"
