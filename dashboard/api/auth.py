"""Who calls /api/v1/: a program with a token (`Authorization: Bearer cdt_…`), or a browser with its session.

A token stands for its person: the request acts as them (their computations only, their limits, their name in the
audit trail), needs no CSRF (it carries no cookie), and a read-only one changes nothing. A wrong, expired or revoked
token is 401, and counts against the client address's LOGIN_RATE_LIMIT as a failed sign-in does (429 past it).
Without a token, a session works as on the pages: a signed-in person's, with CSRF for every change. An anonymous
caller may read when accounts are off (DASHBOARD_LOGIN_REQUIRED), and may change something only when the operator
has turned API_ANONYMOUS_WRITES on."""

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext
from ninja.security import HttpBearer
from ninja.utils import check_csrf

from dashboard.api.problems import Problem
from dashboard.web import throttling
from tasks.models import ApiToken

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Caller(HttpBearer):
    """The API's one authentication: documented as a bearer token, and taking a session too (see above). Returns
    what ninja keeps as `request.auth`: the token, or the (possibly anonymous) user of the session."""

    def __call__(self, request: HttpRequest) -> object:
        header = request.headers.get("Authorization")
        writes = request.method not in SAFE_METHODS
        if header is not None:
            token = self._token(request, header)
            if writes and token.read_only:
                raise Problem(403, "read-only", gettext("This token may read, not change anything."))
            return token
        user = request.user
        anonymous_allowed = not settings.DASHBOARD_LOGIN_REQUIRED and (not writes or settings.API_ANONYMOUS_WRITES)
        if not user.is_authenticated and not anonymous_allowed:
            raise Problem(
                401, "unauthorized", gettext("Send a token: Authorization: Bearer <token> (your API tokens).")
            )
        if writes and check_csrf(request) is not None:
            raise Problem(
                403, "csrf", gettext("Without a token, send the csrftoken cookie's value in an X-CSRFToken header.")
            )
        return user

    def _token(self, request: HttpRequest, header: str) -> ApiToken:
        scheme, _, key = header.partition(" ")
        token = ApiToken.objects.authenticate(key.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            if wait := throttling.sign_in_wait(request):
                raise Problem(429, "rate-limited", throttling.too_many_attempts(wait), retry_after=wait)
            raise Problem(401, "unauthorized", gettext("This token is not valid: wrong, expired or revoked."))
        request.user = token.user
        request.api_token = token
        return token

    def authenticate(self, request: HttpRequest, token: str) -> object:  # __call__ does it all
        raise NotImplementedError
