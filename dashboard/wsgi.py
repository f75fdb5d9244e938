"""The WSGI application that uWSGI serves."""

import os
from pathlib import Path

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.template.loader import get_template
from django.urls import reverse
from django.utils import translation

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

application = get_wsgi_application()

# uWSGI loads this module once in its master and forks its workers from it, again after each recycling: what is
# loaded here (every template of the dashboard compiled, the translation catalogues, the URL resolver) every worker
# has from its first request, instead of paying for it then.
for folder in ("templates", "jinja2"):
    root = Path(__file__).parent / folder
    for path in sorted(root.rglob("*.html")) + sorted(root.rglob("*.jinja")):
        get_template(path.relative_to(root).as_posix())
for language, _ in settings.LANGUAGES:
    with translation.override(language):
        reverse("dashboard")
