"""What the dashboard keeps in MySQL and for how long, for operators (the Storage page and /metrics): rows by status,
the tables' sizes, the oldest computation, the last prune, the retention setting and how far the rollups reach.

Counting a million rows by status takes a few hundred milliseconds, so the figures are shared through the cache for
STORAGE_SECONDS; one process works them out again when they are due.
"""

import datetime
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min
from redis.exceptions import RedisError

from . import cache_aside, retention
from .models import AuditedComputation, AuditEntry, Batch, Computation, InputValue, Rollup, Status

STORAGE_SECONDS = 60
STORAGE_KEY = "dashboard:storage:v2"  # v2: shared as cache_aside.Made
MODELS = (Computation, InputValue, Batch, AuditEntry, AuditedComputation, Rollup)


@dataclass(frozen=True)
class Table:
    name: str
    label: str
    rows: int  # InnoDB's estimate
    data_bytes: int
    index_bytes: int


@dataclass(frozen=True)
class RollupSpan:
    resolution: str
    first: datetime.datetime | None
    last: datetime.datetime | None


@dataclass(frozen=True)
class Storage:
    made_at: float
    by_status: dict[str, int]
    tables: list[Table]
    oldest: datetime.datetime | None  # the oldest computation's creation
    retention_days: int
    last_prune: retention.Pruned | None
    rollups: list[RollupSpan]

    @property
    def rows(self) -> int:
        return sum(self.by_status.values())

    @property
    def total_bytes(self) -> int:
        return sum(table.data_bytes + table.index_bytes for table in self.tables)


def storage() -> Storage:
    """The figures in the cache if made in the last STORAGE_SECONDS (or being made by another process), else new."""
    return cache_aside.shared(STORAGE_KEY, measure, fresh_for=STORAGE_SECONDS, kept_for=STORAGE_SECONDS * 10).value


def measure() -> Storage:
    counted = dict(Computation.objects.order_by().values_list("status").annotate(count=Count("pk")))
    first = Computation.objects.order_by("pk").values_list("created_at", flat=True).first()
    spans = Rollup.objects.order_by().values_list("resolution").annotate(first=Min("period"), last=Max("period"))
    reach = {resolution: (first, last) for resolution, first, last in spans}
    try:
        last_prune = retention.last_prune()
    except RedisError:
        last_prune = None
    return Storage(
        made_at=time.time(),
        by_status={status: counted.get(status, 0) for status in Status},
        tables=_tables(),
        oldest=first,
        retention_days=settings.COMPUTATION_RETENTION_DAYS,
        last_prune=last_prune,
        rollups=[RollupSpan(resolution, *reach.get(resolution, (None, None))) for resolution in Rollup.Resolution],
    )


def _tables() -> list[Table]:
    """Sizes from information_schema: InnoDB's own figures, updated as it samples (a few percent off at most)."""
    names = {model._meta.db_table: str(model._meta.verbose_name_plural) for model in MODELS}
    with connection.cursor() as cursor:
        if not connection.mysql_is_mariadb:
            # MySQL caches these figures for a day by default; fresh ones cost a look at each table's statistics.
            cursor.execute("SET SESSION information_schema_stats_expiry = 0")
        cursor.execute(
            "SELECT table_name, table_rows, data_length, index_length FROM information_schema.tables "
            "WHERE table_schema = DATABASE()"
        )
        found = {name: (rows or 0, data or 0, index or 0) for name, rows, data, index in cursor.fetchall()}
    return [Table(name, label, *found.get(name, (0, 0, 0))) for name, label in names.items()]
