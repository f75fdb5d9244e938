"""Live partials: the protocol every polled piece of a page follows.

A poll sends the ETag of what it shows (If-None-Match). The ETag is the change counter (tasks.changes) and a digest
of everything else the HTML depends on, so an unchanged partial answers 304 before the view runs, touching no
table. A changed one is rendered once per change for everyone who polls the same thing: the HTML is kept in the
cache under a key made of the normalised inputs only (the partial's own address, the language, whether the broker
answers, whose computations it shows), so junk in a query string or a cookie adds no key. Once nothing it shows is
queued or running it answers 286, which stops the polling. A partial may also say what moves while its shape
holds (a running computation's progress): a poll that names the shape it shows (X-Shape) and finds it unchanged
gets only that, swapped out of band (`partial`'s `moving`).

One polled piece follows something the change counter does not see: the Workers section shows the workers'
heartbeat records and the queues' figures in Redis. It keeps the same protocol with an ETag of its own, a digest
of what it shows (`polled_section`), and is rendered for each poll that finds it changed.
"""

import hashlib
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language
from django.views.decorators.cache import cache_control
from django.views.decorators.http import condition
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling, reswap

from dashboard.web import health, theme
from dashboard.web.access import may_oversee, owner_scope
from tasks import cache_aside, changes

# A rendered partial is replaced at the next change; this only bounds how long an unpolled one stays.
PARTIAL_CACHE_SECONDS = 120
# The client event an action's answer triggers (HX-Trigger) so that the list polls at once rather than at its next
# tick.
CHANGED_EVENT = "computations-changed"

# The header in which a poll names the shape of what it shows (`partial`'s `moving`).
SHAPE_HEADER = "X-Shape"

type Build = Callable[[], tuple[dict, bool]]


def polled(view):
    """For a view that polls: its ETag, revalidated on every request, one for the page and one for the partial."""
    return _revalidated(view, _request_etag)


def polled_section(etag: Callable[[HttpRequest], str]):
    """For a view whose polled partial follows what the change counter does not see: `etag(request)` digests what
    a poll shows. The whole page has no ETag (it also shows who is signed in and their messages)."""

    def decorate(view):
        return _revalidated(view, lambda request, *args, **kwargs: etag(request) if wants_partial(request) else None)

    return decorate


def _revalidated(view, etag_func: Callable[..., str | None]):
    return vary_on_headers("HX-Request")(cache_control(no_cache=True)(condition(etag_func=etag_func)(view)))


def wants_partial(request: HttpRequest) -> bool:
    # A history restore after "back" must get the whole page, even though htmx asks for it.
    return bool(request.htmx) and not request.htmx.history_restore_request


def poll_etag(request: HttpRequest, path: str) -> str | None:
    """The ETag a poll of `path` (a partial's normalised address) from this request's person gets now; a page
    embeds it so that its first poll can answer 304 too."""
    version = _version(request)
    return None if version is None else f"{version}-{digest(*_depends_on(request, path))}"


def partial(
    request: HttpRequest, template: str, path: str, build: Build, *, keep: bool = True, moving: str | None = None
) -> HttpResponse:
    """The polled partial at `path`, its normalised address: `build()` gives its context and whether anything it
    shows is in flight, and runs only when the cache has no rendering of this version. Not `keep`: rendered afresh
    each time and never kept (a search, a page deep in the list: each client's own, and a client could ask for
    endless different ones to fill the cache).

    `moving`: the template of what moves while the partial keeps its shape (the context's "shape", a digest of
    everything else it shows), swapped out of band. A poll that says which shape it shows (X-Shape) and finds it
    unchanged gets only that: a running computation's progress is most changes, and swapping the whole partial
    for it costs the browser as much as the partial is big."""
    version = _version(request) if keep else None
    key = f"dashboard:partial:v2:{digest(template, *_depends_on(request, path))}"
    cached = cache_aside.read(key) if version is not None else None
    if cached is None or cached[0] != version:
        context, in_flight = build()
        moved = render_to_string(moving, context, request) if moving and in_flight else None
        cached = (version, render_to_string(template, context, request), in_flight, context.get("shape"), moved)
        if version is not None:
            cache_aside.keep(key, cached, PARTIAL_CACHE_SECONDS)
    _, content, in_flight, shape, moved = cached
    if moved is not None and request.headers.get(SHAPE_HEADER) == shape:
        response = reswap(HttpResponse(moved), "none")
    else:
        response = HttpResponse(content) if in_flight else HttpResponseStopPolling(content)
    if moving:
        patch_vary_headers(response, [SHAPE_HEADER])
    return response


def per_change[T](request: HttpRequest, name: str, compute: Callable[[], T]) -> T:
    """`compute()`'s answer for this request's person, worked out once per change for every page and partial that
    shows it (the counts by status are the same whatever page, filter or language shows them)."""
    version = _version(request)
    if version is None:
        return compute()
    owner = owner_scope(request)
    key = f"dashboard:per-change:{name}:{owner.pk if owner else '*'}"
    cached = cache_aside.read(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    value = compute()
    cache_aside.keep(key, (version, value), PARTIAL_CACHE_SECONDS)
    return value


def _depends_on(request: HttpRequest, path: str) -> tuple[object, ...]:
    """What a partial's HTML depends on besides the counter, never anything else a client sends (an operator's
    partials link the operator pages)."""
    owner = owner_scope(request)
    return path, get_language(), health.broker_reachable(), owner.pk if owner else "*", may_oversee(request.user)


def _request_etag(request: HttpRequest, *args: object, **kwargs: object) -> str | None:
    if wants_partial(request):
        return poll_etag(request, request.get_full_path())
    version = _version(request)
    if version is None:
        return None
    # A whole page also shows who is signed in and the colour scheme they chose: their session decides (read from
    # its cookie, so a 304 touches no table).
    who = request.COOKIES.get(settings.SESSION_COOKIE_NAME, ""), theme.chosen(request)
    return f"{version}-{digest('page', *_depends_on(request, request.get_full_path()), *who)}"


def _version(request: HttpRequest) -> int | None:
    """The change counter, read once per request."""
    if not hasattr(request, "live_version"):
        request.live_version = changes.current_version()
    return request.live_version


def digest(*parts: object) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).hexdigest()
