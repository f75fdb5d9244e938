"""One attempt's POST, with the standard library's http.client.

The connection is made to the address that tasks.webhooks.destinations checked, never to the host name again; the
name goes in the Host header and, over HTTPS, in TLS's server name and certificate check. Every socket operation has
a short timeout and the whole exchange a deadline, after which its socket is shut; no redirect is followed (a 3xx is
an answer like any other that is not a 2xx), and at most BODY_LIMIT bytes of the answer are read.
"""

import contextlib
import http.client
import socket
import ssl
import threading
from dataclasses import dataclass

from django.utils.translation import gettext

from . import destinations

SOCKET_TIMEOUT_SECONDS = 5  # to connect, and for each read or write
DEADLINE_SECONDS = 10  # for the whole exchange, however slowly a receiver trickles its answer
BODY_LIMIT = 4096


@dataclass(frozen=True)
class Answer:
    """How an attempt went: the receiver's status code, or why there is none."""

    status_code: int | None = None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address given apart from the host name that TLS verifies."""

    def __init__(self, address: str, port: int, *, server_hostname: str):
        self.tls = ssl.create_default_context()
        super().__init__(address, port, timeout=SOCKET_TIMEOUT_SECONDS, context=self.tls)
        self.server_hostname = server_hostname

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.server_hostname)


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POSTs `body` to `url` if its host is allowed and resolves to an address a delivery may connect to."""
    try:
        destination = destinations.parse(url)
        destinations.check_host(destination)
        address = str(destinations.connectable(destination))
    except destinations.Refused as refused:
        return Answer(error=refused.message)
    if destination.scheme == "https":
        connection = _PinnedHTTPSConnection(address, destination.port, server_hostname=destination.host)
    else:
        connection = http.client.HTTPConnection(address, destination.port, timeout=SOCKET_TIMEOUT_SECONDS)
    return _exchange(connection, destination, body, {"Host": destination.host_header, **headers})


def _exchange(
    connection: http.client.HTTPConnection, destination: destinations.Destination, body: bytes, headers: dict[str, str]
) -> Answer:
    cut = threading.Event()

    def cut_short() -> None:
        cut.set()
        if connection.sock is not None:
            with contextlib.suppress(OSError):  # the plain socket's shutdown: TLS's would drop its state under a read
                socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)

    watchdog = threading.Timer(DEADLINE_SECONDS, cut_short)
    watchdog.start()
    try:
        connection.request("POST", destination.target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(BODY_LIMIT)
        return Answer(status_code=response.status)
    except (OSError, http.client.HTTPException, ValueError) as error:
        if cut.is_set():
            return Answer(error=gettext("No answer within %(seconds)d seconds.") % {"seconds": DEADLINE_SECONDS})
        return Answer(error=str(error) or type(error).__name__)
    finally:
        watchdog.cancel()
        connection.close()
