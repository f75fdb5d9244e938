from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = _("Computations")

    def ready(self) -> None:
        # The Celery app, loaded with Django in every process (web replicas too), so that what they send goes to its
        # broker; not at the package's import, so that tasks.queues and the like load without Django's settings
        # (tools/stack.py reads the queues).
        from . import celery  # noqa: F401
        from .models import computations_ended
        from .webhooks import events
        from .workflows import settling

        computations_ended.connect(events.on_computations_ended, dispatch_uid="webhooks")
        computations_ended.connect(settling.on_computations_ended, dispatch_uid="workflows")
