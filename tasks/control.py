"""Operators' controls of the queues and the workers, each written to the audit trail: the Workers page, the admin
and the JSON API call these, and say what was done in the words given here (a purge, which ends computations, is
services.purge, called through `on_queue`).

A control is Celery's own (cancel_consumer, add_consumer, pool_grow, pool_shrink, shutdown), sent without
waiting for the workers' replies; a pause is also remembered (tasks.queues) for workers that start later.
"""

from dataclasses import dataclass

from django.utils.translation import gettext, ngettext

from . import changes, presence, queues, services
from .models import AuditEntry
from .presence import Worker
from .services import Actor

Action = AuditEntry.Action


class Refused(Exception):
    """The control does not apply (a pool at its smallest or largest, a stopped worker): nothing was sent."""


def pause(queue: str, actor: Actor) -> bool:
    """No worker takes from `queue` until it is resumed; what runs goes on. Whether it was running before."""
    changed = queues.set_paused(queue, True)
    presence.stop_consuming(queue)  # again when already paused: a worker that missed it catches up at once
    _recorded(Action.PAUSE, actor, {"queue": queue})
    return changed


def resume(queue: str, actor: Actor) -> bool:
    changed = queues.set_paused(queue, False)
    presence.start_consuming(queue)
    _recorded(Action.RESUME, actor, {"queue": queue})
    return changed


QUEUE_ACTIONS = ("pause", "resume", "purge")


@dataclass(frozen=True)
class QueueDone:
    """What a queue's control did: for a pause or resume whether the queue's state changed; for a purge how many
    computations it cancelled and how many messages it dropped (None when the broker could not be reached)."""

    queue: str
    action: str
    changed: bool = False
    cancelled: int = 0
    messages: int | None = None

    @property
    def text(self) -> str:
        label = queues.label(self.queue)
        if self.action == "pause":
            return gettext("The %(queue)s queue is paused: what waits in it stays there.") % {"queue": label}
        if self.action == "resume":
            return gettext("The %(queue)s queue is running again.") % {"queue": label}
        return ngettext(
            "%(count)d computation cancelled from the %(queue)s queue.",
            "%(count)d computations cancelled from the %(queue)s queue.",
            self.cancelled,
        ) % {"count": self.cancelled, "queue": label}


def on_queue(queue: str, action: str, actor: Actor) -> QueueDone:
    """One of QUEUE_ACTIONS on one of queues.NAMES (the caller checked both)."""
    if action == "purge":
        purged = services.purge(queue=queue, actor=actor)
        return QueueDone(queue, action, cancelled=purged.outcome.changed, messages=purged.messages)
    return QueueDone(queue, action, changed=(pause if action == "pause" else resume)(queue, actor))


def purgeable(queue: str) -> int:
    """How many computations a purge of `queue` would cancel now (asked before the purge is confirmed)."""
    return services.actionable(services.Selection(queue=queue), Action.PURGE).order_by().count()


def grow(worker: Worker, actor: Actor) -> None:
    _check_running(worker)
    if worker.concurrency >= worker.max_concurrency:
        raise Refused(
            gettext("This worker has as many processes as it may: %(count)d.") % {"count": worker.concurrency}
        )
    presence.grow(worker)
    _recorded(Action.GROW, actor, {"worker": worker.name})


def shrink(worker: Worker, actor: Actor) -> None:
    _check_running(worker)
    if worker.concurrency <= 1:
        raise Refused(gettext("This worker is down to one process."))
    presence.shrink(worker)
    _recorded(Action.SHRINK, actor, {"worker": worker.name})


def shut_down(worker: Worker, actor: Actor) -> None:
    _check_running(worker)
    presence.shut_down(worker)
    _recorded(Action.SHUT_DOWN, actor, {"worker": worker.name})


# The controls of one worker, by the names the Workers page and the API use.
WORKER_ACTIONS = {"grow": grow, "shrink": shrink, "shutdown": shut_down}


def _check_running(worker: Worker) -> None:
    if worker.stopped:
        raise Refused(gettext("This worker has stopped."))


def _recorded(action: str, actor: Actor, selection: dict) -> None:
    services.audit(action, actor, selection)
    # The dashboard's status strip shows paused queues; the Workers page its audit entries.
    changes.record_change()
