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
