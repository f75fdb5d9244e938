"""The WSGI application that uWSGI serves."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.template.loader import get_template
from django.urls import reverse
from django.utils import translation

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

application = get_wsgi_application()

# uWSGI loads this module once in its master and forks its workers from it, again after each recycling: what is
# loaded here (compiled templates, translation catalogues, the URL resolver) every worker has from its first
# request, instead of paying for it then.
for name in (
    "dashboard/index.html",
    "dashboard/list.html",
    "dashboard/computation_form.html",
    "dashboard/detail.html",
    "dashboard/detail_section.html",
    "dashboard/batch.html",
    "dashboard/batch_section.html",
    "dashboard/batch_form.html",
    "dashboard/batch_form_fields.html",
    "503.html",
):
    get_template(name)
for language, _ in settings.LANGUAGES:
    with translation.override(language):
        reverse("dashboard")
