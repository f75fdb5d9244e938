"""A computation's life as its page tells it: each attempt's start and end, the people's actions in their places,
and how long each step took."""

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.translation import gettext, ngettext

from dashboard.computations.rows import Moment, Texts, duration
from tasks.models import ENDED, AuditEntry, Computation, Status

_INSTANT = timedelta(milliseconds=1)
LOST = "lost"  # a timeline step: an attempt whose worker died


@dataclass(frozen=True)
class HistoryLine:
    when: Moment
    text: str  # what was done, from where, by whom, to how many


@dataclass(frozen=True)
class Step:
    """A point of a computation's timeline: when, what happened, and how long since the step before."""

    when: Moment
    kind: str  # queued, running or a final status, for its mark; "audit" for a person's action
    title: str
    detail: str = ""
    since_previous: str = ""


def history_lines(entries: Iterable[AuditEntry]) -> list[HistoryLine]:
    """A computation's audit entries as its page lists them."""
    texts, lines = Texts(), []
    for entry in entries:
        text = gettext("%(action)s, %(source)s") % {
            "action": entry.get_action_display(),
            "source": entry.get_source_display(),
        }
        if entry.user:
            text += gettext(" (%(user)s)") % {"user": entry.user.get_username()}
        if entry.requested > 1:
            text += ngettext(", with %(n)s computation", ", with %(n)s computations", entry.requested) % {
                "n": entry.requested
            }
        lines.append(HistoryLine(texts.moment(entry.created_at), text))
    return lines


def timeline(computation: Computation, history: Iterable[HistoryLine]) -> list[Step]:
    """A computation's life in order: submitted, each attempt's start (on which worker, after how long waiting) and
    end (after how long running: its outcome, or its worker lost), the people's cancels and retries in their
    places, sent to the queue again."""
    texts = Texts()
    points: list[tuple[datetime, Step]] = [
        (computation.created_at, Step(texts.moment(computation.created_at), Status.QUEUED, gettext("Submitted")))
    ]
    if computation.enqueued_at and computation.enqueued_at - computation.created_at > _INSTANT:
        points.append(
            (
                computation.enqueued_at,
                Step(texts.moment(computation.enqueued_at), Status.QUEUED, gettext("Sent to the queue again")),
            )
        )
    for earlier in computation.attempts_before:
        points += _earlier_attempt(earlier, texts)
    if computation.started_at:
        detail = gettext("attempt %(attempt)s of %(allowed)s, on %(worker)s") % {
            "attempt": computation.attempts,
            "allowed": computation.max_attempts,
            "worker": computation.worker or "—",
        }
        points.append(
            (
                computation.started_at,
                Step(texts.moment(computation.started_at), Status.RUNNING, gettext("Started"), detail),
            )
        )
    if computation.finished_at and computation.status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED):
        points.append(
            (
                computation.finished_at,
                Step(texts.moment(computation.finished_at), computation.status, texts.status(computation.status)),
            )
        )
    for line in history:
        points.append((datetime.fromisoformat(line.when.iso), Step(line.when, "audit", line.text)))
    return _with_gaps(sorted(points, key=lambda point: point[0]))


def _with_gaps(points: list[tuple[datetime, Step]]) -> list[Step]:
    """Each step with how long since the one before: a wait before a start, a run before its end."""
    steps, previous, previous_kind = [], None, ""
    for at, step in points:
        gap = ""
        if previous and at - previous >= _INSTANT:
            time = duration((at - previous).total_seconds())
            if step.kind == Status.RUNNING:
                gap = gettext("waited %(time)s") % {"time": time}
            elif previous_kind == Status.RUNNING and step.kind in (*ENDED, LOST):
                gap = gettext("ran %(time)s") % {"time": time}
            else:
                gap = gettext("+%(time)s") % {"time": time}
        steps.append(dataclasses.replace(step, since_previous=gap))
        previous, previous_kind = at, step.kind
    return steps


def _earlier_attempt(attempt: dict, texts: "Texts") -> list[tuple[datetime, Step]]:
    """An attempt a later one replaced: its start, and its end (a failure or cancel, or its worker lost)."""
    started, ended = attempt["started"], attempt["ended"]
    detail = gettext("attempt %(attempt)s, on %(worker)s") % {
        "attempt": attempt["attempt"],
        "worker": attempt["worker"] or "—",
    }
    if attempt["status"] == Status.RUNNING:
        end = Step(texts.moment(ended), LOST, gettext("Worker lost"), gettext("its last heartbeat"))
    else:
        end = Step(texts.moment(ended), attempt["status"], texts.status(attempt["status"]))
    return [(started, Step(texts.moment(started), Status.RUNNING, gettext("Started"), detail)), (ended, end)]
