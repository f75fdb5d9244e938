"""The Celery app, configured from Django's settings (the CELERY_ names in dashboard/settings.py)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
# celery-redbeat asks whether its settings are set under their plain names, which the CELERY_ namespace hides: told
# otherwise it warns, and passes none of its options (the timeouts) to its Redis client.
app.conf.update({name: app.conf[name] for name in ("redbeat_redis_url", "redbeat_redis_options")})
# The task module is tasks/jobs.py, not the tasks.py that autodiscovery expects.
app.autodiscover_tasks(related_name="jobs")

# Every worker's heartbeat record and its following of paused queues (tasks.presence). Imported here, after the app:
# tasks.queues and tasks.presence read Django's settings, which are configured by now.
from .presence import Presence  # noqa: E402

app.steps["consumer"].add(Presence)
