"""A computation's row and its state transitions.

Status moves queued → running → succeeded | failed, and queued | running → cancelled; a failed or cancelled one can
be queued again (retry). A workflow's step starts waiting, is queued once those it depends on succeeded, and ends not
run when one of them failed or was cancelled. The transitions live on the queryset (queryset.py), the rows in
computation.py, the statuses and their counts in status.py, the audit trail in audit.py, the rollups that outlive the
rows in rollup.py, schedules and their runs in schedule.py, API tokens in token.py, webhooks and their deliveries in
webhook.py, workflows (whose steps are computations) and their edges in workflow.py.
"""

from .audit import AuditedComputation, AuditEntry
from .computation import Batch, Computation, OfAnOperation, default_max_attempts, translate_error
from .queryset import ComputationQuerySet, Page, computations_ended, merged_page
from .rollup import Rollup, RollupMark
from .schedule import Schedule, ScheduleRun, parse_cron
from .search import InputValue, search_sources, search_value
from .status import COUNT_CAP, ENDED, IN_FLIGHT, RETRYABLE, Status, StatusCounts
from .token import ApiToken
from .webhook import Webhook, WebhookDelivery
from .workflow import Workflow, WorkflowEdge

__all__ = [
    "COUNT_CAP",
    "ENDED",
    "IN_FLIGHT",
    "RETRYABLE",
    "ApiToken",
    "AuditEntry",
    "AuditedComputation",
    "Batch",
    "Computation",
    "ComputationQuerySet",
    "InputValue",
    "OfAnOperation",
    "Page",
    "Rollup",
    "RollupMark",
    "Schedule",
    "ScheduleRun",
    "Status",
    "StatusCounts",
    "Webhook",
    "WebhookDelivery",
    "Workflow",
    "WorkflowEdge",
    "computations_ended",
    "default_max_attempts",
    "merged_page",
    "parse_cron",
    "search_sources",
    "search_value",
    "translate_error",
]
