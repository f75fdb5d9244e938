"""Compression of the text answers HAProxy leaves as they are.

HAProxy compresses at the edge, for every backend, but only answers whose status is 200, 201, 202 or 203 (its
manual, "compression"). The rest are ours: the 286 that ends a list's polling carries the whole list (30 KB, 5 KB
compressed), and the 4xx that put a form's messages in place and the 5xx pages carry a page or a partial too. Django
compresses those here, so that every text answer travels compressed and none is compressed twice.

Compression and secrets in one body (BREACH): every page and partial carries its CSRF token masked afresh for each
response, and Django's gzip adds random bytes to each compressed body, so a repeated request learns nothing.
"""

from django.http import HttpRequest, HttpResponseBase
from django.middleware.gzip import GZipMiddleware

# The answers HAProxy compresses itself.
COMPRESSED_AT_THE_EDGE = frozenset({200, 201, 202, 203})


class GZipWhatHAProxySkipsMiddleware(GZipMiddleware):
    """Django's GZip for the statuses HAProxy does not compress."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.status_code in COMPRESSED_AT_THE_EDGE:
            return response
        return super().process_response(request, response)
