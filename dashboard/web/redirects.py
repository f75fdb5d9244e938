"""Where a form post goes next: one way to build the redirect, one way to trust a `next`."""

from django.http import HttpRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme


def see_other(url: str) -> HttpResponseRedirect:
    """303: the browser follows a POST's redirect with a GET, and "back" does not post again."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def back_to(request: HttpRequest, fallback: str) -> str:
    """The page a form post names in `next`, when it is one of this site's (over HTTPS when the request is);
    else `fallback`. Never another site: no open redirect."""
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return back if safe else fallback
