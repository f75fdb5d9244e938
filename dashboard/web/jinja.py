"""The Jinja2 environment of the hot partials (templates under dashboard/jinja2/), through Django's own backend.

The list renders for every poller after each change. Jinja2 compiles a template to Python and renders its 25 rows
several times faster than Django's engine, which resolves every lookup at run time (`make bench` has the figures).
Every other page stays a Django template; a page shows a Jinja2 partial as HTML it was handed, so each piece of
markup still has one source.

Strings are marked `_("…")` with nothing after the closing quote and formatted with `|format(...)`: Django's
`makemessages` reads that form from any template, so one catalogue holds both engines' strings. Plurals are worked
out in Python (ngettext).
"""

from collections.abc import Mapping

from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpRequest, QueryDict
from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext, pgettext
from jinja2 import Environment, StrictUndefined


def environment(**options) -> Environment:
    # Escaped as Django's templates are (Django's SafeString passes as it is); a name missing from the context is an
    # error (in tests, a failing page), never an empty string on a page.
    options.update(undefined=StrictUndefined, extensions=["jinja2.ext.i18n"])
    options.pop("autoescape", None)  # Django's default, said here where it is read
    env = Environment(**options, autoescape=True)
    env.install_gettext_callables(gettext, ngettext, newstyle=False)
    env.globals.update(url=url, querystring=querystring, label_suffix=label_suffix)
    env.filters.update(intcomma=intcomma, floatformat=floatformat)
    return env


def rendered(template: str, context: dict, request: HttpRequest) -> SafeString:
    """A Jinja2 partial's HTML, for a Django page to show as it is: its template escaped what it holds."""
    return mark_safe(render_to_string(template, context, request))  # noqa: S308


def label_suffix() -> str:
    return pgettext("label suffix", ":")


def url(name: str, *args: object) -> str:
    return reverse(name, args=args or None)


def querystring(*mappings: Mapping[str, object], **changes: object) -> str:
    """Django's {% querystring %} given its mappings: `?` and the merged parameters, a None value removing its key."""
    params = QueryDict(mutable=True)
    for mapping in (*mappings, changes):
        for key, value in mapping.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
    return f"?{params.urlencode()}" if params else "?"
