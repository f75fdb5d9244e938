"""The Celery app, configured from Django's settings (the CELERY_ names in dashboard/settings.py)."""

import os

from celery import Celery
from kombu import Queue

from . import broker, queues
from .presence import Presence

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
# celery-redbeat asks whether its settings are set under their plain names, which the CELERY_ namespace hides: told
# otherwise it warns, and passes none of its options (the timeouts) to its Redis client.
app.conf.update({name: app.conf[name] for name in ("redbeat_redis_url", "redbeat_redis_options")})
# The task module is tasks/jobs.py, not the tasks.py that autodiscovery expects.
app.autodiscover_tasks(related_name="jobs")

app.conf.task_queues = [Queue(queue.name) for queue in queues.QUEUES]
# The sweep and other housekeeping are quick work; retention's prune is minutes of deletes, and webhooks' attempts
# wait on receivers (seconds each at worst): never ahead of instant work.
app.conf.task_default_queue = queues.INSTANT
app.conf.task_routes = {
    name: {"queue": queues.HEAVY} for name in (broker.PRUNE, broker.DELIVER_WEBHOOKS, broker.DELIVER_DUE_WEBHOOKS)
}
# Every worker's heartbeat record and its following of paused queues.
app.steps["consumer"].add(Presence)
