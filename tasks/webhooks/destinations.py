"""Where a webhook may go: its URL's form, the hosts the operator allows, and the addresses a delivery may connect to.

A URL is http or https, with a host and no user or password. Its host must be one of WEBHOOK_ALLOWED_HOSTS: a name
exactly, ".example.com" for that domain and its subdomains, or "*" for any. A delivery resolves the host and
connects to the address it checked, never to the name again, so a DNS answer that changes after the check (DNS
rebinding) cannot send it elsewhere. Public addresses are allowed; internal ones (loopback, private, link-local such
as a cloud's metadata service on 169.254.169.254, shared, reserved) only inside WEBHOOK_ALLOWED_NETWORKS. The
stack's own services are never reached, whatever those allow: the database's and the Redis servers' addresses with
their ports, and on any internal address the ports of all of them and of the web replicas, Flower and HAProxy's
monitoring (WEBHOOK_STACK_PORTS), whose hosts the settings do not know.
"""

import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext

type Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}
HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")


class Refused(Exception):
    """A URL, a host or an address a webhook may not go to; `message` says why, for a person to read."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Unresolved(Refused):
    """The host has no address now (it may have one later)."""


@dataclass(frozen=True)
class Destination:
    """A webhook's URL, checked and taken apart."""

    scheme: str
    host: str  # lower case, IDNA-encoded, no trailing dot; an IPv6 address without its brackets
    port: int
    target: str  # the path and query that the request line names

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse(url: str) -> Destination:
    """`url` taken apart, or Refused when it is not a URL a webhook may have (its host is not checked here)."""
    if len(url) > MAX_URL_LENGTH or any(character.isspace() or not character.isprintable() for character in url):
        raise Refused(
            gettext("Not a URL a webhook can have: at most %(count)d characters, no spaces.")
            % {"count": MAX_URL_LENGTH}
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(gettext("Not a URL: %(reason)s.") % {"reason": error}) from error
    if parts.scheme not in DEFAULT_PORTS:
        raise Refused(gettext("A webhook's URL begins with http:// or https://."))
    if parts.username is not None or parts.password is not None:
        raise Refused(gettext("A webhook's URL may not hold a user name or password."))
    if port == 0:
        raise Refused(gettext("Port 0 cannot be reached."))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, _host(parts.hostname or ""), port or DEFAULT_PORTS[parts.scheme], target)


def _host(name: str) -> str:
    name = name.rstrip(".")
    if not name:
        raise Refused(gettext("A webhook's URL needs a host."))
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(name))
    try:
        encoded = name.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise Refused(gettext("Not a host name: %(host)s.") % {"host": name}) from error
    if not set(encoded) <= HOST_CHARACTERS:
        raise Refused(gettext("Not a host name: %(host)s.") % {"host": name})
    return encoded


def check_host(destination: Destination) -> None:
    """Refused unless the operator allows the destination's host (WEBHOOK_ALLOWED_HOSTS)."""
    allowed = settings.WEBHOOK_ALLOWED_HOSTS
    if not allowed:
        raise Refused(gettext("Webhooks are turned off on this dashboard: its operator allows no host."))
    if not any(_matches(destination.host, entry.strip().lower().rstrip(".")) for entry in allowed):
        raise Refused(
            gettext("Webhooks may go only to the hosts this dashboard's operator allows: %(hosts)s.")
            % {"hosts": ", ".join(allowed)}
        )


def _matches(host: str, entry: str) -> bool:
    if entry == "*" or host == entry:
        return True
    return entry.startswith(".") and (host == entry[1:] or host.endswith(entry))


def resolve(destination: Destination) -> list[Address]:
    """The destination host's addresses, as the system's resolver gives them (an address is itself); Unresolved
    when it has none."""
    try:
        found = socket.getaddrinfo(destination.host, destination.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise Unresolved(
            gettext("%(host)s has no address: %(reason)s.") % {"host": destination.host, "reason": error}
        ) from error
    return list(dict.fromkeys(_plain(ipaddress.ip_address(entry[4][0])) for entry in found))


def connectable(destination: Destination) -> Address:
    """The first of the host's addresses that a delivery may connect to; Refused (why the first was) when none."""
    addresses, rules = resolve(destination), AddressRules()
    refusals = [rules.refusal(address, destination.port) for address in addresses]
    for address, refusal in zip(addresses, refusals, strict=True):
        if refusal is None:
            return address
    raise Refused(refusals[0])


def check(url: str) -> Destination:
    """What registration checks: the URL, its host, and when the host resolves now, that a delivery could connect to
    one of its addresses (a host that does not resolve yet is taken; each delivery checks again)."""
    destination = parse(url)
    check_host(destination)
    with contextlib.suppress(Unresolved):
        connectable(destination)
    return destination


def _plain(address: Address) -> Address:
    """An IPv4 address written as IPv6 (::ffff:a.b.c.d) is the IPv4 address it reaches."""
    return getattr(address, "ipv4_mapped", None) or address


def _internal(address: Address) -> bool:
    """Not an address of the public internet: loopback, private, link-local, shared, reserved and the like."""
    return not address.is_global or address.is_reserved


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """WEBHOOK_ALLOWED_NETWORKS, parsed: ImproperlyConfigured names the entry that is not a network."""
    networks = []
    for entry in settings.WEBHOOK_ALLOWED_NETWORKS:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as error:
            raise ImproperlyConfigured(f"WEBHOOK_ALLOWED_NETWORKS: {error}") from error
    return networks


class AddressRules:
    """What a delivery may connect to, as the settings say now: their networks, and the stack's own services, whose
    host names are resolved once per rules."""

    def refusal(self, address: Address, port: int) -> str | None:
        """Why a delivery may not connect to `address`:`port`, or None when it may."""
        address = _plain(address)
        shown = {"address": address, "port": port}
        if address.is_unspecified or address.is_multicast:
            return gettext("%(address)s cannot be a webhook's address.") % shown
        if (address, port) in self.services:
            return gettext("%(address)s port %(port)s is one of this dashboard's own services.") % shown
        if not _internal(address):
            return None
        if not any(address in network for network in self.networks):
            return gettext("%(address)s is an internal address, which webhooks may not reach.") % shown
        if port in self.service_ports:
            return gettext("Port %(port)s of an internal address is kept for this dashboard's own services.") % shown
        return None

    @cached_property
    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return allowed_networks()

    @cached_property
    def endpoints(self) -> list[tuple[str, int]]:
        """The stack's servers that the settings name, as (host, port): the database, the broker's and the cache's
        Redis."""
        database = settings.DATABASES["default"]
        found = []
        if not str(database.get("HOST") or "").startswith("/"):  # not a Unix socket
            found.append((database.get("HOST") or "localhost", int(database.get("PORT") or 3306)))
        for url in {settings.REDIS_URL, settings.CACHE_URL, settings.CELERY_BROKER_URL}:
            parts = urlsplit(url)
            if parts.scheme in ("redis", "rediss") and parts.hostname:
                found.append((parts.hostname, parts.port or 6379))
        return found

    @cached_property
    def services(self) -> frozenset[tuple[Address, int]]:
        """The stack's servers as the addresses their hosts resolve to, with their ports."""
        pairs = set()
        for host, port in self.endpoints:
            try:
                found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                continue  # a name that does not resolve here is no address to keep away from
            pairs |= {(_plain(ipaddress.ip_address(entry[4][0])), port) for entry in found}
        return frozenset(pairs)

    @cached_property
    def service_ports(self) -> frozenset[int]:
        return frozenset([port for _, port in self.endpoints] + list(settings.WEBHOOK_STACK_PORTS))


@checks.register(checks.Tags.security)
def check_settings(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """A network of WEBHOOK_ALLOWED_NETWORKS that is not one stops `manage.py check` and the migrate step."""
    try:
        allowed_networks()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="webhooks.E001")]
    return []
